package bgp

import (
	"context"
	"fmt"
	"net/netip"

	api "github.com/osrg/gobgp/v3/api"
)

// Names of the gobgp defined sets and policies cgwd installs.
const (
	setAllPeers = "cgwd-aws-peers"
	setDeny     = "cgwd-deny"
	setOnPrem   = "cgwd-onprem"
	polImport   = "cgwd-import"
	polExport   = "cgwd-export"
)

func peerSet(name string) string   { return "cgwd-peer-" + name }
func allowSet(name string) string  { return "cgwd-allow-" + name }
func exportSet(name string) string { return "cgwd-export-" + name }

// sent is what p may send of the on-prem prefixes: the first
// p.AdvertiseLimit of them, all without a limit.
func sent(prefixes []netip.Prefix, p PeerConfig) []netip.Prefix {
	if p.AdvertiseLimit > 0 && len(prefixes) > p.AdvertiseLimit {
		return prefixes[:p.AdvertiseLimit]
	}
	return prefixes
}

// heldBack is what p may not send of the on-prem prefixes.
func heldBack(prefixes []netip.Prefix, p PeerConfig) []netip.Prefix {
	return prefixes[len(sent(prefixes, p)):]
}

// logHeldBack names, per session, the on-prem prefixes its advertise limit holds back.
func (s *Speaker) logHeldBack(cfg Config) {
	for _, p := range cfg.Peers {
		if p.LAN {
			continue
		}
		if hb := heldBack(cfg.Prefixes, p); len(hb) > 0 {
			s.log.Warn("bgp: prefixes held back: more than the session's advertise limit",
				"peer", p.Name, "advertise_limit", p.AdvertiseLimit, "held_back", len(hb), "prefixes", hb)
		}
	}
}

// orLonger matches p and every more specific prefix.
func orLonger(p netip.Prefix) *api.Prefix {
	return &api.Prefix{IpPrefix: p.String(), MaskLengthMin: uint32(p.Bits()), MaskLengthMax: 32}
}

// installPolicies expresses cgwd's import and export rules as gobgp global
// policies, so that `gobgp global rib` shows exactly what cgwd accepted:
//
//	import: from any AWS peer reject the deny list (and more specifics); from a
//	        peer with an allow list reject anything outside it; accept the rest,
//	        with the local preference of the peer's path where it has one, so
//	        that gobgp's best path is the FIB's (see pkg/fib's selection).
//	export: to each peer send only the on-prem prefixes (the first
//	        AdvertiseLimit of them where it has a limit they exceed), with
//	        that peer's AS-path prepend and communities; reject everything
//	        else, so cgwd never re-advertises what it learned from AWS.
func (s *Speaker) installPolicies(ctx context.Context, cfg Config) error {
	sets, pols := policies(cfg)
	for _, ds := range sets {
		if err := s.srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: ds}); err != nil {
			return fmt.Errorf("defined set %s: %w", ds.Name, err)
		}
	}
	for _, pol := range pols {
		if err := s.srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: pol}); err != nil {
			return fmt.Errorf("policy %s: %w", pol.Name, err)
		}
	}
	assign := []*api.PolicyAssignment{
		{Name: "global", Direction: api.PolicyDirection_IMPORT, Policies: []*api.Policy{{Name: polImport}}, DefaultAction: api.RouteAction_ACCEPT},
		{Name: "global", Direction: api.PolicyDirection_EXPORT, Policies: []*api.Policy{{Name: polExport}}, DefaultAction: api.RouteAction_REJECT},
	}
	for _, a := range assign {
		if err := s.srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: a}); err != nil {
			return fmt.Errorf("assign %s: %w", a.Direction, err)
		}
	}
	return nil
}

// replacePolicies swaps the defined sets and policies for cfg's in one
// step; the assignments, by policy name, stay.
func (s *Speaker) replacePolicies(ctx context.Context, cfg Config) error {
	sets, pols := policies(cfg)
	return s.srv.SetPolicies(ctx, &api.SetPoliciesRequest{DefinedSets: sets, Policies: pols})
}

// policies builds the defined sets and the import and export policies.
func policies(cfg Config) ([]*api.DefinedSet, []*api.Policy) {
	var all []string
	for _, p := range cfg.Peers {
		all = append(all, p.Address.String()+"/32")
	}
	sets := []*api.DefinedSet{
		{DefinedType: api.DefinedType_NEIGHBOR, Name: setAllPeers, List: all},
		{DefinedType: api.DefinedType_PREFIX, Name: setDeny, Prefixes: prefixes(cfg.Deny, orLonger)},
		{DefinedType: api.DefinedType_PREFIX, Name: setOnPrem, Prefixes: prefixes(cfg.Prefixes, exact)},
	}
	imp := &api.Policy{Name: polImport}
	exp := &api.Policy{Name: polExport}
	var prefer []*api.Statement
	if len(cfg.Deny) > 0 {
		imp.Statements = append(imp.Statements, &api.Statement{
			Name: "cgwd-import-deny",
			Conditions: &api.Conditions{
				NeighborSet: &api.MatchSet{Type: api.MatchSet_ANY, Name: setAllPeers},
				PrefixSet:   &api.MatchSet{Type: api.MatchSet_ANY, Name: setDeny},
			},
			Actions: &api.Actions{RouteAction: api.RouteAction_REJECT},
		})
	}
	for _, p := range cfg.Peers {
		sets = append(sets, &api.DefinedSet{DefinedType: api.DefinedType_NEIGHBOR, Name: peerSet(p.Name), List: []string{p.Address.String() + "/32"}})
		if p.LAN {
			continue // lanPolicies
		}
		if len(p.Allow) > 0 {
			sets = append(sets, &api.DefinedSet{DefinedType: api.DefinedType_PREFIX, Name: allowSet(p.Name), Prefixes: prefixes(p.Allow, orLonger)})
			imp.Statements = append(imp.Statements, &api.Statement{
				Name: "cgwd-import-allow-" + p.Name,
				Conditions: &api.Conditions{
					NeighborSet: &api.MatchSet{Type: api.MatchSet_ANY, Name: peerSet(p.Name)},
					PrefixSet:   &api.MatchSet{Type: api.MatchSet_INVERT, Name: allowSet(p.Name)},
				},
				Actions: &api.Actions{RouteAction: api.RouteAction_REJECT},
			})
		}
		if p.LocalPref > 0 {
			prefer = append(prefer, &api.Statement{
				Name:       "cgwd-import-pref-" + p.Name,
				Conditions: &api.Conditions{NeighborSet: &api.MatchSet{Type: api.MatchSet_ANY, Name: peerSet(p.Name)}},
				Actions:    &api.Actions{RouteAction: api.RouteAction_ACCEPT, LocalPref: &api.LocalPrefAction{Value: p.LocalPref}},
			})
		}
		act := &api.Actions{RouteAction: api.RouteAction_ACCEPT}
		if p.Prepend > 0 {
			act.AsPrepend = &api.AsPrependAction{Asn: cfg.ASN, Repeat: uint32(p.Prepend)}
		}
		if len(p.Communities) > 0 {
			act.Community = &api.CommunityAction{Type: api.CommunityAction_ADD, Communities: communities(p.Communities)}
		}
		send := setOnPrem
		if len(heldBack(cfg.Prefixes, p)) > 0 {
			send = exportSet(p.Name)
			sets = append(sets, &api.DefinedSet{DefinedType: api.DefinedType_PREFIX, Name: send, Prefixes: prefixes(sent(cfg.Prefixes, p), exact)})
		}
		exp.Statements = append(exp.Statements, &api.Statement{
			Name: "cgwd-export-" + p.Name,
			Conditions: &api.Conditions{
				NeighborSet: &api.MatchSet{Type: api.MatchSet_ANY, Name: peerSet(p.Name)},
				PrefixSet:   &api.MatchSet{Type: api.MatchSet_ANY, Name: send},
			},
			Actions: act,
		})
	}
	imp.Statements = append(imp.Statements, prefer...) // after every reject
	sets = lanPolicies(cfg, sets, imp, exp)
	return sets, []*api.Policy{imp, exp}
}

func exact(p netip.Prefix) *api.Prefix {
	return &api.Prefix{IpPrefix: p.String(), MaskLengthMin: uint32(p.Bits()), MaskLengthMax: uint32(p.Bits())}
}

func prefixes(ps []netip.Prefix, f func(netip.Prefix) *api.Prefix) []*api.Prefix {
	out := make([]*api.Prefix, len(ps))
	for i, p := range ps {
		out[i] = f(p)
	}
	return out
}

func communities(cs []uint32) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = fmt.Sprintf("%d:%d", c>>16, c&0xffff)
	}
	return out
}
