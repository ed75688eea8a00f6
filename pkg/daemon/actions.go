package daemon

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/cgwd/cgwd/pkg/bgp"
	"github.com/cgwd/cgwd/pkg/config"
	"github.com/cgwd/cgwd/pkg/control"
	"github.com/cgwd/cgwd/pkg/failover"
)

// The operator's actions over the control socket (control.Actions). Each is
// logged with "operator" in its message.
var _ control.Actions = (*Daemon)(nil)

// ReloadFile loads ConfigFile and applies it as Reload does, or with dryRun
// only says what applying it would do; the report lists the parts touched.
func (d *Daemon) ReloadFile(ctx context.Context, dryRun bool) control.ReloadReport {
	rep := control.ReloadReport{Config: d.ConfigFile, DryRun: dryRun}
	d.log.Info("operator: reload", "config", d.ConfigFile, "dry_run", dryRun)
	reject := func(why ...string) control.ReloadReport {
		rep.Rejected = why
		for _, w := range why {
			d.log.Error("operator: reload rejected, keeping the running state", "dry_run", dryRun, "why", w)
		}
		return rep
	}
	if d.ConfigFile == "" {
		return reject("cgwd was started without a config file to reload")
	}
	cfg, err := config.Load(d.ConfigFile)
	if err != nil {
		var probs config.Problems
		if !errors.As(err, &probs) {
			return reject(err.Error())
		}
		var why []string
		for _, p := range probs {
			why = append(why, p.String())
		}
		return reject(why...)
	}
	// Plan and apply in one turn of Run's loop, so that the report is what
	// this reload did, not what a SIGHUP in between changed.
	var planErr error
	err = d.onLoop(func(ctx context.Context) error {
		if rep.Changes, planErr = d.planReload(cfg); planErr != nil || dryRun {
			return nil
		}
		return d.apply(ctx, cfg)
	})
	switch {
	case planErr != nil:
		return reject(planErr.Error())
	case errors.Is(err, ErrRestartNeeded), errors.Is(err, ErrStopped):
		return reject(err.Error())
	case err != nil:
		rep.Errors = strings.Split(err.Error(), "\n")
		d.log.Error("operator: reload: not every change could be applied", "err", err)
		return rep
	}
	rep.Applied = true
	return rep
}

// planReload says what Reload(newCfg) does, part by part, in the order it
// does it, from the same comparisons; it changes nothing.
func (d *Daemon) planReload(newCfg *config.Config) ([]control.Change, error) {
	d.mu.Lock()
	old := d.cfg
	d.mu.Unlock()
	if diff := restartFields(old, newCfg); len(diff) > 0 {
		return nil, fmt.Errorf("changed %s: %w", strings.Join(diff, ", "), ErrRestartNeeded)
	}
	bgpCfg, _, _, err := d.reloadRoutingConfig(newCfg)
	if err != nil {
		return nil, err
	}
	var out []control.Change
	add := func(part, name, action, why string) {
		out = append(out, control.Change{Part: part, Name: name, Action: action, Why: why})
	}
	tc := diffTunnels(old, newCfg)
	for _, c := range tc.changed {
		add("tunnel", c.cfg.Name, "re-establish", "settings changed")
	}
	for _, c := range tc.added {
		add("tunnel", c.cfg.Name, "start", "added")
	}
	if sp := d.bgpSpeaker(); sp != nil {
		ch, err := sp.Plan(d.withDrain(bgpCfg, newCfg))
		switch {
		case errors.Is(err, bgp.ErrNewSpeaker):
			for _, p := range bgpCfg.Peers {
				add("bgp", p.Name, "re-establish", "ASN, router ID, listen port or gRPC address changed: every session")
			}
		case err != nil:
			return nil, err
		default:
			for _, n := range ch.Removed {
				add("bgp", n, "stop", "removed")
			}
			for _, n := range ch.Reestablished {
				add("bgp", n, "re-establish", "session settings changed")
			}
			for _, n := range ch.Added {
				add("bgp", n, "start", "added")
			}
			for _, n := range ch.Repolicied {
				add("bgp", n, "soft-reset", "prepends, communities or accepted prefixes changed; the session stays up")
			}
			for _, p := range ch.Advertised {
				add("prefix", p.String(), "advertise", "")
			}
			for _, p := range ch.Withdrawn {
				add("prefix", p.String(), "withdraw", "")
			}
		}
	}
	if old.FailClosedOn() != newCfg.FailClosedOn() || !slices.Equal(old.AWSPrefixList(), newCfg.AWSPrefixList()) {
		add("fail-closed", "", "update", "fail_closed or aws_prefixes changed")
	}
	for _, n := range tc.removed {
		add("tunnel", n, "stop", "removed")
	}
	switch {
	case newCfg.Firewall.Enabled && !old.Firewall.Enabled:
		add("firewall", "", "install", "")
	case newCfg.Firewall.Enabled && !reflect.DeepEqual(old, newCfg):
		add("firewall", "", "rebuild", "the config changed")
	case old.Firewall.Enabled && !newCfg.Firewall.Enabled:
		add("firewall", "", "remove", "")
	}
	return out, nil
}

// notFound is the error for a name the daemon does not have, listing those it has.
func notFound(what, name string, have []string) error {
	return &control.NotFoundError{Msg: fmt.Sprintf("no %s named %q (the daemon has: %s)", what, name, strings.Join(have, ", "))}
}

// RestartTunnel re-establishes one tunnel with its current settings, its
// key read again from its file.
func (d *Daemon) RestartTunnel(ctx context.Context, name string) error {
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	var have []string
	for _, v := range cfg.VPN {
		for i := range v.Tunnels {
			if v.Tunnels[i].Name != name {
				have = append(have, v.Tunnels[i].Name)
				continue
			}
			d.log.Info("operator: restarting tunnel", "tunnel", name)
			return d.onLoop(func(context.Context) error { return d.restartTunnel(name) })
		}
	}
	return notFound("tunnel", name, have)
}

// restartTunnel rebuilds the tunnel name from the config in force (a
// reload may have changed or removed it meanwhile) and restarts it.
func (d *Daemon) restartTunnel(name string) error {
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	for _, v := range cfg.VPN {
		for i := range v.Tunnels {
			if tc := &v.Tunnels[i]; tc.Name == name {
				t, err := newTunnel(tc, d.log.With("vpn", v.Name))
				if err != nil {
					return fmt.Errorf("tunnel %s: %w", name, err)
				}
				d.stopTunnel(name)
				if err := d.startTunnel(t); err != nil {
					return fmt.Errorf("tunnel %s: %w", name, err)
				}
				return nil
			}
		}
	}
	return &control.NotFoundError{Msg: fmt.Sprintf("tunnel %s: removed by a reload", name)}
}

// ResetBGP soft-resets one BGP session: both sides send their routes again
// and the policies are re-run, with the session up.
func (d *Daemon) ResetBGP(ctx context.Context, name string) error {
	sp := d.bgpSpeaker()
	d.mu.Lock()
	var have []string
	for _, p := range d.bgpCfg.Peers {
		have = append(have, p.Name)
	}
	d.mu.Unlock()
	if !slices.Contains(have, name) || sp == nil {
		return notFound("BGP peer", name, have)
	}
	d.log.Info("operator: soft-resetting BGP session", "peer", name)
	return sp.SoftReset(ctx, name)
}

// SetPathAdmin takes a path out of service (down) or puts it back.
func (d *Daemon) SetPathAdmin(ctx context.Context, name string, down bool) error {
	if down {
		d.log.Warn("operator: taking path out of service", "path", name)
	} else {
		d.log.Info("operator: putting path back in service", "path", name)
	}
	err := d.paths.SetAdminDown(ctx, name, down)
	if errors.Is(err, failover.ErrNoPath) {
		var have []string
		for _, p := range d.paths.Status() {
			have = append(have, p.Name)
		}
		return notFound("path", name, have)
	}
	return err
}
