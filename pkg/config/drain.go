package config

import "time"

// Drain defaults.
const (
	DefaultDrainPrepend     = 5
	DefaultDrainQuietPeriod = 10 * time.Second
	DefaultDrainQuietPPS    = 10
	DefaultDrainTimeout     = 5 * time.Minute
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
	switch {
	case d.Timeout > Duration(24*time.Hour):
		v.add("drain.timeout", "%v is longer than 24h", time.Duration(d.Timeout))
	case d.Timeout < d.QuietPeriod:
		v.add("drain.timeout", "%v is shorter than drain.quiet_period (%v): the drain could never be done", time.Duration(d.Timeout), time.Duration(d.QuietPeriod))
	}
}
