package config

import (
	"fmt"
	"strings"
)

// DefaultICMPRate is the firewall's ICMP rate limit when none is given.
const DefaultICMPRate = "10/second"

// Firewall configures the nftables table cgwd installs to lock the gateway
// down (off by default): inbound traffic on the WAN interface is dropped
// unless it is IKE/NAT-T or WireGuard from a configured AWS endpoint, return
// traffic, rate-limited ICMP or SSH from AllowSSHFrom; BGP and BFD are
// accepted only from the configured peers on their interfaces.
type Firewall struct {
	// Enabled turns the firewall on.
	Enabled bool `yaml:"enabled"`
	// WANInterface is the netdev facing the internet (the tunnels' underlay).
	WANInterface string `yaml:"wan_interface"`
	// AllowSSHFrom lists the IPv4 prefixes allowed to reach TCP 22 over the
	// WAN interface (none by default).
	AllowSSHFrom []Prefix `yaml:"allow_ssh_from"`
	// ICMPRate limits ICMP arriving on the WAN interface, e.g. 10/second.
	ICMPRate Rate `yaml:"icmp_rate"`
}

func (f *Firewall) applyDefaults() {
	if f.ICMPRate.text == "" {
		f.ICMPRate = NewRate(DefaultICMPRate)
	}
}

func (v *validator) firewall(c *Config) {
	f := &c.Firewall
	for i, s := range f.AllowSSHFrom {
		v.prefix(fmt.Sprintf("firewall.allow_ssh_from[%d]", i), s)
	}
	if f.ICMPRate.err != "" {
		v.add("firewall.icmp_rate", "%s", f.ICMPRate.err)
	}
	if !f.Enabled {
		return
	}
	const field = "firewall.wan_interface"
	switch name := f.WANInterface; {
	case name == "":
		v.add(field, "is required when the firewall is enabled (the netdev facing the internet, e.g. eth0)")
	case len(name) > 15 || strings.ContainsAny(name, "/ \t\n:"):
		v.add(field, "%q is not a valid interface name", name)
	default:
		for i, vpn := range c.VPN {
			for j, t := range vpn.Tunnels {
				if t.Name == name {
					v.add(field, "%q is tunnel vpn[%d].tunnels[%d]; the WAN interface carries the tunnels", name, i, j)
				}
			}
		}
		for i, d := range c.DirectConnect {
			if d.Interface == name {
				v.add(field, "%q is Direct Connect link direct_connect[%d]'s interface", name, i)
			}
		}
	}
}
