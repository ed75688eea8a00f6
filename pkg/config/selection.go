package config

import (
	"fmt"
	"math"
	"time"
)

// Path preferences by default, in AWS's own order for traffic toward the
// customer gateway when prefixes are equal (the Site-to-Site VPN route
// priority page: Direct Connect BGP routes, then static VPN routes, then
// BGP routes from a VPN): cgwd sends the same way. A path's preference
// is also the local preference gobgp gives its routes, so `gobgp global
// rib` marks the path the kernel uses as best.
const (
	PreferenceDX         = 300
	PreferenceStaticVPN  = 200
	PreferenceDynamicVPN = 100
)

// Symmetry guard defaults.
const (
	// DefaultSymmetryInterval is how often cgwd samples the paths' receive counters.
	DefaultSymmetryInterval = 5 * time.Second
	// DefaultAWSSendsPPS is the packet rate on a path's netdev above which
	// AWS counts as sending traffic on it: above control traffic (BFD at
	// its fastest, 50 ms, is 20 packets/s; BGP keepalives and probes add
	// about one).
	DefaultAWSSendsPPS = 25
)

// Symmetry configures the symmetry guard: per path, whether AWS sends on it
// (its netdev's receive counter rises faster than MinPPS) next to whether
// cgwd sends on it; the metric cgwd_path_asymmetric says where AWS sends on
// a path cgwd does not use.
type Symmetry struct {
	// Interval is how often the counters are sampled (1s-1m).
	Interval Duration `yaml:"interval"`
	// MinPPS is the receive rate, in packets per second, above which AWS
	// counts as sending on a path.
	MinPPS int `yaml:"min_pps"`
}

func (s *Symmetry) applyDefaults() {
	if s.Interval == 0 {
		s.Interval = Duration(DefaultSymmetryInterval)
	}
	if s.MinPPS == 0 {
		s.MinPPS = DefaultAWSSendsPPS
	}
}

// vpnPreference is a VPN tunnel's default preference.
func vpnPreference(v *VPN) int {
	if v.Static() {
		return PreferenceStaticVPN
	}
	return PreferenceDynamicVPN
}

// applyPreferences gives every path without a preference in the file its
// default; an explicit 0 is kept for Validate to refuse.
func (c *Config) applyPreferences(given map[string]bool) {
	for i := range c.VPN {
		v := &c.VPN[i]
		for j := range v.Tunnels {
			t := &v.Tunnels[j]
			if t.Preference == 0 && !given[fmt.Sprintf("vpn[%d].tunnels[%d].preference", i, j)] {
				t.Preference = vpnPreference(v)
			}
		}
	}
	for i := range c.DirectConnect {
		d := &c.DirectConnect[i]
		if d.Preference == 0 && !given[fmt.Sprintf("direct_connect[%d].preference", i)] {
			d.Preference = PreferenceDX
		}
	}
	c.Failover.Symmetry.applyDefaults()
}

// selection checks the paths' preferences (a BGP local preference: 1 to
// 2^32-1) and the symmetry guard's settings.
func (v *validator) selection(c *Config) {
	pref := func(field string, p int) {
		if p < 1 || p > math.MaxUint32 {
			v.add(field, "%d is outside 1-%d (higher is preferred; defaults: Direct Connect %d, static VPN %d, BGP VPN %d)",
				p, uint32(math.MaxUint32), PreferenceDX, PreferenceStaticVPN, PreferenceDynamicVPN)
		}
	}
	for i := range c.VPN {
		for j, t := range c.VPN[i].Tunnels {
			pref(fmt.Sprintf("vpn[%d].tunnels[%d].preference", i, j), t.Preference)
		}
	}
	for i, d := range c.DirectConnect {
		pref(fmt.Sprintf("direct_connect[%d].preference", i), d.Preference)
	}
	s := c.Failover.Symmetry
	if iv := time.Duration(s.Interval); iv < time.Second || iv > time.Minute {
		v.add("failover.symmetry.interval", "%v is outside 1s-1m", iv)
	}
	if s.MinPPS < 1 {
		v.add("failover.symmetry.min_pps", "%d must be at least 1", s.MinPPS)
	}
}
