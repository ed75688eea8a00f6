package daemon

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cgwd/cgwd/pkg/bgp"
	"github.com/cgwd/cgwd/pkg/config"
	"github.com/cgwd/cgwd/pkg/control"
	"github.com/cgwd/cgwd/pkg/drain"
	"github.com/cgwd/cgwd/pkg/netdev"
)

// Drain and undrain (control.DrainActions). A drained box prepends
// drain.prepend more ASNs on every AWS session (applied with the sessions
// up: policies replaced, routes re-sent), so that AWS prefers the other
// box; the drain then waits until every path has been quiet for
// drain.quiet_period. The state lives in d.drain, not in the config: a
// reload keeps it (every BGP configuration the daemon applies goes through
// withDrain), a restart starts undrained unless drain.start_drained.
var _ control.DrainActions = (*Daemon)(nil)

// What a drained box sends its LAN peers with drain.lan: worst. 4294967295
// is not used: some routers take it as unreachable and drop the route, and
// the drained box is to stay the routers' fallback.
const (
	drainedMED       = 4294967294
	drainedLocalPref = 1
)

// withDrain is c as the speaker runs it under cfg: while the box is drained,
// with cfg's drain prepends on every AWS session and, toward the LAN peers,
// the worst MED and local preference, or nothing (drain.lan).
func (d *Daemon) withDrain(c bgp.Config, cfg *config.Config) bgp.Config {
	if !d.drain.Drained() {
		return c
	}
	c.Peers = slices.Clone(c.Peers)
	for i := range c.Peers {
		if !c.Peers[i].LAN {
			c.Peers[i].Prepend += cfg.Drain.Prepend
		}
	}
	if cfg.Drain.LAN == config.DrainLANWithdraw {
		c.LAN.Withdraw = true
	} else {
		c.LAN.MED = bgp.KindValues{DX: drainedMED, VPN: drainedMED}
		c.LAN.LocalPref = bgp.KindValues{DX: drainedLocalPref, VPN: drainedLocalPref}
	}
	return c
}

// drainChanges says what draining does to this box, for its status.
func drainChanges(cfg *config.Config, bc bgp.Config) []string {
	var aws, lan []string
	for _, p := range bc.Peers {
		if p.LAN {
			lan = append(lan, p.Name)
		} else {
			aws = append(aws, p.Name)
		}
	}
	out := []string{fmt.Sprintf("AWS: %d more prepends on every session (%s)", cfg.Drain.Prepend, strings.Join(aws, ", "))}
	switch {
	case len(lan) == 0:
	case cfg.Drain.LAN == config.DrainLANWithdraw:
		out = append(out, fmt.Sprintf("LAN: every prefix withdrawn (%s)", strings.Join(lan, ", ")))
	default:
		out = append(out, fmt.Sprintf("LAN: MED %d and, on iBGP, local preference %d, the worst (%s)", drainedMED, drainedLocalPref, strings.Join(lan, ", ")))
	}
	return out
}

// drainPaths are the paths a drain watches: every DX link and tunnel, with
// the packets per second cgwd itself sends over each (BFD or probes, and
// BGP keepalives with their acknowledgements).
func drainPaths(cfg *config.Config) []drain.Path {
	rate := func(d config.Duration) float64 {
		if d <= 0 {
			return 0
		}
		return 1 / time.Duration(d).Seconds()
	}
	own := func(bfd *config.BFD, probe *config.Probe, b *config.PeerBGP) float64 {
		pps := 2 * rate(b.Keepalive)
		if bfd.On() {
			pps += rate(bfd.Interval)
		}
		if probe != nil && probe.On() && !bfd.On() {
			pps += rate(probe.Interval)
		}
		return pps
	}
	var out []drain.Path
	for _, x := range cfg.DirectConnect {
		out = append(out, drain.Path{Name: x.Name, Kind: "dx", Link: x.Interface, OwnPPS: own(&x.BFD, nil, &x.BGP)})
	}
	for _, v := range cfg.VPN {
		for _, t := range v.Tunnels {
			out = append(out, drain.Path{Name: t.Name, Kind: "tunnel", Link: t.Name, OwnPPS: own(&t.BFD, &t.Probe, &t.BGP)})
		}
	}
	return out
}

func drainSettings(c config.Drain) drain.Settings {
	return drain.Settings{QuietPeriod: time.Duration(c.QuietPeriod), QuietPPS: float64(*c.QuietPPS), Timeout: time.Duration(c.Timeout)}
}

// samplePaths reads every path's netdev packet counters from the kernel.
func samplePaths(paths []drain.Path) (map[string]drain.Counters, map[string]error) {
	cs, errs := map[string]drain.Counters{}, map[string]error{}
	for _, p := range paths {
		rx, tx, err := netdev.Packets(p.Link)
		if err != nil {
			errs[p.Name] = err
			continue
		}
		cs[p.Name] = drain.Counters{Rx: rx, Tx: tx}
	}
	return cs, errs
}

// startDrained marks the box drained before routing starts, so that its
// sessions come up with the drain's prepends.
func (d *Daemon) startDrained() {
	if !d.cfg.Drain.StartDrained && !d.StartDrained {
		return
	}
	d.drain.SetDrained(append(drainChanges(d.cfg, d.bgpCfg), "started drained: `cgwd undrain` puts the box back in service"))
	d.log.Warn("starting drained: AWS and the LAN are steered to the other box until `cgwd undrain`", "prepend", d.cfg.Drain.Prepend)
}

// applyDrain applies the drain state to the running BGP speaker with its
// sessions up.
func (d *Daemon) applyDrain(ctx context.Context) error {
	sp := d.bgpSpeaker()
	if sp == nil {
		return fmt.Errorf("bgp is not running")
	}
	d.mu.Lock()
	bc, cfg := d.bgpCfg, d.cfg
	d.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := sp.Reconfigure(ctx, d.withDrain(bc, cfg)); err != nil {
		return fmt.Errorf("bgp: %w", err)
	}
	return nil
}

// Drain makes the box unattractive to AWS and starts the wait until its
// paths are quiet; it returns at once with the drain's status. Draining a
// drained box changes nothing, unless its last wait timed out: then it
// waits again.
func (d *Daemon) Drain(context.Context) (drain.Status, error) {
	var st drain.Status
	err := d.onLoop(func(ctx context.Context) error {
		was := d.drain.Drained()
		d.mu.Lock()
		cfg, bc := d.cfg, d.bgpCfg
		d.mu.Unlock()
		st = d.drain.Begin(ctx, drainSettings(cfg.Drain), drainPaths(cfg), samplePaths, drainChanges(cfg, bc))
		if was {
			d.log.Info("operator: drain: already drained", "state", st.State)
			return nil
		}
		d.log.Warn("operator: draining: steering AWS and the LAN to the other box", "prepend", cfg.Drain.Prepend,
			"quiet_period", time.Duration(cfg.Drain.QuietPeriod), "timeout", time.Duration(cfg.Drain.Timeout))
		if err := d.applyDrain(ctx); err != nil {
			d.drain.Undrain()
			if err2 := d.applyDrain(ctx); err2 != nil {
				d.log.Error("drain: could not put the routing back", "err", err2)
			}
			return fmt.Errorf("drain: %w", err)
		}
		return nil
	})
	return st, err
}

// Undrain stops any wait and puts the box back in service.
func (d *Daemon) Undrain(context.Context) (drain.Status, error) {
	err := d.onLoop(func(ctx context.Context) error {
		if !d.drain.Drained() {
			d.log.Info("operator: undrain: not drained")
			return nil
		}
		d.log.Warn("operator: undraining: back in service")
		d.drain.Undrain()
		if err := d.applyDrain(ctx); err != nil {
			return fmt.Errorf("undrain: %w", err)
		}
		return nil
	})
	return d.drain.Status(), err
}

// DrainStatus is the drain state now, with the wait's per-path figures.
func (d *Daemon) DrainStatus() drain.Status { return d.drain.Status() }
