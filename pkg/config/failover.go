package config

import "time"

// Failover defaults.
const (
	DefaultHoldDown      = 10 * time.Second
	DefaultBFDIntervalDX = 300 * time.Millisecond // AWS's DX BFD: 300 ms x 3
	DefaultBFDMultiplier = 3
)

// Failover configures path selection.
type Failover struct {
	// HoldDown is how long a recovered path waits before carrying traffic again.
	HoldDown *Duration `yaml:"hold_down"`
	// NexthopCompatMode keeps net.ipv4.nexthop_compat_mode on. By default cgwd
	// turns it off in its namespace, so that a failover costs the same whatever
	// the number of routes; `ip route` then shows "nhid N" without the gateway.
	NexthopCompatMode bool `yaml:"nexthop_compat_mode"`
	// Symmetry samples where AWS sends (see Symmetry).
	Symmetry Symmetry `yaml:"symmetry"`
}

// BFD configures a BFD session (RFC 5880/5881) on a path: on by default on
// Direct Connect (AWS runs async BFD there), off on tunnels (AWS VPN has no BFD;
// turn it on where the peer speaks BFD).
type BFD struct {
	Enabled *bool `yaml:"enabled"`
	// Interval is the desired transmit and required receive interval (50ms-10s).
	Interval Duration `yaml:"interval"`
	// Multiplier is the detection multiplier (1-255).
	Multiplier int `yaml:"multiplier"`
}

// On reports whether the session is enabled.
func (b *BFD) On() bool { return b.Enabled != nil && *b.Enabled }

func (b *BFD) applyDefaults(enabled bool) {
	if b.Enabled == nil {
		b.Enabled = &enabled
	}
	if b.Interval == 0 {
		b.Interval = Duration(DefaultBFDIntervalDX)
	}
	if b.Multiplier == 0 {
		b.Multiplier = DefaultBFDMultiplier
	}
}

// dxBFDWarnings warns of BFD on Direct Connect faster than AWS runs it:
// AWS's DX routers take 300 ms as their minimum, and BFD negotiates the
// slower of the two sides, so a shorter interval is never used.
func (c *Config) dxBFDWarnings(w *validator) {
	for _, s := range c.sessions() {
		if s.dx && s.bfd.On() && time.Duration(s.bfd.Interval) < DefaultBFDIntervalDX {
			w.add(s.field+".bfd.interval", "%v is below AWS's Direct Connect minimum of %v: AWS will negotiate %v, so failure detection is no faster than with %v",
				time.Duration(s.bfd.Interval), DefaultBFDIntervalDX, DefaultBFDIntervalDX, DefaultBFDIntervalDX)
		}
	}
}

func (f *Failover) applyDefaults() {
	if f.HoldDown == nil {
		d := Duration(DefaultHoldDown)
		f.HoldDown = &d
	}
}

func (v *validator) bfd(field string, b *BFD) {
	if b.Interval < Duration(50*time.Millisecond) || b.Interval > Duration(10*time.Second) {
		v.add(field+".interval", "%v is outside 50ms-10s", time.Duration(b.Interval))
	}
	if b.Multiplier < 1 || b.Multiplier > 255 {
		v.add(field+".multiplier", "%d is outside 1-255", b.Multiplier)
	}
}

func (v *validator) failover(f *Failover) {
	if f.HoldDown != nil && *f.HoldDown < 0 {
		v.add("failover.hold_down", "must not be negative")
	}
}

// Probe configures ICMP echo probes across a tunnel to the AWS inside
// address, the health check of tunnels without BFD (AWS VPN has none).
type Probe struct {
	// Enabled defaults to true on tunnels without BFD.
	Enabled *bool `yaml:"enabled"`
	// Interval between probes (default 1s).
	Interval Duration `yaml:"interval"`
	// LossThreshold lost probes in a row take the tunnel down (default 3).
	LossThreshold int `yaml:"loss_threshold"`
	// Recovery answered probes in a row bring it back (default 3).
	Recovery int `yaml:"recovery"`
}

// On reports whether probes run.
func (p *Probe) On() bool { return p.Enabled != nil && *p.Enabled }

func (p *Probe) applyDefaults(enabled bool) {
	if p.Enabled == nil {
		p.Enabled = &enabled
	}
	if p.Interval == 0 {
		p.Interval = Duration(time.Second)
	}
	if p.LossThreshold == 0 {
		p.LossThreshold = 3
	}
	if p.Recovery == 0 {
		p.Recovery = 3
	}
}

func (v *validator) probe(field string, p *Probe) {
	if p.Interval < Duration(10*time.Millisecond) || p.Interval > Duration(60*time.Second) {
		v.add(field+".interval", "%v is outside 10ms-60s", time.Duration(p.Interval))
	}
	if p.LossThreshold < 1 || p.LossThreshold > 100 {
		v.add(field+".loss_threshold", "%d is outside 1-100", p.LossThreshold)
	}
	if p.Recovery < 1 || p.Recovery > 100 {
		v.add(field+".recovery", "%d is outside 1-100", p.Recovery)
	}
}
