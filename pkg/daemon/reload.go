package daemon

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/cgwd/cgwd/pkg/config"
	"github.com/cgwd/cgwd/pkg/firewall"
	"github.com/cgwd/cgwd/pkg/tunnel"
)

// runningTunnel is a started tunnel and the watcher of its state.
type runningTunnel struct {
	t         tunnel.Tunnel
	stopWatch context.CancelFunc
	watching  chan struct{}
}

func (d *Daemon) runningTunnels() []*runningTunnel {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*runningTunnel(nil), d.running...)
}

// startTunnel starts t and a watcher logging its state changes.
func (d *Daemon) startTunnel(t tunnel.Tunnel) error {
	d.mu.Lock()
	ctx := d.runCtx
	d.mu.Unlock()
	if err := t.Start(ctx); err != nil {
		return err
	}
	wctx, stop := context.WithCancel(context.Background())
	rt := &runningTunnel{t: t, stopWatch: stop, watching: make(chan struct{})}
	go func() {
		defer close(rt.watching)
		tunnel.Watch(wctx, t, time.Second, func(e tunnel.Event) {
			d.log.Info("tunnel state", "tunnel", e.Tunnel, "from", e.From, "to", e.To)
		})
	}()
	d.mu.Lock()
	d.running = append(d.running, rt)
	d.mu.Unlock()
	return nil
}

// stopTunnel closes the running tunnel named name.
func (d *Daemon) stopTunnel(name string) {
	d.mu.Lock()
	var rt *runningTunnel
	for i, r := range d.running {
		if r.t.Name() == name {
			rt = r
			d.running = append(d.running[:i], d.running[i+1:]...)
			break
		}
	}
	d.mu.Unlock()
	if rt == nil {
		return
	}
	rt.stopWatch()
	<-rt.watching
	if err := rt.t.Close(); err != nil {
		d.log.Error("tunnel close failed", "tunnel", name, "err", err)
	}
}

// stopAllTunnels closes every running tunnel, last started first.
func (d *Daemon) stopAllTunnels() {
	rts := d.runningTunnels()
	for i := len(rts) - 1; i >= 0; i-- {
		d.stopTunnel(rts[i].t.Name())
	}
}

// ErrRestartNeeded wraps reload refusals for changes only a restart applies.
var ErrRestartNeeded = errors.New("needs a restart of cgwd")

// Reload applies a new, already validated config to the running daemon.
// Tunnels whose settings are unchanged are not touched (no packet lost);
// changed ones are re-established with their new settings (keys are re-read
// from their files). Changes to anything else (ASN, prefixes, BGP, Direct
// Connect, failover, the set of tunnels or their inside addresses, metrics
// or control socket) are refused with ErrRestartNeeded and the running state
// is kept.
func (d *Daemon) Reload(newCfg *config.Config) error {
	d.mu.Lock()
	old := d.cfg
	d.mu.Unlock()
	if diff := restartFields(old, newCfg); len(diff) > 0 {
		return fmt.Errorf("reload: changed %s: %w", strings.Join(diff, ", "), ErrRestartNeeded)
	}
	// Build every changed tunnel first, so a bad key file changes nothing.
	type change struct {
		name string
		t    tunnel.Tunnel
	}
	var changes []change
	for i, v := range newCfg.VPN {
		for j := range v.Tunnels {
			nt, ot := &v.Tunnels[j], &old.VPN[i].Tunnels[j]
			if reflect.DeepEqual(nt, ot) {
				continue
			}
			t, err := newTunnel(nt, d.log.With("vpn", v.Name))
			if err != nil {
				return fmt.Errorf("reload: %w", err)
			}
			changes = append(changes, change{nt.Name, t})
		}
	}
	var errs []error
	for _, c := range changes {
		d.log.Info("reload: tunnel settings changed, re-establishing", "tunnel", c.name)
		d.stopTunnel(c.name)
		if err := d.startTunnel(c.t); err != nil {
			errs = append(errs, fmt.Errorf("reload: %w", err))
		}
	}
	d.mu.Lock()
	d.cfg = newCfg
	d.mu.Unlock()
	if len(changes) > 0 && newCfg.Firewall.Enabled {
		// Endpoints, ports or MTUs may have changed: rebuild the table (one
		// atomic batch replacing the old one).
		if _, err := firewall.InstallConfig(newCfg); err != nil {
			errs = append(errs, fmt.Errorf("reload: firewall: %w", err))
		}
	}
	d.log.Info("reload: applied", "tunnels_changed", len(changes))
	return errors.Join(errs...)
}

// restartFields names the parts of the config that differ between a and b
// and that a reload cannot apply.
func restartFields(a, b *config.Config) []string {
	var diff []string
	check := func(name string, x, y any) {
		if !reflect.DeepEqual(x, y) {
			diff = append(diff, name)
		}
	}
	check("asn", a.ASN, b.ASN)
	check("router_id", a.RouterID, b.RouterID)
	check("prefixes", a.Prefixes, b.Prefixes)
	check("control_socket", a.ControlSocket, b.ControlSocket)
	check("metrics", a.Metrics, b.Metrics)
	check("log", a.Log, b.Log)
	check("bgp", a.BGP, b.BGP)
	check("failover", a.Failover, b.Failover)
	check("firewall", a.Firewall, b.Firewall)
	check("direct_connect", a.DirectConnect, b.DirectConnect)
	if len(a.VPN) != len(b.VPN) {
		return append(diff, "vpn (number of connections)")
	}
	for i := range a.VPN {
		va, vb := a.VPN[i], b.VPN[i]
		check(fmt.Sprintf("vpn[%d].name", i), va.Name, vb.Name)
		check(fmt.Sprintf("vpn[%d].gateway", i), va.Gateway, vb.Gateway)
		check(fmt.Sprintf("vpn[%d].mode", i), va.Mode, vb.Mode)
		if len(va.Tunnels) != len(vb.Tunnels) {
			diff = append(diff, fmt.Sprintf("vpn[%d].tunnels (number)", i))
			continue
		}
		for j := range va.Tunnels {
			ta, tb := va.Tunnels[j], vb.Tunnels[j]
			f := fmt.Sprintf("vpn[%d].tunnels[%d]", i, j)
			check(f+".name", ta.Name, tb.Name)
			check(f+".inside", ta.Inside, tb.Inside)
			check(f+".bgp", ta.BGP, tb.BGP)
			check(f+".bfd", ta.BFD, tb.BFD)
		}
	}
	return diff
}
