package daemon

import (
	"fmt"

	"github.com/cgwd/cgwd/pkg/bgp"
	"github.com/cgwd/cgwd/pkg/config"
)

// A VPN connection with routing: static (AWS's StaticRoutesOnly) has no
// BGP session: its tunnels are paths that failover checks by the tunnel's
// own state and its BFD or probes, and its static_routes are offered to
// the FIB over both tunnels, through the same nexthop groups as BGP's
// routes, from start-up until a reload removes them.

// tunnelPeer is a tunnel's BGP peer settings; for a static connection only
// the addresses (health checks use them), with no session to read a
// password for.
func tunnelPeer(v *config.VPN, t *config.Tunnel) (bgp.PeerConfig, error) {
	aws, local := t.InsideAddrs()
	if v.Static() {
		return bgp.PeerConfig{Name: t.Name, Address: aws.Addr(), LocalAddress: local.Addr()}, nil
	}
	return peerConfig(t.Name, aws.Addr(), local.Addr(), &t.BGP)
}

// tunnelRank is the FIB rank of tunnel i of connection v, the last
// tie-break after preference and BGP's attributes: among paths of equal
// preference, AWS's order again (DX rank 0, then static VPN connections,
// then dynamic ones); within a connection, active-standby ranks tunnel 1
// before tunnel 2 and ecmp ranks them equal.
func tunnelRank(v *config.VPN, i int) int {
	base := 3 // dynamic VPN
	if v.Static() {
		base = 1
	}
	if v.Mode == config.ModeECMP {
		return base
	}
	return base + i
}

// reloadStaticRoutes offers the FIB the static routes a reload added and
// withdraws those it removed; the paths are already the new ones.
func (d *Daemon) reloadStaticRoutes(old, cur *config.Config) {
	keep := map[config.StaticRoute]bool{}
	for _, r := range cur.StaticRoutes() {
		keep[r] = true
	}
	for _, r := range old.StaticRoutes() {
		if !keep[r] {
			d.fib.Remove(r.Prefix, r.Tunnel)
		}
	}
	for _, r := range cur.StaticRoutes() {
		d.fib.Add(r.Prefix, r.Tunnel, r.Gateway)
	}
}

// routingChanged names the connections whose routing (bgp or static) a
// reload would change for a tunnel that stays: that swaps BGP sessions for
// static routes on running paths, which only a restart does cleanly.
func routingChanged(a, b *config.Config) []string {
	was := map[string]bool{} // tunnel -> static
	for _, v := range a.VPN {
		for _, t := range v.Tunnels {
			was[t.Name] = v.Static()
		}
	}
	var out []string
	for i, v := range b.VPN {
		for _, t := range v.Tunnels {
			if static, ok := was[t.Name]; ok && static != v.Static() {
				out = append(out, fmt.Sprintf("vpn[%d].routing", i))
				break
			}
		}
	}
	return out
}
