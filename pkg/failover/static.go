package failover

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// A static path (PathConfig.Static, a tunnel of a VPN connection with
// routing: static) has no BGP session: the tunnel's own state (IKE SA and
// Child SA up, DPD answered; or a fresh WireGuard handshake) takes the
// session's place, and its BFD or probes check it as they check any path.
// It is usable when its tunnel is up and its checks pass, after the same
// hold-down, and it fails over to and from the other paths as a BGP path
// does; which usable path carries a prefix is the FIB's choice.

// TunnelState reports a tunnel's state, from the daemon's watch of its
// tunnels: for a static path it is the path's session. A state reported
// before the path exists (a reload starts tunnels before it adds their
// paths, and tunnels start before failover) is kept and applied when the
// path is added or failover starts.
func (m *Manager) TunnelState(name string, up bool) {
	m.mu.Lock()
	m.tunnelUp[name] = up
	p := m.paths[name]
	// Before Start, the state is only kept: Start applies it, and nothing
	// reads ev yet (a tunnel's watch must never wait for failover).
	static := p != nil && p.cfg.Static && m.running
	m.mu.Unlock()
	if static {
		m.send(event{path: name, tunnel: true, at: time.Now(), reason: reason("tunnel", up)})
	}
}

// replayTunnels applies the last reported tunnel state to the static paths
// among names (just started or added). The event reads the state when it
// is handled, so a report racing with it cannot leave an older one behind.
func (m *Manager) replayTunnels(names []string) {
	for _, n := range names {
		m.mu.Lock()
		p, up := m.paths[n], m.tunnelUp[n]
		m.mu.Unlock()
		if p != nil && p.cfg.Static && up {
			m.send(event{path: n, tunnel: true, at: time.Now(), reason: reason("tunnel", up)})
		}
	}
}

// sessionKind names what stands for a path's session in failover causes:
// "bgp", or "tunnel" for a static path.
func sessionKind(c PathConfig) string {
	if c.Static {
		return "tunnel"
	}
	return "bgp"
}

// routingOf is the routing label of a path: "static" for a static
// connection's tunnel, "bgp" for every other path.
func routingOf(c PathConfig) string {
	if c.Static {
		return "static"
	}
	return "bgp"
}

// staticStatus fills a path status's routing fields: a static path shows
// its tunnel's state instead of a BGP session.
func staticStatus(ps *PathStatus, c PathConfig) {
	ps.Routing = routingOf(c)
	if c.Static {
		ps.TunnelUp, ps.BGPUp = ps.BGPUp, false
		ps.Health = "tunnel-only"
	}
}

func newPathInfo() *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "cgwd_path_info",
		Help: "Always 1: a path, its VPN connection, kind and routing (bgp, or static for a static VPN connection's tunnel).",
	}, []string{"vpn", "path", "kind", "routing"})
}
