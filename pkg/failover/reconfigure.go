package failover

import (
	"errors"
	"reflect"
	"slices"

	"github.com/cgwd/cgwd/pkg/bfd"
	"github.com/cgwd/cgwd/pkg/probe"
)

// Changes says what Reconfigure did, by path name.
type Changes struct {
	Added, Removed, Restarted, Retimed []string
}

// Reconfigure applies a new set of paths and hold-down to a started manager
// (a config reload). Paths are matched by name: an unchanged path is not
// touched; a path whose BFD timers alone changed keeps its session and
// renegotiates them (RFC 5880 Poll); a path whose health check changed
// otherwise gets a new one and counts as unhealthy until it passes; a removed
// path's checks stop and its metrics go; an added path starts unusable, like
// every path at start-up. Call it after the FIB knows the new paths.
func (m *Manager) Reconfigure(cfg Config) (Changes, error) {
	m.reconf.Lock()
	defer m.reconf.Unlock()
	var ch Changes
	want := map[string]PathConfig{}
	for _, pc := range cfg.Paths {
		want[pc.Name] = pc
	}

	m.mu.Lock()
	m.cfg.HoldDown = cfg.HoldDown
	old := m.paths
	var stop []*pathState
	var start []string
	var retime []*pathState
	next := map[string]*pathState{}
	for name, p := range old {
		nc, keep := want[name]
		switch {
		case !keep:
			ch.Removed = append(ch.Removed, name)
			m.stopHold(p)
			stop = append(stop, p)
			m.forgetMetrics(p)
		case sameChecks(p.cfg, nc) && !slices.Contains(cfg.Recreated, name):
			p.cfg = withChecks(nc, p.cfg)
			next[name] = p
			if !reflect.DeepEqual(timers(p.cfg.BFD), timers(nc.BFD)) {
				ch.Retimed = append(ch.Retimed, name)
				p.cfg.BFD.Timers = nc.BFD.Timers
				retime = append(retime, p)
			}
		default:
			// A new health check: the path is unhealthy until it passes; its
			// BGP state carries over.
			ch.Restarted = append(ch.Restarted, name)
			m.stopHold(p)
			stop = append(stop, p)
			m.forgetMetrics(p)
			np := &pathState{cfg: nc, healthy: nc.BFD == nil && nc.Probe == nil, bgpUp: p.bgpUp, adminDown: p.adminDown, linkDown: m.linkDown[nc.Link], since: p.since}
			np.usable = p.usable && np.healthy
			next[name] = np
			start = append(start, name)
		}
	}
	m.order = m.order[:0]
	for _, pc := range cfg.Paths {
		if _, ok := next[pc.Name]; !ok {
			next[pc.Name] = &pathState{cfg: pc, healthy: pc.BFD == nil && pc.Probe == nil, linkDown: m.linkDown[pc.Link]}
			ch.Added = append(ch.Added, pc.Name)
			start = append(start, pc.Name)
		}
		m.order = append(m.order, pc.Name)
	}
	m.paths = next
	m.zeroFailovers()
	m.mu.Unlock()
	defer m.replayTunnels(start)

	for _, p := range stop {
		m.stopChecks(p)
	}
	var errs []error
	for _, p := range retime {
		if err := p.session.SetTimers(m.ctx, p.cfg.BFD.Timers); err != nil {
			errs = append(errs, err)
		}
	}
	for _, name := range start {
		p := m.path(name)
		if !p.usable {
			m.fib.SetUsable(name, false)
		}
		if err := m.startChecks(name, p); err != nil {
			errs = append(errs, err)
		}
	}
	m.updateActive()
	if len(ch.Added)+len(ch.Removed)+len(ch.Restarted)+len(ch.Retimed) > 0 {
		m.log.Info("paths reconfigured", "added", ch.Added, "removed", ch.Removed,
			"restarted", ch.Restarted, "retimed", ch.Retimed, "hold_down", cfg.HoldDown)
	}
	return ch, errors.Join(errs...)
}

// sameChecks reports whether a and b check the path the same way, apart
// from BFD timers (which a running session can change).
func sameChecks(a, b PathConfig) bool {
	if a.Kind != b.Kind || a.VPN != b.VPN || a.Link != b.Link || a.ResetBGPOnDown != b.ResetBGPOnDown || a.Static != b.Static {
		return false
	}
	if (a.BFD == nil) != (b.BFD == nil) || (a.Probe == nil) != (b.Probe == nil) {
		return false
	}
	if a.BFD != nil && (a.BFD.Interface != b.BFD.Interface || a.BFD.Local != b.BFD.Local || a.BFD.Peer != b.BFD.Peer) {
		return false
	}
	return a.Probe == nil || reflect.DeepEqual(probeKey(*a.Probe), probeKey(*b.Probe))
}

// withChecks is b keeping a's BFD and probe configs (whose callbacks the
// running checks use).
func withChecks(b, a PathConfig) PathConfig {
	b.BFD, b.Probe = a.BFD, a.Probe
	return b
}

func timers(c *bfd.Config) bfd.Timers {
	if c == nil {
		return bfd.Timers{}
	}
	return c.Timers
}

// probeKey is a probe config without its callbacks and logger.
func probeKey(c probe.Config) probe.Config {
	c.OnChange, c.OnResult, c.Logger = nil, nil, nil
	return c
}

// forgetMetrics deletes a path's labelled series. Called with m.mu held.
func (m *Manager) forgetMetrics(p *pathState) {
	m.active.DeleteLabelValues(p.cfg.VPN, p.cfg.Name, p.cfg.Kind)
	m.info.DeleteLabelValues(p.cfg.VPN, p.cfg.Name, p.cfg.Kind, routingOf(p.cfg))
	if p.cfg.BFD != nil {
		m.bfdUp.DeleteLabelValues(p.cfg.Name, p.cfg.BFD.Peer.String())
	}
	if p.cfg.Probe != nil {
		m.probeRTT.DeleteLabelValues(p.cfg.VPN, p.cfg.Name)
		m.probeLoss.DeleteLabelValues(p.cfg.VPN, p.cfg.Name)
		m.probeJit.DeleteLabelValues(p.cfg.VPN, p.cfg.Name)
	}
}
