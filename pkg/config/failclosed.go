package config

import (
	"fmt"
	"net/netip"
)

// FailClosedOn reports whether traffic for AWS prefixes is kept from the
// default route while cgwd is stopped or no path to AWS is usable.
func (c *Config) FailClosedOn() bool { return c.FailClosed == nil || *c.FailClosed }

// ManageForwardingOn reports whether cgwd turns IPv4 forwarding on and
// rp_filter loose on its netdevs while it runs.
func (c *Config) ManageForwardingOn() bool { return c.ManageForwarding == nil || *c.ManageForwarding }

// AWSPrefixList returns aws_prefixes parsed; the config must have passed Validate.
func (c *Config) AWSPrefixList() []netip.Prefix {
	return Prefixes(c.AWSPrefixes)
}

// failClosed checks aws_prefixes: IPv4 prefixes that neither overlap the
// on-prem prefixes nor cover an address cgwd needs outside the tunnels (a
// tunnel endpoint or the link-local range of the inside and DX addresses):
// cgwd makes them unreachable while no path to AWS is usable.
func (v *validator) failClosed(c *Config) {
	var onprem []netip.Prefix
	for _, s := range c.Prefixes {
		if p := s.Prefix(); p.IsValid() {
			onprem = append(onprem, p)
		}
	}
	type endpoint struct {
		field string
		addr  netip.Addr
	}
	var endpoints []endpoint
	for i, vpn := range c.VPN {
		for j, t := range vpn.Tunnels {
			f := fmt.Sprintf("vpn[%d].tunnels[%d].outside", i, j)
			if a := t.Outside.Remote.Addr(); a.IsValid() {
				endpoints = append(endpoints, endpoint{f + ".remote", a})
			}
			if a := t.Outside.Local.Addr(); a.IsValid() {
				endpoints = append(endpoints, endpoint{f + ".local", a})
			}
		}
	}
	for i, s := range c.AWSPrefixes {
		field := fmt.Sprintf("aws_prefixes[%d]", i)
		p, ok := v.prefix(field, s)
		if !ok {
			continue
		}
		if p.Overlaps(linkLocal) {
			v.add(field, "%s overlaps 169.254.0.0/16 (tunnel inside and Direct Connect addresses)", p)
			continue
		}
		for j, o := range onprem {
			if p.Overlaps(o) {
				v.add(field, "%s overlaps prefixes[%d] %s (on-prem)", p, j, o)
			}
		}
		for _, e := range endpoints {
			if p.Contains(e.addr) {
				v.add(field, "%s contains %s %s: the tunnel's underlay would be unreachable while the tunnels are down", p, e.field, e.addr)
			}
		}
	}
}
