package bgp

// BGP graceful restart (RFC 4724), both roles.
//
// Restarting speaker: every session with GracefulRestart on carries the
// capability with its restart time. A speaker started with
// Config.Restarting (cgwd found its routes still in the kernel: the
// forwarding state survived) sets the Restart State bit and the Forwarding
// State bit for IPv4 unicast, so peers keep the routes cgwd sent before
// the restart until it has sent them again, followed by End-of-RIB (gobgp
// sends the marker after the initial table once the capability is
// negotiated). gobgp holds cgwd's updates back until every peer that is up
// has sent its End-of-RIB, at most deferralTime: cgwd only originates its
// own prefixes, which depend on nothing a peer sends, so the wait is short.
//
// Closing for a restart (Detach): the sessions are left open, with no
// NOTIFICATION, and close when the process exits; a peer that negotiated
// graceful restart takes the closed connection for a restart and keeps
// cgwd's routes for the restart time. A plain stop still sends Cease.
//
// Receiving speaker: gobgp keeps a restarting peer's routes as stale
// (helper mode) whenever the peer negotiated the capability; see
// helper.go for what cgwd does with them.

import (
	"context"
	"time"

	api "github.com/osrg/gobgp/v3/api"
)

// GracefulRestart is a session's graceful restart setting.
type GracefulRestart struct {
	Enabled bool
	// RestartTime is advertised: how long the peer keeps cgwd's routes
	// while cgwd restarts (whole seconds, at most 4095).
	RestartTime time.Duration
}

// deferralTime bounds how long a restarted speaker holds its updates back
// waiting for the peers' End-of-RIB (RFC 4724 4.1, Selection_Deferral_Timer).
const deferralTime = 5 * time.Second

// withGracefulRestart adds p's graceful restart, when on, to a gobgp peer.
func withGracefulRestart(ap *api.Peer, p PeerConfig) *api.Peer {
	if !p.GracefulRestart.Enabled {
		return ap
	}
	ap.GracefulRestart = &api.GracefulRestart{
		Enabled:      true,
		RestartTime:  uint32(p.GracefulRestart.RestartTime / time.Second),
		DeferralTime: uint32(deferralTime / time.Second),
	}
	for _, af := range ap.AfiSafis {
		af.MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
	}
	return ap
}

// restarted marks a peer with graceful restart on as restarting when the
// forwarding state survived: its OPEN then carries the Restart State bit
// and, for IPv4 unicast, the Forwarding State bit (gobgp sets both from
// LocalRestarting), and gobgp defers its updates as RFC 4724 4.1 asks.
func restarted(ap *api.Peer, restarting bool) *api.Peer {
	if ap.GracefulRestart != nil {
		ap.GracefulRestart.LocalRestarting = restarting
	}
	return ap
}

// Detach stops the speaker for a restart of cgwd: its callbacks stop and
// Done closes, but the sessions stay open, with no NOTIFICATION sent,
// until the process exits and the kernel closes them. Peers that
// negotiated graceful restart keep cgwd's routes through the restart.
// Call it before Start's context ends; the context ending then does
// nothing more.
func (s *Speaker) Detach() {
	s.detached.Store(true)
}

// OnEndOfRIB sets fn to be called, from the watch like Start's callbacks,
// with the peer's name when a peer's End-of-RIB for IPv4 unicast arrives:
// everything it had to send since the session came up has been received.
// Call it before Start.
func (s *Speaker) OnEndOfRIB(fn func(peer string)) { s.onEOR = fn }

// endOfRIB reports whether p is an End-of-RIB marker (a path without an
// NLRI), passing one from a known peer to the OnEndOfRIB callback; after
// a restart it also re-arms the restart of sessions not yet up
// (rearmRestart). Called from the watch with s.routes held.
func (s *Speaker) endOfRIB(ctx context.Context, v *view, p *api.Path) bool {
	if p.GetNlri() != nil {
		return false
	}
	name, known := v.byAddr[p.GetNeighborIp()]
	f := p.GetFamily()
	if known && f.GetAfi() == api.Family_AFI_IP && f.GetSafi() == api.Family_SAFI_UNICAST {
		s.log.Info("bgp end-of-rib received", "peer", name)
		s.restartDone(name)
		if s.onEOR != nil {
			s.onEOR(name)
		}
		if v.cfg.Restarting {
			s.goroutine(func() { s.rearmRestart(ctx, v) })
		}
	}
	return true
}

// rearmRestart announces the restart again to sessions that have not come
// up since cgwd started. gobgp ends its restart mode for every peer at
// once, when the peers then up have sent their End-of-RIB; a session that
// comes up later would open without the Restart State and Forwarding State
// bits, and its peer would drop cgwd's routes at once (RFC 4724 4.2) only
// to learn them again a moment later. Such a peer, while it is not
// connected (idle, connect, active: no NOTIFICATION goes out), is added
// again as restarting.
func (s *Speaker) rearmRestart(ctx context.Context, v *view) {
	var again []PeerConfig
	err := s.srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		gr := p.GetGracefulRestart()
		switch p.GetState().GetSessionState() {
		case api.PeerState_IDLE, api.PeerState_CONNECT, api.PeerState_ACTIVE:
		default:
			return
		}
		if !gr.GetEnabled() || gr.GetLocalRestarting() || p.GetTimers().GetState().GetUptime() != nil {
			return // no graceful restart, still restarting, or up once since the start
		}
		if pc, ok := v.peers[v.byAddr[p.GetConf().GetNeighborAddress()]]; ok {
			again = append(again, pc)
		}
	})
	if err != nil {
		s.log.Warn("bgp: list peers to re-arm graceful restart", "err", err)
		return
	}
	for _, pc := range again {
		err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: pc.Address.String()})
		if err == nil {
			err = s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: restarted(apiPeer(pc, 0), true)})
		}
		if err != nil {
			s.log.Error("bgp: re-arm graceful restart", "peer", pc.Name, "err", err)
			continue
		}
		s.log.Info("bgp: session not up yet will announce the restart", "peer", pc.Name)
	}
}
