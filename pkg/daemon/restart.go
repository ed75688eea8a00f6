package daemon

import (
	"time"

	"github.com/cgwd/cgwd/pkg/bgp"
	"github.com/cgwd/cgwd/pkg/config"
)

// A stop for a restart (PrepareRestart, then Run's context ends) differs
// from a plain stop in what it leaves behind: the BGP sessions are not
// closed with a Cease NOTIFICATION (peers with graceful restart keep
// cgwd's routes), and the FIB leaves its routes, nexthop objects and
// kernel settings (ip_forward among them) for the next run to adopt. The
// tunnels still stop: their data plane is this process.

// PrepareRestart makes the stop that follows a stop for a restart. Call it
// before Run's context ends.
func (d *Daemon) PrepareRestart() {
	d.restarting.Store(true)
	d.mu.Lock()
	f := d.fib
	d.mu.Unlock()
	if f != nil {
		f.KeepOnStop()
	}
	d.log.Info("stopping for a restart: BGP sessions close without a NOTIFICATION, routes and forwarding stay in the kernel")
}

// gracefulRestart is a session's graceful restart from the config: dx for a
// Direct Connect link's session, bfd when BFD runs on it.
func gracefulRestart(cfg *config.Config, p *config.PeerBGP, dx, bfd bool) bgp.GracefulRestart {
	return bgp.GracefulRestart{
		Enabled:     cfg.GracefulRestartOn(p, dx, bfd),
		RestartTime: cfg.BGP.GracefulRestart.Time().Truncate(time.Second),
	}
}
