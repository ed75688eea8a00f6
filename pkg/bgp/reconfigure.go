package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"

	api "github.com/osrg/gobgp/v3/api"
)

// ErrNewSpeaker is returned by Reconfigure for changes a running speaker
// cannot take (ASN, router ID, listen port, gRPC address): every session
// has to be re-established by a new speaker.
var ErrNewSpeaker = errors.New("bgp: the change needs a new speaker")

// Changes says what Reconfigure did, by peer name.
type Changes struct {
	Added, Removed, Reestablished, Repolicied []string
	// Advertised and Withdrawn are on-prem prefixes now (no longer) sent.
	Advertised, Withdrawn []netip.Prefix
}

// Empty reports whether nothing changed.
func (c Changes) Empty() bool {
	return len(c.Added)+len(c.Removed)+len(c.Reestablished)+len(c.Repolicied)+len(c.Advertised)+len(c.Withdrawn) == 0
}

// needsNewSpeaker reports whether going from a to b needs a new speaker.
func needsNewSpeaker(a, b Config) bool {
	return b.ASN != a.ASN || b.RouterID != a.RouterID || b.ListenPort != a.ListenPort || b.GRPCListen != a.GRPCListen
}

// Plan says what Reconfigure(cfg) would do, doing nothing: ErrNewSpeaker,
// or the changes by peer name.
func (s *Speaker) Plan(cfg Config) (Changes, error) {
	old := s.v.Load()
	if old == nil {
		return Changes{}, errors.New("bgp: plan before start")
	}
	if needsNewSpeaker(old.cfg, cfg) {
		return Changes{}, ErrNewSpeaker
	}
	return diff(old, s.viewOf(cfg)).Changes, nil
}

// viewOf is the view of cfg with the prefixes now imported from the LAN.
func (s *Speaker) viewOf(cfg Config) *view {
	s.lanMu.Lock()
	defer s.lanMu.Unlock()
	return newViewAdv(cfg, s.lan.adv)
}

// refresh applies the config in force again, with the prefixes now
// imported from the LAN: what goes to AWS follows the LAN.
func (s *Speaker) refresh(ctx context.Context) (Changes, error) {
	s.reconf.Lock()
	defer s.reconf.Unlock()
	return s.reconfigure(ctx, s.v.Load().given)
}

// Reconfigure applies cfg to the running speaker (a config reload), peer by
// peer: sessions whose settings are unchanged stay up; a session whose
// transport, timers, ASN, password or prefix limit changed is torn down and
// re-established; removed peers are torn down (their routes withdrawn through
// onPeer) and added ones started. Changes to the advertised prefixes, the
// import lists or a peer's prepends and communities are applied with the
// sessions up: gobgp's policies are replaced in one step and re-run (soft
// reset, no notification sent), and what peers sent earlier is re-evaluated
// against the new import policy, so routes it now rejects are withdrawn from
// onRoute and routes it now accepts are added.
func (s *Speaker) Reconfigure(ctx context.Context, cfg Config) (Changes, error) {
	s.reconf.Lock()
	defer s.reconf.Unlock()
	defer s.kickLAN() // the LAN rules or the AWS sessions may have changed
	return s.reconfigure(ctx, cfg)
}

// reconfigure is Reconfigure, called with s.reconf held.
func (s *Speaker) reconfigure(ctx context.Context, cfg Config) (Changes, error) {
	var ch Changes
	if s.srv == nil {
		return ch, errors.New("bgp: reconfigure before start")
	}
	old := s.v.Load()
	oc := old.cfg
	if needsNewSpeaker(oc, cfg) {
		return ch, ErrNewSpeaker
	}
	cfg.Logger = oc.Logger
	if err := checkListener(cfg); err != nil {
		return ch, err
	}
	nv := s.viewOf(cfg)
	pl := diff(old, nv)
	ch = pl.Changes
	if !pl.any {
		return ch, nil
	}
	down, up, reeval, exportChanged := pl.down, pl.up, pl.reeval, pl.exportChanged

	// Tear down first, while the old view still names the peers, then tell
	// the route programmer: their routes go now, not at the hold timer.
	for _, p := range down {
		if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: p.Address.String()}); err != nil {
			return ch, fmt.Errorf("bgp: peer %s (%s): remove: %w", p.Name, p.Address, err)
		}
		if s.onPeer != nil {
			s.onPeer(p.Name, false)
		}
		s.routes.Lock() // its prefix count starts over (a removed peer's must not linger)
		delete(s.received, p.Name)
		delete(s.limited, p.Name)
		s.lanPeerDown(p.Name)
		s.routes.Unlock()
	}
	s.v.Store(nv)
	if err := s.replacePolicies(ctx, nv.cfg); err != nil {
		return ch, fmt.Errorf("bgp: policies: %w", err)
	}
	for _, p := range ch.Advertised {
		if err := s.advertise(ctx, p, false); err != nil {
			return ch, fmt.Errorf("bgp: advertise %s: %w", p, err)
		}
	}
	for _, p := range ch.Withdrawn {
		if err := s.advertise(ctx, p, true); err != nil {
			return ch, fmt.Errorf("bgp: withdraw %s: %w", p, err)
		}
	}
	for _, p := range up {
		if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: apiPeer(p, 0)}); err != nil {
			return ch, fmt.Errorf("bgp: peer %s (%s): %w", p.Name, p.Address, err)
		}
	}
	// Re-run the policies over the kept sessions without tearing them down.
	if exportChanged || len(reeval) > 0 {
		dir := api.ResetPeerRequest_OUT
		if len(reeval) > 0 {
			dir = api.ResetPeerRequest_BOTH
		}
		if err := s.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: "all", Soft: true, Direction: dir}); err != nil {
			return ch, fmt.Errorf("bgp: soft reset: %w", err)
		}
	}
	if err := s.reevaluate(ctx, nv, reeval); err != nil {
		return ch, err
	}
	if exportChanged {
		s.logHeldBack(nv.cfg)
	}
	s.log.Info("bgp reconfigured", "added", ch.Added, "removed", ch.Removed, "reestablished", ch.Reestablished,
		"policy_changed", ch.Repolicied, "advertised", ch.Advertised, "withdrawn", ch.Withdrawn)
	return ch, nil
}

// plan is what Reconfigure has to do to go from one view to another.
type plan struct {
	Changes
	down, up      []PeerConfig // sessions to tear down, to start
	reeval        []PeerConfig // kept sessions whose import policy changed
	exportChanged bool
	any           bool // anything at all to apply (also policy order)
}

// diff compares two views peer by peer.
func diff(old, nv *view) plan {
	var pl plan
	oc, cfg := old.cfg, nv.cfg
	pl.exportChanged = !slices.Equal(oc.Prefixes, cfg.Prefixes) || oc.LAN.MED != cfg.LAN.MED || oc.LAN.LocalPref != cfg.LAN.LocalPref
	importChanged := !slices.Equal(oc.Deny, cfg.Deny)
	for _, p := range oc.Peers {
		np, keep := nv.peers[p.Name]
		switch {
		case !keep:
			pl.Removed = append(pl.Removed, p.Name)
			pl.down = append(pl.down, p)
		case sessionKey(p) != sessionKey(np):
			pl.Reestablished = append(pl.Reestablished, p.Name)
			pl.down = append(pl.down, p)
			pl.up = append(pl.up, np)
		default:
			exp := p.Prepend != np.Prepend || !slices.Equal(p.Communities, np.Communities) || p.AdvertiseLimit != np.AdvertiseLimit
			imp := !slices.Equal(p.Allow, np.Allow) || p.LocalPref != np.LocalPref
			if exp || imp {
				pl.Repolicied = append(pl.Repolicied, p.Name)
			}
			pl.exportChanged = pl.exportChanged || exp
			if imp || importChanged {
				pl.reeval = append(pl.reeval, np)
			}
		}
	}
	for _, p := range cfg.Peers {
		if _, ok := old.peers[p.Name]; !ok {
			pl.Added = append(pl.Added, p.Name)
			pl.up = append(pl.up, p)
		}
	}
	for _, p := range cfg.Prefixes {
		if !slices.Contains(oc.Prefixes, p) {
			pl.Advertised = append(pl.Advertised, p)
		}
	}
	for _, p := range oc.Prefixes {
		if !slices.Contains(cfg.Prefixes, p) {
			pl.Withdrawn = append(pl.Withdrawn, p)
		}
	}
	pl.any = !pl.Empty() || importChanged || pl.exportChanged || !reflect.DeepEqual(oc.Peers, cfg.Peers) || !lanEqual(oc.LAN, cfg.LAN)
	return pl
}

// sessionKey is what a session is negotiated with: a change re-establishes it.
type sessionKeyT struct {
	addr, local     netip.Addr
	asn             uint32
	keepalive, hold int64
	maxPrefixes     int
	password        string
	lan             bool
}

func sessionKey(p PeerConfig) sessionKeyT {
	return sessionKeyT{p.Address, p.LocalAddress, p.PeerASN, int64(p.Keepalive), int64(p.HoldTime), p.MaxPrefixes, p.Password, p.LAN}
}

// reevaluate runs what each peer has sent (its Adj-RIB-In) through the
// import policy of v again, adding what it accepts and withdrawing what it
// rejects; the route programmer ignores repeats.
func (s *Speaker) reevaluate(ctx context.Context, v *view, peers []PeerConfig) error {
	if len(peers) == 0 || s.onRoute == nil {
		return nil
	}
	s.routes.Lock()
	defer s.routes.Unlock()
	for _, p := range peers {
		if p.LAN {
			continue // the LAN sync re-evaluates them
		}
		var added, withdrawn int
		err := s.srv.ListPath(ctx, &api.ListPathRequest{
			TableType: api.TableType_ADJ_IN, Name: p.Address.String(), Family: ipv4Unicast,
		}, func(d *api.Destination) {
			for _, path := range d.GetPaths() {
				ev, ok, err := v.decode(path)
				if err != nil || !ok || ev.Withdraw {
					continue
				}
				if !v.accepted(ev.Peer, ev.Prefix) {
					ev.Withdraw, ev.Nexthop = true, netip.Addr{}
					withdrawn++
				} else {
					added++
				}
				s.onRoute(ev)
			}
		})
		if err != nil {
			return fmt.Errorf("bgp: peer %s: re-evaluate received routes: %w", p.Name, err)
		}
		s.log.Info("bgp: received routes re-evaluated against the new import policy", "peer", p.Name, "accepted", added, "rejected", withdrawn)
	}
	return nil
}
