package config

import (
	"fmt"
	"net/netip"
	"reflect"
)

// Routing is how a VPN connection learns the VPC's routes.
type Routing string

// Routing kinds of a VPN connection.
const (
	// RoutingBGP: a BGP session in each tunnel (AWS's dynamic routing).
	RoutingBGP Routing = "bgp"
	// RoutingStatic: no BGP (AWS's StaticRoutesOnly); the connection's
	// static_routes go over its tunnels while their health checks pass.
	RoutingStatic Routing = "static"
)

// Static reports whether the connection routes statically (no BGP).
func (v *VPN) Static() bool { return v.Routing == RoutingStatic }

// routing checks a connection's routing and static_routes: static needs
// its VPC CIDRs and has no BGP session, so a tunnel's bgp section is
// refused rather than silently unused; with bgp the routes come from BGP
// and static_routes is refused.
func (v *validator) routing(field string, c *VPN) {
	switch c.Routing {
	case RoutingBGP:
		if len(c.StaticRoutes) > 0 {
			v.add(field+".static_routes", "is only for routing: static; with routing: bgp the VPC's routes come from BGP (set routing: static, or remove static_routes)")
		}
		return
	case RoutingStatic:
	default:
		v.add(field+".routing", "%q is not one of bgp, static", c.Routing)
		return
	}
	if len(c.StaticRoutes) == 0 {
		v.add(field+".static_routes", "is required with routing: static (the VPC CIDRs to route over the tunnels, e.g. [10.200.0.0/16])")
	}
	seen := map[netip.Prefix]string{}
	for i, s := range c.StaticRoutes {
		f := fmt.Sprintf("%s.static_routes[%d]", field, i)
		p, ok := v.prefix(f, s)
		if !ok {
			continue
		}
		switch other, dup := seen[p]; {
		case dup:
			v.add(f, "%s is already %s", s, other)
		case p.Bits() == 0:
			v.add(f, "%s is the default route: cgwd routes only the VPC's CIDRs over a tunnel", s)
		case linkLocal.Overlaps(p):
			v.add(f, "%s overlaps 169.254.0.0/16, which holds the tunnels' inside addresses", s)
		}
		seen[p] = f
	}
	for j := range c.Tunnels {
		if !reflect.DeepEqual(c.Tunnels[j].BGP, PeerBGP{}) {
			v.add(fmt.Sprintf("%s.tunnels[%d].bgp", field, j), "a connection with routing: static has no BGP session; remove bgp (or set routing: bgp)")
		}
	}
}

// staticWarnings warns of static tunnels that only their own state checks:
// without probes or BFD, a WireGuard tunnel is down for cgwd only once its
// last handshake is 3 minutes old, an IPsec one once DPD gives up.
func (c *Config) staticWarnings(w *validator) {
	for i := range c.VPN {
		v := &c.VPN[i]
		if !v.Static() {
			continue
		}
		for j, t := range v.Tunnels {
			if !t.BFD.On() && !t.Probe.On() {
				w.add(fmt.Sprintf("vpn[%d].tunnels[%d].probe", i, j), "routing: static with neither probes nor BFD: only the tunnel's own state (IKE DPD, WireGuard handshake age) takes it out of use, which is slow; enable probe")
			}
		}
	}
}

// StaticRoute is one VPC CIDR routed over one tunnel of a static connection.
type StaticRoute struct {
	// Tunnel is the tunnel's name (its path).
	Tunnel string
	// Prefix is the VPC CIDR.
	Prefix netip.Prefix
	// Gateway is AWS's inside address of the tunnel.
	Gateway netip.Addr
}

// StaticRoutes lists every static connection's routes, once per tunnel.
func (c *Config) StaticRoutes() []StaticRoute {
	var out []StaticRoute
	for _, v := range c.VPN {
		if !v.Static() {
			continue
		}
		for i := range v.Tunnels {
			t := &v.Tunnels[i]
			aws, _ := t.InsideAddrs()
			for _, p := range v.StaticRoutes {
				out = append(out, StaticRoute{Tunnel: t.Name, Prefix: p.Prefix(), Gateway: aws.Addr()})
			}
		}
	}
	return out
}
