package config

import "time"

// Drain defaults.
const (
	DefaultDrainPrepend     = 5
	DefaultDrainQuietPeriod = 10 * time.Second
	DefaultDrainQuietPPS    = 10
	DefaultDrainTimeout     = 5 * time.Minute
)

// DrainLAN is what a drained box sends its LAN peers.
type DrainLAN string

// What a drained box sends its LAN peers.
const (
	// DrainLANWorst keeps every prefix with the worst MED and, on iBGP, the
	// lowest local preference: the box stays the routers' fallback.
	DrainLANWorst DrainLAN = "worst"
	// DrainLANWithdraw withdraws every prefix from the LAN peers.
	DrainLANWithdraw DrainLAN = "withdraw"
)

// Drain configures `cgwd drain`, which makes this box unattractive to AWS
// and to the LAN peers for maintenance and waits until its paths to AWS
// carry no more traffic.
type Drain struct {
	// Prepend is how many more times the ASN is prepended toward AWS, on
	// every session, while drained (default 5, on top of the usual prepends).
	Prepend int `yaml:"prepend"`
	// QuietPeriod is how long every path must stay quiet before the drain
	// is done (default 10s).
	QuietPeriod Duration `yaml:"quiet_period"`
	// QuietPPS is the packet rate per path and direction, on top of cgwd's
	// own BFD, probe and BGP packets, below which a path counts as quiet
	// (default 10).
	QuietPPS *int `yaml:"quiet_pps"`
	// Timeout bounds the wait for quiet (default 5m): the box stays drained,
	// and the drain reports the paths still carrying traffic.
	Timeout Duration `yaml:"timeout"`
	// LAN is what the LAN peers get while drained: worst (the default:
	// every prefix with the worst MED, and local preference 1 on iBGP) or
	// withdraw (nothing).
	LAN DrainLAN `yaml:"lan"`
	// StartDrained makes cgwd start drained (for maintenance: the box comes
	// up without attracting traffic until `cgwd undrain`). Otherwise a
	// restarted cgwd starts undrained, whatever it was before.
	StartDrained bool `yaml:"start_drained"`
}

func (d *Drain) applyDefaults() {
	if d.Prepend == 0 {
		d.Prepend = DefaultDrainPrepend
	}
	if d.QuietPeriod == 0 {
		d.QuietPeriod = Duration(DefaultDrainQuietPeriod)
	}
	if d.QuietPPS == nil {
		n := DefaultDrainQuietPPS
		d.QuietPPS = &n
	}
	if d.Timeout == 0 {
		d.Timeout = Duration(DefaultDrainTimeout)
	}
	if d.LAN == "" {
		d.LAN = DrainLANWorst
	}
}

func (v *validator) drain(d *Drain) {
	if d.Prepend < 1 || d.Prepend > 30 {
		v.add("drain.prepend", "%d is outside 1-30", d.Prepend)
	}
	if d.QuietPeriod < Duration(time.Second) || d.QuietPeriod > Duration(10*time.Minute) {
		v.add("drain.quiet_period", "%v is outside 1s-10m", time.Duration(d.QuietPeriod))
	}
	if d.QuietPPS != nil && (*d.QuietPPS < 0 || *d.QuietPPS > 1_000_000) {
		v.add("drain.quiet_pps", "%d is outside 0-1000000", *d.QuietPPS)
	}
	if d.LAN != DrainLANWorst && d.LAN != DrainLANWithdraw {
		v.add("drain.lan", "%q is not one of worst, withdraw", d.LAN)
	}
	switch {
	case d.Timeout > Duration(24*time.Hour):
		v.add("drain.timeout", "%v is longer than 24h", time.Duration(d.Timeout))
	case d.Timeout < d.QuietPeriod:
		v.add("drain.timeout", "%v is shorter than drain.quiet_period (%v): the drain could never be done", time.Duration(d.Timeout), time.Duration(d.QuietPeriod))
	}
}
