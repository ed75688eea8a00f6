package bgp

import (
	"context"
	"net/netip"
	"time"

	api "github.com/osrg/gobgp/v3/api"
)

// The receiving side of graceful restart (RFC 4724 4.2, helper mode): when
// a peer that negotiated graceful restart loses its session without a
// NOTIFICATION (it is restarting), gobgp keeps the peer's routes as stale,
// and so does cgwd, when the path's own health check is up (OnPeerRestarting
// asks): the session's routes stay in the kernel and the path keeps its BGP
// state (the health check still decides whether it carries traffic),
// instead of onPeer reporting the session down. Once the peer is
// back, what it announces again refreshes the routes; its End-of-RIB
// withdraws those it did not announce again. If the peer is not back with
// its End-of-RIB within the restart time it advertised, the routes it did
// not announce again go, and the session is reported down if it still is.

// staleRoutes is one graceful restart of a peer: the prefixes it has not
// announced again yet.
type staleRoutes struct{ prefixes map[netip.Prefix]struct{} }

// OnPeerRestarting sets fn to be asked, from the watch like Start's
// callbacks, when a peer's session went down in a graceful restart,
// whether to help it through: if fn says yes, the peer's routes stay and no
// onPeer(name, false) follows unless the restart fails; if no, the session
// is down as any other. Without fn every such peer is helped. Call it
// before Start.
func (s *Speaker) OnPeerRestarting(fn func(peer string) bool) { s.onRestarting = fn }

// restartingPeer reports whether name is in a graceful restart.
func (s *Speaker) restartingPeer(name string) bool {
	s.routes.Lock()
	defer s.routes.Unlock()
	_, ok := s.stale[name]
	return ok
}

// peerGR is what gobgp says of a peer's graceful restart.
type peerGR struct {
	restarting  bool          // gobgp keeps the peer's routes as stale
	restartTime time.Duration // the restart time the peer advertised
	established bool
}

// queryPeerGR asks gobgp about the peer at addr.
func (s *Speaker) queryPeerGR(ctx context.Context, addr string) peerGR {
	if s.grQuery != nil {
		return s.grQuery(ctx, addr)
	}
	var out peerGR
	_ = s.srv.ListPeer(ctx, &api.ListPeerRequest{Address: addr}, func(p *api.Peer) {
		gr := p.GetGracefulRestart()
		out = peerGR{
			restarting:  gr.GetPeerRestarting(),
			restartTime: time.Duration(gr.GetPeerRestartTime()) * time.Second,
			established: p.GetState().GetSessionState() == api.PeerState_ESTABLISHED,
		}
	})
	return out
}

// helping reports whether a session that is not up belongs to a peer in
// a graceful restart, whose routes stay; the first time, it marks the
// peer's routes stale and starts the restart timer. Called from the watch,
// with s.deliver held and s.routes not.
func (s *Speaker) helping(ctx context.Context, name, addr string) bool {
	if name == "" {
		return false
	}
	gr := s.queryPeerGR(ctx, addr)
	s.routes.Lock()
	defer s.routes.Unlock()
	_, already := s.stale[name]
	switch {
	case !gr.restarting:
		delete(s.stale, name) // a plain session down: everything goes
		return false
	case already:
		return true
	case s.onRestarting != nil && !s.onRestarting(name):
		return false // not to be helped: a session down
	}
	set := &staleRoutes{prefixes: make(map[netip.Prefix]struct{}, len(s.received[name]))}
	for p := range s.received[name] {
		set.prefixes[p] = struct{}{}
	}
	s.stale[name] = set
	s.log.Info("bgp peer restarting gracefully: its routes stay", "peer", name, "routes", len(set.prefixes), "restart_time", gr.restartTime)
	s.goroutine(func() {
		t := time.NewTimer(gr.restartTime)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.deliver.Lock()
		defer s.deliver.Unlock()
		if s.stopped {
			return
		}
		s.restartExpired(ctx, name, addr, set)
	})
	return true
}

// refreshed notes that a restarting peer announced or withdrew p again.
// Called with s.routes held.
func (s *Speaker) refreshed(ev RouteEvent) {
	if set, ok := s.stale[ev.Peer]; ok {
		delete(set.prefixes, ev.Prefix)
	}
}

// restartDone ends a peer's graceful restart at its End-of-RIB: routes it
// did not announce again are withdrawn. Called with s.deliver and s.routes held.
func (s *Speaker) restartDone(name string) {
	set, ok := s.stale[name]
	if !ok {
		return
	}
	delete(s.stale, name)
	s.withdrawStale(name, set)
	s.log.Info("bgp peer restarted: routes not announced again withdrawn", "peer", name, "withdrawn", len(set.prefixes))
}

// restartExpired ends a graceful restart the peer did not finish within
// its restart time (set is the restart's stale set, so a later restart's
// timer is not ended by an earlier one). Called with s.deliver held.
func (s *Speaker) restartExpired(ctx context.Context, name, addr string, set *staleRoutes) {
	up := s.queryPeerGR(ctx, addr).established
	s.routes.Lock()
	if s.stale[name] != set {
		s.routes.Unlock()
		return // finished, or another restart since
	}
	delete(s.stale, name)
	s.withdrawStale(name, set)
	if !up {
		delete(s.received, name)
		delete(s.limited, name)
	}
	s.routes.Unlock()
	s.log.Warn("bgp peer did not finish its graceful restart in time", "peer", name, "up", up)
	if !up && s.onPeer != nil {
		s.onPeer(name, false)
	}
}

// withdrawStale withdraws the prefixes of set from name. Called with s.routes held.
func (s *Speaker) withdrawStale(name string, set *staleRoutes) {
	for p := range set.prefixes {
		delete(s.received[name], p)
		s.onRoute(RouteEvent{Peer: name, Prefix: p, Withdraw: true})
	}
}
