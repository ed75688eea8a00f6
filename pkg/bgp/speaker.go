// Package bgp is cgwd's BGP speaker: an embedded gobgp server with one eBGP
// session per tunnel and per Direct Connect link. It advertises the on-prem
// prefixes, filters what it learns, and reports every accepted or withdrawn
// route to a callback. It installs nothing in the kernel itself: that is the
// job of the route programmer (pkg/fib).
package bgp

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
	apb "google.golang.org/protobuf/types/known/anypb"
)

// PeerConfig is one eBGP session toward AWS.
type PeerConfig struct {
	// Name is the path the session runs over (tunnel netdev or DX name).
	Name         string
	Address      netip.Addr // the AWS side
	LocalAddress netip.Addr
	PeerASN      uint32
	Keepalive    time.Duration
	HoldTime     time.Duration
	// Prepend is how often the local ASN is prepended to our advertisements.
	Prepend     int
	Communities []uint32
	// Allow, when non-empty, accepts only prefixes inside these.
	Allow       []netip.Prefix
	MaxPrefixes int
	// AdvertiseLimit, when positive, is the most prefixes sent on the
	// session: the first AdvertiseLimit of Config.Prefixes; the rest are
	// held back (AWS drops a session that receives more than its quota).
	AdvertiseLimit int
	// MaxPrefixRestart re-enables a session this long after the max-prefix
	// limit tore it down; 0 leaves it down until cgwd restarts.
	MaxPrefixRestart time.Duration
	// Password is the TCP MD5 password; empty for none. Never logged.
	Password string
	// LocalPref, when positive, is set on every route accepted from the
	// session: the path's preference, so that gobgp's best path is the one
	// the FIB selects (DX over a tunnel unless configured otherwise).
	LocalPref uint32
	// GracefulRestart is the session's graceful restart (gr.go).
	GracefulRestart GracefulRestart
	// LAN marks a session with an on-prem router (lan.go): what it sends is
	// imported by Config.LAN's rules, and it gets the AWS prefixes the FIB
	// routes. Prepend, Communities, Allow and AdvertiseLimit do not apply.
	LAN bool
}

// Config is the speaker's configuration.
type Config struct {
	ASN      uint32
	RouterID netip.Addr
	// ListenPort for incoming sessions; -1 disables listening.
	ListenPort int32
	// GRPCListen is gobgp's gRPC API address: "unix:///path" (a socket only
	// root and cgwd's user may use, mode 0600) or "host:port"; empty disables it.
	GRPCListen string
	// Prefixes are advertised to every peer.
	Prefixes []netip.Prefix
	// Deny is never accepted from any peer (the on-prem prefixes, 169.254.0.0/16),
	// including more specifics.
	Deny  []netip.Prefix
	Peers []PeerConfig
	// LAN holds the rules of the LAN sessions (lan.go).
	LAN    LANConfig
	Logger *slog.Logger
	// Restarting says cgwd's routes survived in the kernel from a previous
	// run: sessions with graceful restart announce a restart with the
	// forwarding state preserved (gr.go).
	Restarting bool
}

// RouteEvent is a route accepted from, or withdrawn by, a peer.
type RouteEvent struct {
	Peer     string
	Prefix   netip.Prefix
	Nexthop  netip.Addr
	Withdraw bool
	// ASPathLen, Origin and MED are the route's attributes that rank it
	// against other paths' routes to the prefix (RFC 4271 9.1.2.2): the AS
	// path's length as BGP counts it (a set counts 1), the origin (0 IGP,
	// 1 EGP, 2 incomplete) and the MED (0 when absent).
	ASPathLen int
	Origin    uint8
	MED       uint32
}

// PeerStatus is a snapshot of one session.
type PeerStatus struct {
	Name       string    `json:"name"`
	Address    string    `json:"address"`
	PeerASN    uint32    `json:"peer_asn"`
	State      string    `json:"state"`
	Up         bool      `json:"up"`
	Since      time.Time `json:"since"`
	Received   uint64    `json:"received"`
	Accepted   uint64    `json:"accepted"`
	Advertised uint64    `json:"advertised"`
	// HeldBack is how many on-prem prefixes are not sent on the session
	// because of its advertise limit.
	HeldBack int `json:"held_back"`
	// MD5 names the TCP MD5 problem that keeps the session down (a wrong
	// or missing password on either side); empty when none is seen.
	MD5 string `json:"md5,omitempty"`
	// Kind is aws (a tunnel's or DX link's session) or lan (an on-prem router).
	Kind string `json:"kind"`
}

// Speaker is the embedded BGP server.
type Speaker struct {
	log *slog.Logger
	srv *server.BgpServer
	v   atomic.Pointer[view] // the configuration in force; replaced whole by Reconfigure

	onRoute func(RouteEvent)
	onPeer  func(name string, up bool)
	onEOR   func(peer string) // OnEndOfRIB
	// onRestarting: OnPeerRestarting (helper.go).
	onRestarting func(peer string) bool
	// routes serialises route delivery (the watch and a reconfiguration's
	// re-evaluation of what peers sent) and guards received and limited.
	routes   sync.Mutex
	received map[string]map[netip.Prefix]struct{} // per peer, what it announced
	limited  map[string]bool                      // peers told to stop at max_prefixes
	stale    map[string]*staleRoutes              // peers restarting gracefully (helper.go)
	reconf   sync.Mutex                           // serialises Reconfigure
	lan      lanState                             // the LAN side (lan.go)
	lanMu    sync.Mutex                           // guards lan.fib, lan.fibGen and lan.adv
	apiSock  string                               // the gRPC API's unix socket, removed at stop
	md5      *md5Watch                            // names TCP MD5 problems of sessions that are down
	// grQuery, when set, stands in for gobgp's word on a peer's graceful
	// restart (tests).
	grQuery func(ctx context.Context, addr string) peerGR

	// detached is set by Detach: stop without closing the sessions (gr.go).
	detached atomic.Bool

	// deliver is held while gobgp's watch goroutine runs a callback; once
	// stopped is set under it, no callback runs again (gobgp's watch
	// goroutine is its own and cannot be joined).
	deliver sync.Mutex
	stopped bool
	wg      sync.WaitGroup // the speaker's own goroutines, started only while !stopped
	done    chan struct{}
}

// view is a configuration with its lookups, read lock-free by the watch.
type view struct {
	cfg    Config            // as run: Prefixes are what goes to AWS (see effective)
	given  Config            // as given to New or Reconfigure
	byAddr map[string]string // neighbor address -> peer name
	peers  map[string]PeerConfig
}

// newView is the view of cfg with no prefixes imported from the LAN.
func newView(cfg Config) *view { return newViewAdv(cfg, nil) }

// newViewAdv is the view of cfg with adv, the prefixes imported from the
// LAN, advertised to AWS.
func newViewAdv(cfg Config, adv []netip.Prefix) *view {
	v := &view{cfg: effective(cfg, adv), given: cfg, byAddr: map[string]string{}, peers: map[string]PeerConfig{}}
	for _, p := range cfg.Peers {
		v.byAddr[p.Address.String()] = p.Name
		v.peers[p.Name] = p
	}
	return v
}

// New returns a speaker that is not started.
func New(cfg Config) *Speaker {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Speaker{
		log: log.With("component", "bgp"), received: map[string]map[netip.Prefix]struct{}{}, limited: map[string]bool{}, stale: map[string]*staleRoutes{},
		done: make(chan struct{}), md5: newMD5Watch(),
		lan: lanState{
			kick: make(chan struct{}, 1), received: map[string]map[netip.Prefix]netip.Addr{},
			exported: map[netip.Prefix]PathKind{},
		},
	}
	s.v.Store(newView(cfg))
	return s
}

// Start starts the server, its policies, peers and advertisements, and
// calls onRoute (from one goroutine) for every accepted or withdrawn route
// and onPeer for every session state change, until ctx ends. Then it closes
// every session with a Cease NOTIFICATION, stops listening and closes the
// gRPC API; Done is closed once that is done, the speaker's own goroutines
// have returned and no callback runs or will run. Start may be called once.
//
// What cgwd cannot end is gobgp's own: BgpServer.Serve has no exit, so its
// goroutine stays, idle, with no peer, listener or API server, and gobgp's
// watch goroutine returns shortly after ctx ends, on its own.
func (s *Speaker) Start(ctx context.Context, onRoute func(RouteEvent), onPeer func(name string, up bool)) (err error) {
	v := s.v.Load()
	if err := checkListener(v.cfg); err != nil {
		return err
	}
	s.onRoute, s.onPeer = onRoute, onPeer
	opts := []server.ServerOption{server.LoggerOption(&logAdapter{log: s.log})}
	if v.cfg.GRPCListen != "" {
		apiOpts, sock, err := apiOptions(v.cfg.GRPCListen, s.log)
		if err != nil {
			return err
		}
		opts = append(opts, apiOpts...)
		s.apiSock = sock
	}
	s.srv = server.NewBgpServer(opts...)
	ctx, cancel := context.WithCancel(ctx)
	// gobgp's Serve loop has no exit: after Stop it idles with no peers,
	// listeners or API server. It is the one goroutine cgwd cannot end.
	go s.srv.Serve()
	defer func() {
		if err != nil {
			cancel()
			s.shutdown()
		}
	}()
	if s.apiSock != "" {
		if err := awaitSocket(s.apiSock); err != nil {
			return err
		}
	}
	if err := s.srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn:        v.cfg.ASN,
		RouterId:   v.cfg.RouterID.String(),
		ListenPort: v.cfg.ListenPort,
	}}); err != nil {
		return fmt.Errorf("bgp: start: %w", err)
	}
	if err := s.installPolicies(ctx, v.cfg); err != nil {
		return fmt.Errorf("bgp: policies: %w", err)
	}
	s.logHeldBack(v.cfg)
	if err := s.watch(ctx); err != nil {
		return fmt.Errorf("bgp: watch: %w", err)
	}
	for _, p := range v.cfg.Prefixes {
		if err := s.advertise(ctx, p, false); err != nil {
			return fmt.Errorf("bgp: advertise %s: %w", p, err)
		}
	}
	for _, p := range v.cfg.Peers {
		if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: restarted(apiPeer(p, 0), v.cfg.Restarting)}); err != nil {
			return fmt.Errorf("bgp: peer %s (%s): %w", p.Name, p.Address, err)
		}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.watchMD5(ctx, s.md5)
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.runLAN(ctx)
	}()
	go func() {
		<-ctx.Done()
		s.shutdown()
		s.log.Info("bgp stopped")
	}()
	s.log.Info("bgp started", "asn", v.cfg.ASN, "router_id", v.cfg.RouterID, "peers", len(v.cfg.Peers), "grpc", v.cfg.GRPCListen)
	return nil
}

// apiPeer is p as gobgp takes it, with gobgp's own prefix limit set to
// maxPrefixes (0: none; cgwd counts, see countReceived).
func apiPeer(p PeerConfig, maxPrefixes int) *api.Peer {
	family := &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	return withGracefulRestart(&api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: p.Address.String(),
			PeerAsn:         p.PeerASN,
			AuthPassword:    p.Password,
			Description:     p.Name,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry:           5,
			HoldTime:               uint64(p.HoldTime / time.Second),
			KeepaliveInterval:      uint64(p.Keepalive / time.Second),
			IdleHoldTimeAfterReset: 5,
		}},
		Transport: &api.Transport{LocalAddress: p.LocalAddress.String()},
		AfiSafis: []*api.AfiSafi{{
			Config:       &api.AfiSafiConfig{Family: family, Enabled: true},
			PrefixLimits: &api.PrefixLimit{Family: family, MaxPrefixes: uint32(maxPrefixes)},
		}},
	}, p)
}

// advertise originates p with origin IGP (gobgp sets next-hop self on
// eBGP), or with withdraw stops originating it.
func (s *Speaker) advertise(ctx context.Context, p netip.Prefix, withdraw bool) error {
	nlri, _ := apb.New(&api.IPAddressPrefix{Prefix: p.Addr().String(), PrefixLen: uint32(p.Bits())})
	origin, _ := apb.New(&api.OriginAttribute{Origin: 0})
	nh, _ := apb.New(&api.NextHopAttribute{NextHop: "0.0.0.0"})
	path := &api.Path{Family: ipv4Unicast, Nlri: nlri, Pattrs: []*apb.Any{origin, nh}}
	if withdraw {
		return s.srv.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: ipv4Unicast, Path: path})
	}
	_, err := s.srv.AddPath(ctx, &api.AddPathRequest{Path: path})
	return err
}

var ipv4Unicast = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}

// watch subscribes to received updates and peer state changes. It watches
// updates as received (ADJIN), one event per UPDATE message, rather than
// after gobgp's import policy, which costs a copy of the peer's whole config
// per prefix; the import policy is applied again here (accepted), from the
// same lists, so what reaches the FIB is what `gobgp global rib` shows.
func (s *Speaker) watch(ctx context.Context) error {
	return s.srv.WatchEvent(ctx, &api.WatchEventRequest{
		Peer: &api.WatchEventRequest_Peer{},
		Table: &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{
			{Type: api.WatchEventRequest_Table_Filter_ADJIN},
			{Type: api.WatchEventRequest_Table_Filter_EOR},
		}},
	}, func(r *api.WatchEventResponse) {
		s.deliver.Lock()
		defer s.deliver.Unlock()
		if s.stopped {
			return
		}
		v := s.v.Load()
		if pe := r.GetPeer(); pe != nil && pe.Type == api.WatchEventResponse_PeerEvent_STATE {
			st := pe.Peer.GetState()
			name := v.byAddr[st.GetNeighborAddress()]
			up := st.GetSessionState() == api.PeerState_ESTABLISHED
			s.log.Info("bgp session state", "peer", name, "address", st.GetNeighborAddress(), "state", sessionState(st.GetSessionState()))
			if st.GetAdminState() == api.PeerState_PFX_CT {
				s.maxPrefixExceeded(ctx, name)
			}
			if !up && s.helping(ctx, name, st.GetNeighborAddress()) {
				return // the peer restarts gracefully: its routes stay (helper.go)
			}
			if !up {
				s.routes.Lock()
				delete(s.received, name)
				delete(s.limited, name)
				s.lanPeerDown(name)
				s.routes.Unlock()
			}
			if s.onPeer != nil && name != "" {
				s.onPeer(name, up)
			}
			return
		}
		s.routes.Lock()
		defer s.routes.Unlock()
		var over []string
		for _, p := range r.GetTable().GetPaths() {
			if s.endOfRIB(ctx, v, p) {
				continue
			}
			ev, ok, err := v.decode(p)
			if err != nil {
				s.log.Warn("bgp: ignoring undecodable path", "peer", v.byAddr[p.GetNeighborIp()], "err", err)
				continue
			}
			if !ok {
				continue
			}
			s.refreshed(ev)
			if s.countReceived(v, ev) {
				over = append(over, ev.Peer)
			}
			if !ev.Withdraw && s.limited[ev.Peer] {
				continue // over its limit: nothing more from it reaches the kernel
			}
			if v.peers[ev.Peer].LAN {
				s.lanRoute(ev)
				continue
			}
			if ev.Withdraw || v.accepted(ev.Peer, ev.Prefix) {
				s.onRoute(ev)
			}
		}
		for _, name := range over {
			s.goroutine(func() { s.enforcePrefixLimit(ctx, v.peers[name]) })
		}
		if len(s.lan.received) > 0 {
			s.kickLAN() // an AWS prefix may shadow an imported one, or stop doing so
		}
	})
}

// countReceived keeps the set of prefixes a peer has announced and reports
// whether it just went over the peer's max_prefixes. cgwd counts itself
// because gobgp's own limit counts the peer's whole Adj-RIB-In on every
// UPDATE (quadratic with a full table). Called with s.routes held.
func (s *Speaker) countReceived(v *view, ev RouteEvent) bool {
	set := s.received[ev.Peer]
	if ev.Withdraw {
		delete(set, ev.Prefix)
		return false
	}
	if set == nil {
		set = map[netip.Prefix]struct{}{}
		s.received[ev.Peer] = set
	}
	set[ev.Prefix] = struct{}{}
	limit := v.peers[ev.Peer].MaxPrefixes
	if limit <= 0 || len(set) <= limit || s.limited[ev.Peer] {
		return false
	}
	s.limited[ev.Peer] = true
	return true
}

// enforcePrefixLimit hands the peer's max_prefixes to gobgp, which checks it
// at once and tears the session down with a Cease "Maximum Number of Prefixes
// Reached" (RFC 4486), as a router does; maxPrefixExceeded takes it from there.
func (s *Speaker) enforcePrefixLimit(ctx context.Context, p PeerConfig) {
	if _, err := s.srv.UpdatePeer(ctx, &api.UpdatePeerRequest{Peer: apiPeer(p, p.MaxPrefixes)}); err != nil {
		s.log.Error("bgp: enforce max_prefixes", "peer", p.Name, "err", err)
	}
}

// routeEvent converts a gobgp path from a known peer after the import
// policy; ok is false for paths that are not IPv4 unicast from a peer (our
// own advertisements, EoR) and for those the policy rejects.
func (s *Speaker) routeEvent(p *api.Path) (ev RouteEvent, ok bool, err error) {
	v := s.v.Load()
	ev, ok, err = v.decode(p)
	if ok && !ev.Withdraw && !v.accepted(ev.Peer, ev.Prefix) {
		ok = false
	}
	return ev, ok, err
}

// decode converts a gobgp path from a known peer, before the import policy;
// ok is false for paths that are not IPv4 unicast from a peer.
func (v *view) decode(p *api.Path) (ev RouteEvent, ok bool, err error) {
	name, known := v.byAddr[p.GetNeighborIp()]
	if !known || p.GetFamily().GetAfi() != api.Family_AFI_IP || p.GetFamily().GetSafi() != api.Family_SAFI_UNICAST {
		return ev, false, nil
	}
	// Decode only what the FIB needs, straight from the protobuf messages:
	// the prefix and the next hop (the hot path with 100,000 prefixes).
	var nlri api.IPAddressPrefix
	if err := p.GetNlri().UnmarshalTo(&nlri); err != nil {
		return ev, false, nil // not an IPv4 unicast prefix
	}
	addr, err := netip.ParseAddr(nlri.Prefix)
	if err != nil || !addr.Is4() || nlri.PrefixLen > 32 {
		return ev, false, fmt.Errorf("bad prefix %s/%d", nlri.Prefix, nlri.PrefixLen)
	}
	ev = RouteEvent{Peer: name, Prefix: netip.PrefixFrom(addr, int(nlri.PrefixLen)), Withdraw: p.GetIsWithdraw()}
	if !ev.Withdraw {
		if err := decodeAttrs(p.GetPattrs(), &ev); err != nil {
			return ev, false, err
		}
		if !ev.Nexthop.Is4() {
			return ev, false, fmt.Errorf("path for %s has no IPv4 next hop", ev.Prefix)
		}
	}
	return ev, true, nil
}

// accepted applies cgwd's import policy (the same lists installPolicies
// gives gobgp): never the deny list or more specifics of it; only inside the
// peer's allow list when it has one.
func (v *view) accepted(peer string, p netip.Prefix) bool {
	for _, d := range v.cfg.Deny {
		if d.Bits() <= p.Bits() && d.Contains(p.Addr()) {
			return false
		}
	}
	allow := v.peers[peer].Allow
	if len(allow) == 0 {
		return true
	}
	for _, a := range allow {
		if a.Bits() <= p.Bits() && a.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// maxPrefixExceeded logs a session torn down by its prefix limit and, if
// configured, re-enables it after the restart interval, as routers do.
func (s *Speaker) maxPrefixExceeded(ctx context.Context, name string) {
	p, ok := s.v.Load().peers[name]
	if !ok {
		return
	}
	s.log.Error("bgp: peer sent more prefixes than max_prefixes: session torn down",
		"peer", name, "address", p.Address, "max_prefixes", p.MaxPrefixes, "restart_in", p.MaxPrefixRestart)
	if p.MaxPrefixRestart <= 0 {
		return
	}
	s.goroutine(func() {
		t := time.NewTimer(p.MaxPrefixRestart)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
			// Back to cgwd's own count before the session comes back.
			if _, err := s.srv.UpdatePeer(ctx, &api.UpdatePeerRequest{Peer: apiPeer(p, 0)}); err != nil {
				s.log.Error("bgp: reset the prefix limit after max-prefix", "peer", name, "err", err)
			}
			if err := s.srv.EnablePeer(ctx, &api.EnablePeerRequest{Address: p.Address.String()}); err != nil {
				s.log.Error("bgp: re-enable peer after max-prefix", "peer", name, "err", err)
				return
			}
			s.log.Info("bgp: peer re-enabled after max-prefix hold-down", "peer", name)
		}
	})
}

// goroutine runs fn in a goroutine that shutdown waits for. Called only
// from a callback, with s.deliver held and s.stopped false.
func (s *Speaker) goroutine(fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

// Peers returns a snapshot of every session.
func (s *Speaker) Peers(ctx context.Context) []PeerStatus {
	if s.srv == nil {
		return nil
	}
	v := s.v.Load()
	var out []PeerStatus
	_ = s.srv.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		st := p.GetState()
		name := v.byAddr[p.GetConf().GetNeighborAddress()]
		ps := PeerStatus{
			Name:     name,
			Kind:     "aws",
			HeldBack: len(heldBack(v.cfg.Prefixes, v.peers[name])),
			Address:  p.GetConf().GetNeighborAddress(),
			PeerASN:  p.GetConf().GetPeerAsn(),
			State:    sessionState(st.GetSessionState()),
			Up:       st.GetSessionState() == api.PeerState_ESTABLISHED,
		}
		if ps.Up {
			if u := p.GetTimers().GetState().GetUptime(); u != nil {
				ps.Since = u.AsTime()
			}
		} else {
			ps.MD5 = s.md5.problem(name)
		}
		for _, af := range p.GetAfiSafis() {
			ps.Received += af.GetState().GetReceived()
			ps.Accepted += af.GetState().GetAccepted()
			ps.Advertised += af.GetState().GetAdvertised()
		}
		if v.peers[name].LAN {
			ps.Kind, ps.Accepted = "lan", uint64(s.lanImported(name))
		}
		out = append(out, ps)
	})
	return out
}

// ShutdownPeer tears the named session down with a Cease notification, as a
// router does when BFD declares the neighbor down. The session comes back
// through the normal connect cycle.
func (s *Speaker) ShutdownPeer(ctx context.Context, name, reason string) error {
	if s.restartingPeer(name) {
		return nil // down already, in a graceful restart: its routes stay until it is back or its time is up
	}
	if p, ok := s.v.Load().peers[name]; ok {
		return s.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: p.Address.String(), Communication: reason})
	}
	return fmt.Errorf("bgp: no peer %q", name)
}

// Done is closed when the speaker has stopped after Start's context ended.
func (s *Speaker) Done() <-chan struct{} { return s.done }

// SoftReset asks the named peer to send its routes again and sends it
// ours (route refresh, RFC 2918, both directions): import and export
// policies are re-run with the session up.
func (s *Speaker) SoftReset(ctx context.Context, name string) error {
	if p, ok := s.v.Load().peers[name]; ok {
		return s.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: p.Address.String(), Soft: true, Direction: api.ResetPeerRequest_BOTH})
	}
	return fmt.Errorf("bgp: no peer %q", name)
}

// shutdown closes every session with a Cease NOTIFICATION (gobgp's StopBgp
// sends it and waits for each session's goroutines), the listeners and the
// gRPC API, then stops the callbacks, waits for the speaker's own
// goroutines (they end with the context, which has ended) and closes done.
// Detached (a restart), it leaves gobgp and its sessions as they are.
func (s *Speaker) shutdown() {
	if !s.detached.Load() {
		s.srv.Stop()
	}
	s.deliver.Lock()
	s.stopped = true
	s.deliver.Unlock()
	s.wg.Wait()
	if s.apiSock != "" {
		removeSocket(s.apiSock)
	}
	close(s.done)
}

func sessionState(st api.PeerState_SessionState) string {
	switch st {
	case api.PeerState_IDLE:
		return "idle"
	case api.PeerState_CONNECT:
		return "connect"
	case api.PeerState_ACTIVE:
		return "active"
	case api.PeerState_OPENSENT:
		return "opensent"
	case api.PeerState_OPENCONFIRM:
		return "openconfirm"
	case api.PeerState_ESTABLISHED:
		return "established"
	}
	return "unknown"
}
