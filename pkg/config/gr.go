package config

import (
	"time"
)

// BGP graceful restart (RFC 4724) defaults.
const (
	// DefaultGRRestartTime is the restart time cgwd advertises: how long a
	// peer keeps cgwd's routes while cgwd restarts. 120s is what AWS's
	// Direct Connect routers advertise (Direct Connect User Guide,
	// "BGP-specific settings").
	DefaultGRRestartTime = 120 * time.Second
	// maxGRRestartTime is the largest restart time the capability carries (12 bits of seconds).
	maxGRRestartTime = 4095 * time.Second
)

// GracefulRestart is bgp.graceful_restart: BGP graceful restart on the
// sessions toward AWS.
type GracefulRestart struct {
	// Enabled turns graceful restart on (the default) or off for every
	// session; a session's own bgp.graceful_restart overrides it.
	Enabled *bool `yaml:"enabled"`
	// RestartTime is advertised to peers: how long they keep cgwd's routes
	// while it restarts (default 120s, at most 4095s).
	RestartTime Duration `yaml:"restart_time"`
}

// On reports whether graceful restart is on globally.
func (g *GracefulRestart) On() bool { return g.Enabled == nil || *g.Enabled }

// Time is the restart time to advertise.
func (g *GracefulRestart) Time() time.Duration {
	if g.RestartTime == 0 {
		return DefaultGRRestartTime
	}
	return time.Duration(g.RestartTime)
}

func (v *validator) gracefulRestart(g *GracefulRestart) {
	if t := time.Duration(g.RestartTime); t != 0 && (t < time.Second || t > maxGRRestartTime || t%time.Second != 0) {
		v.add("bgp.graceful_restart.restart_time", "%v is not a whole number of seconds in 1s-4095s", t)
	}
}

// GracefulRestartOn reports whether the session of a tunnel or (dx) a
// Direct Connect link negotiates graceful restart: its own
// bgp.graceful_restart when set, else on unless graceful restart is off
// globally or the session is Direct Connect with BFD, where AWS recommends
// not running both (a BFD failure might then be taken for a restart and
// AWS's routes kept over a dead link; Direct Connect User Guide,
// "BGP-specific settings").
func (c *Config) GracefulRestartOn(p *PeerBGP, dx, bfd bool) bool {
	if !c.BGP.GracefulRestart.On() {
		return false
	}
	if p.GracefulRestart != nil {
		return *p.GracefulRestart
	}
	return !(dx && bfd)
}
