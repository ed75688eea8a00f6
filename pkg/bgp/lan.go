package bgp

// LAN-side routing: sessions with the on-prem routers (PeerConfig.LAN).
//
// Import: what a LAN peer sends never enters gobgp's global RIB (the import
// policy rejects it, so it cannot leak to another peer as it came); cgwd
// reads it from the peer's Adj-RIB-In (the watch), keeps what passes
// LANConfig's rules (inside Allow, outside 169.254.0.0/16, not a prefix or
// a more specific of one an AWS peer offers or AWSPrefixes names) and
// originates it toward AWS itself, as it does the static prefixes: with its
// own AS path, within each session's advertise limit, summarised by
// Aggregate. OnRoutes hears every change of the set, for the kernel routes.
//
// Export: cgwd originates toward the LAN peers each AWS prefix the FIB
// routes over a usable path (SetLANExport), marked with a community that
// says the kind of the path (DX or VPN); the export policy turns the mark
// into that kind's MED (and local preference on iBGP), strips it, and
// sends only these routes to LAN peers, next hop cgwd. A prefix the FIB has
// no usable path for is withdrawn at once, whatever BGP still holds.

import (
	"context"
	"maps"
	"net/netip"
	"slices"

	api "github.com/osrg/gobgp/v3/api"
	apb "google.golang.org/protobuf/types/known/anypb"
)

// PathKind is the kind of path the FIB sends a prefix over.
type PathKind uint8

// Path kinds.
const (
	PathNone PathKind = iota // no usable path
	PathDX                   // a Direct Connect link
	PathVPN                  // a VPN tunnel
)

// KindValues is a value per path kind.
type KindValues struct{ DX, VPN uint32 }

func (k KindValues) of(p PathKind) uint32 {
	if p == PathDX {
		return k.DX
	}
	return k.VPN
}

// LANConfig is the LAN side's import and export rules.
type LANConfig struct {
	// Allow: only these prefixes and their more specifics are imported.
	Allow []netip.Prefix
	// Replace advertises the imported prefixes to AWS instead of
	// Config.Prefixes (which are still denied from AWS); otherwise besides them.
	Replace bool
	// Aggregate: an imported prefix inside one of these is advertised to
	// AWS as that summary.
	Aggregate []netip.Prefix
	// AWSPrefixes are never imported (nor their more specifics), even
	// before an AWS peer offers them.
	AWSPrefixes []netip.Prefix
	// MED and LocalPref are what LAN peers get with a prefix, by the kind
	// of its path; LocalPref only on iBGP (0 sends gobgp's default, 100).
	MED, LocalPref KindValues
	// Withdraw sends the LAN peers nothing (a drained box).
	Withdraw bool
	// OnRoutes, when set, is called (from one goroutine) with every
	// imported route each time the set changes.
	OnRoutes func([]LANRoute)
}

// LANRoute is an on-prem prefix imported from a LAN peer.
type LANRoute struct {
	Prefix  netip.Prefix
	Nexthop netip.Addr // the BGP next hop
	Peer    string
	// PeerAddress is the peer's address, the next hop to use when the BGP
	// next hop is not on the LAN.
	PeerAddress netip.Addr
}

// Marker communities of cgwd's LAN exports (65534:64801 and 65534:64802):
// they never leave the box.
const (
	markDX  uint32 = 65534<<16 | 64801
	markVPN uint32 = 65534<<16 | 64802
	setLAN         = "cgwd-lan-peers"
	setMark        = "cgwd-lan-mark-"
)

func mark(k PathKind) uint32 {
	if k == PathDX {
		return markDX
	}
	return markVPN
}

// lanState is the speaker's LAN side; its fields are guarded as noted.
type lanState struct {
	kick chan struct{}
	// received is what each LAN peer announces, with its next hop (s.routes).
	received map[string]map[netip.Prefix]netip.Addr
	// fib is the FIB's last word, replaced whole by SetLANExport (fibGen
	// counts them); adv the imported prefixes advertised to AWS; imported
	// how many routes each LAN peer's import holds (all s.lanMu).
	fib      map[netip.Prefix]PathKind
	fibGen   uint64
	adv      []netip.Prefix
	imported map[string]int
	// Owned by the sync goroutine: what it last delivered and originated,
	// and from what it computed the export.
	routes   []LANRoute
	exported map[netip.Prefix]PathKind
	from     exportInputs
}

// exportInputs is what the LAN export is computed from.
type exportInputs struct {
	gen    uint64
	v      *view
	onprem map[netip.Prefix]bool
}

// lanEqual reports whether two LAN configs have the same rules.
func lanEqual(a, b LANConfig) bool {
	return slices.Equal(a.Allow, b.Allow) && a.Replace == b.Replace && slices.Equal(a.Aggregate, b.Aggregate) &&
		slices.Equal(a.AWSPrefixes, b.AWSPrefixes) && a.MED == b.MED && a.LocalPref == b.LocalPref && a.Withdraw == b.Withdraw
}

// lanPeers lists the LAN sessions of cfg.
func lanPeers(cfg Config) []PeerConfig {
	var out []PeerConfig
	for _, p := range cfg.Peers {
		if p.LAN {
			out = append(out, p)
		}
	}
	return out
}

// effective is cfg as the speaker runs it: Prefixes are what goes to AWS,
// the static prefixes (unless LAN.Replace) and then adv, the imported ones
// not among them.
func effective(cfg Config, adv []netip.Prefix) Config {
	var out []netip.Prefix
	if !cfg.LAN.Replace {
		out = append(out, cfg.Prefixes...)
	}
	for _, p := range adv {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	cfg.Prefixes = out
	return cfg
}

// SetLANExport tells the speaker which AWS prefixes the FIB routes now and
// over which kind of path; the LAN peers follow at once. m is not modified
// afterwards by the caller.
func (s *Speaker) SetLANExport(m map[netip.Prefix]PathKind) {
	s.lanMu.Lock()
	s.lan.fib = m
	s.lan.fibGen++
	s.lanMu.Unlock()
	s.kickLAN()
}

func (s *Speaker) kickLAN() {
	select {
	case s.lan.kick <- struct{}{}:
	default:
	}
}

// lanRoute records a route event from LAN peer ev.Peer. Called with s.routes held.
func (s *Speaker) lanRoute(ev RouteEvent) {
	set := s.lan.received[ev.Peer]
	if ev.Withdraw {
		delete(set, ev.Prefix)
	} else {
		if set == nil {
			set = map[netip.Prefix]netip.Addr{}
			s.lan.received[ev.Peer] = set
		}
		set[ev.Prefix] = ev.Nexthop
	}
	s.kickLAN()
}

// lanPeerDown forgets what a LAN peer announced. Called with s.routes held.
func (s *Speaker) lanPeerDown(name string) {
	if _, ok := s.lan.received[name]; ok {
		delete(s.lan.received, name)
		s.kickLAN()
	}
}

// runLAN keeps the imports and exports in line with what the LAN peers
// send, what AWS offers and what the FIB routes, until ctx ends.
func (s *Speaker) runLAN(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.lan.kick:
		}
		s.syncLAN(ctx)
	}
}

func (s *Speaker) syncLAN(ctx context.Context) {
	v := s.v.Load()
	s.routes.Lock()
	routes := importLAN(v, s.lan.received, s.received)
	onprem := map[netip.Prefix]bool{}
	for _, set := range s.lan.received {
		for p := range set {
			onprem[p] = true
		}
	}
	s.routes.Unlock()
	if !slices.Equal(routes, s.lan.routes) {
		s.lan.routes = routes
		s.log.Info("bgp: routes imported from the LAN", "routes", len(routes))
		if cb := v.cfg.LAN.OnRoutes; cb != nil {
			cb(routes)
		}
	}
	adv := aggregate(routes, v.cfg.LAN.Aggregate)
	imported := map[string]int{}
	for _, r := range routes {
		imported[r.Peer]++
	}
	s.lanMu.Lock()
	changed := !slices.Equal(adv, s.lan.adv)
	s.lan.adv, s.lan.imported = adv, imported
	in := exportInputs{gen: s.lan.fibGen, onprem: onprem}
	fib := s.lan.fib
	s.lanMu.Unlock()
	if changed {
		if _, err := s.refresh(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("bgp: advertise the LAN's prefixes to AWS", "err", err)
		}
	}
	in.v = s.v.Load()
	if in.gen == s.lan.from.gen && in.v == s.lan.from.v && maps.Equal(in.onprem, s.lan.from.onprem) {
		return // nothing the export depends on changed
	}
	s.lan.from = in
	s.exportLAN(ctx, in.v, fib, onprem)
}

// lanImported is how many routes are imported from LAN peer name.
func (s *Speaker) lanImported(name string) int {
	s.lanMu.Lock()
	defer s.lanMu.Unlock()
	return s.lan.imported[name]
}

// importLAN is what cgwd imports of what the LAN peers announce (received,
// by peer), in prefix order: a prefix offered by several peers goes via the
// first in the config. aws is what each AWS peer announces. Called with
// s.routes held.
func importLAN(v *view, received map[string]map[netip.Prefix]netip.Addr, aws map[string]map[netip.Prefix]struct{}) []LANRoute {
	var out []LANRoute
	seen := map[netip.Prefix]bool{}
	for _, p := range v.cfg.Peers {
		if !p.LAN {
			continue
		}
		for prefix, nh := range received[p.Name] {
			if seen[prefix] || !v.importable(prefix, aws) {
				continue
			}
			seen[prefix] = true
			out = append(out, LANRoute{Prefix: prefix, Nexthop: nh, Peer: p.Name, PeerAddress: p.Address})
		}
	}
	slices.SortFunc(out, func(a, b LANRoute) int { return comparePrefix(a.Prefix, b.Prefix) })
	return out
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// inside reports whether p is q or a more specific of q.
func inside(p, q netip.Prefix) bool { return q.Bits() <= p.Bits() && q.Contains(p.Addr()) }

func insideAny(p netip.Prefix, qs []netip.Prefix) bool {
	for _, q := range qs {
		if inside(p, q) {
			return true
		}
	}
	return false
}

// importable applies the LAN import rules to prefix p: inside the allow
// list; not in 169.254.0.0/16; not an AWS prefix (configured, or offered
// and accepted from an AWS peer) nor a more specific of one.
func (v *view) importable(p netip.Prefix, aws map[string]map[netip.Prefix]struct{}) bool {
	if !p.Addr().Is4() || inside(p, linkLocal) || !insideAny(p, v.cfg.LAN.Allow) || insideAny(p, v.cfg.LAN.AWSPrefixes) {
		return false
	}
	for bits := p.Bits(); bits >= 0; bits-- {
		q := netip.PrefixFrom(p.Addr(), bits).Masked()
		for peer, set := range aws {
			if _, ok := set[q]; ok && !v.peers[peer].LAN && v.accepted(peer, q) {
				return false
			}
		}
	}
	return true
}

var linkLocal = netip.PrefixFrom(netip.AddrFrom4([4]byte{169, 254, 0, 0}), 16)

// aggregate is the imported prefixes as advertised to AWS: each inside an
// aggregate is replaced by it, once; in prefix order.
func aggregate(routes []LANRoute, aggs []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, r := range routes {
		p := r.Prefix
		for _, a := range aggs {
			if inside(p, a) {
				p = a
				break
			}
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, comparePrefix)
	return out
}

// exportLAN originates toward the LAN peers the prefixes of fib, marked
// with their path kind, and withdraws what is no longer there: never a
// prefix the LAN announces (onprem), one cgwd advertises to AWS or denies
// from it, or one in 169.254.0.0/16. Without LAN peers nothing is exported.
func (s *Speaker) exportLAN(ctx context.Context, v *view, fib map[netip.Prefix]PathKind, onprem map[netip.Prefix]bool) {
	want := lanExport(v, fib, onprem)
	var added, withdrawn int
	for p, k := range want {
		if s.lan.exported[p] == k {
			continue
		}
		if err := s.originate(ctx, p, mark(k), false); err != nil {
			s.log.Error("bgp: export to the LAN", "prefix", p, "err", err)
			continue
		}
		s.lan.exported[p] = k
		added++
	}
	for p := range s.lan.exported {
		if _, ok := want[p]; ok {
			continue
		}
		if err := s.originate(ctx, p, 0, true); err != nil {
			s.log.Error("bgp: withdraw from the LAN", "prefix", p, "err", err)
			continue
		}
		delete(s.lan.exported, p)
		withdrawn++
	}
	if added+withdrawn > 0 {
		s.log.Debug("bgp: LAN export", "announced", added, "withdrawn", withdrawn, "exported", len(s.lan.exported))
	}
}

// lanExport is what the LAN peers get of fib (see exportLAN).
func lanExport(v *view, fib map[netip.Prefix]PathKind, onprem map[netip.Prefix]bool) map[netip.Prefix]PathKind {
	want := map[netip.Prefix]PathKind{}
	if len(lanPeers(v.cfg)) == 0 || v.cfg.LAN.Withdraw {
		return want
	}
	for p, k := range fib {
		if k == PathNone || onprem[p] || inside(p, linkLocal) || slices.Contains(v.cfg.Prefixes, p) || insideAny(p, v.cfg.Deny) {
			continue
		}
		want[p] = k
	}
	return want
}

// originateLocalPref is the local preference of cgwd's LAN exports in
// its own RIB: above any the import gives a path from AWS, so that the
// export is gobgp's best path, the one it sends. gobgp strips it toward
// eBGP peers; iBGP peers get the export policy's.
const originateLocalPref = ^uint32(0)

// originate adds (or withdraws) a locally originated path for p carrying
// community c: an AWS prefix for the LAN peers.
func (s *Speaker) originate(ctx context.Context, p netip.Prefix, c uint32, withdraw bool) error {
	nlri, _ := apb.New(&api.IPAddressPrefix{Prefix: p.Addr().String(), PrefixLen: uint32(p.Bits())})
	origin, _ := apb.New(&api.OriginAttribute{Origin: 0})
	nh, _ := apb.New(&api.NextHopAttribute{NextHop: "0.0.0.0"})
	lp, _ := apb.New(&api.LocalPrefAttribute{LocalPref: originateLocalPref})
	attrs := []*apb.Any{origin, nh, lp}
	if c != 0 {
		cm, _ := apb.New(&api.CommunitiesAttribute{Communities: []uint32{c}})
		attrs = append(attrs, cm)
	}
	path := &api.Path{Family: ipv4Unicast, Nlri: nlri, Pattrs: attrs}
	if withdraw {
		return s.srv.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: ipv4Unicast, Path: path})
	}
	_, err := s.srv.AddPath(ctx, &api.AddPathRequest{Path: path})
	return err
}

// lanPolicies adds the LAN side's sets and statements: reject everything
// LAN peers send (cgwd imports it itself, see the file comment), and to
// each LAN peer export only cgwd's marked originations, with the MED (and
// on iBGP the local preference) of their path kind, marks removed.
func lanPolicies(cfg Config, sets []*api.DefinedSet, imp, exp *api.Policy) []*api.DefinedSet {
	peers := lanPeers(cfg)
	if len(peers) == 0 {
		return sets
	}
	var addrs []string
	for _, p := range peers {
		addrs = append(addrs, p.Address.String()+"/32")
	}
	sets = append(sets,
		&api.DefinedSet{DefinedType: api.DefinedType_NEIGHBOR, Name: setLAN, List: addrs},
		&api.DefinedSet{DefinedType: api.DefinedType_COMMUNITY, Name: setMark + "dx", List: []string{"^" + communities([]uint32{markDX})[0] + "$"}},
		&api.DefinedSet{DefinedType: api.DefinedType_COMMUNITY, Name: setMark + "vpn", List: []string{"^" + communities([]uint32{markVPN})[0] + "$"}},
	)
	imp.Statements = append([]*api.Statement{{
		Name:       "cgwd-import-lan",
		Conditions: &api.Conditions{NeighborSet: &api.MatchSet{Type: api.MatchSet_ANY, Name: setLAN}},
		Actions:    &api.Actions{RouteAction: api.RouteAction_REJECT},
	}}, imp.Statements...)
	for _, p := range peers {
		for _, k := range []PathKind{PathDX, PathVPN} {
			name := "vpn"
			if k == PathDX {
				name = "dx"
			}
			act := &api.Actions{
				RouteAction: api.RouteAction_ACCEPT,
				Med:         &api.MedAction{Type: api.MedAction_REPLACE, Value: int64(cfg.LAN.MED.of(k))},
				Community:   &api.CommunityAction{Type: api.CommunityAction_REMOVE, Communities: communities([]uint32{markDX, markVPN})},
			}
			if p.PeerASN == cfg.ASN {
				lp := cfg.LAN.LocalPref.of(k)
				if lp == 0 {
					lp = 100 // never the RIB's originateLocalPref
				}
				act.LocalPref = &api.LocalPrefAction{Value: lp}
			}
			exp.Statements = append(exp.Statements, &api.Statement{
				Name: "cgwd-export-" + p.Name + "-" + name,
				Conditions: &api.Conditions{
					NeighborSet:  &api.MatchSet{Type: api.MatchSet_ANY, Name: peerSet(p.Name)},
					CommunitySet: &api.MatchSet{Type: api.MatchSet_ANY, Name: setMark + name},
					RouteType:    api.Conditions_ROUTE_TYPE_LOCAL,
				},
				Actions: act,
			})
		}
	}
	return sets
}
