package failover

// BGPRestarting asks whether a path whose BGP peer is restarting
// gracefully (RFC 4724) should be helped through the restart: yes while a
// health check of the path's own (BFD or probes) is up and so vouches for
// its forwarding; the session then keeps its BGP state here and its routes
// stay in the FIB, the health check deciding whether the path carries
// traffic. Without a check, or with it down (a hold timer that expired on
// a dead path, which gobgp also takes for a restart), the answer is no and
// the session goes down as before.
func (m *Manager) BGPRestarting(path string) bool {
	m.mu.Lock()
	p := m.paths[path]
	keep := p != nil && (p.cfg.BFD != nil || p.cfg.Probe != nil) && p.healthy
	m.mu.Unlock()
	if keep {
		m.log.Info("bgp peer restarting gracefully: the path stays usable while its health check is up", "path", path)
	}
	return keep
}
