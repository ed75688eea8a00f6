package failover

import "github.com/cgwd/cgwd/pkg/bfd"

// PeerAlive says whether the named path's liveness check sees the peer:
// known is false when the path has none (BGP alone) or is not configured;
// else alive is BFD Up, or the probes' verdict. pkg/bgp uses it to tell a
// peer that is away from one that refuses cgwd's TCP MD5 signature.
func (m *Manager) PeerAlive(name string) (alive, known bool) {
	m.mu.Lock()
	p := m.paths[name]
	if p == nil {
		m.mu.Unlock()
		return false, false
	}
	session, prober := p.session, p.prober
	m.mu.Unlock()
	switch {
	case session != nil:
		return session.Status().State == bfd.StateUp, true
	case prober != nil:
		return prober.Stats().Up, true
	}
	return false, false
}
