package daemon

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/cgwd/cgwd/pkg/bgp"
	"github.com/cgwd/cgwd/pkg/config"
	"github.com/cgwd/cgwd/pkg/failover"
	"github.com/cgwd/cgwd/pkg/fib"
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

// startTunnel starts t and a watcher logging its state changes. The tunnel
// runs until stopTunnel closes it: not Run's context, so that at shutdown
// it outlives the BGP sessions and routes that use it.
func (d *Daemon) startTunnel(t tunnel.Tunnel) error {
	if err := t.Start(context.Background()); err != nil {
		return err
	}
	wctx, stop := context.WithCancel(context.Background())
	rt := &runningTunnel{t: t, stopWatch: stop, watching: make(chan struct{})}
	go func() {
		defer close(rt.watching)
		tunnel.Watch(wctx, t, time.Second, func(e tunnel.Event) {
			d.log.Info("tunnel state", "tunnel", e.Tunnel, "from", e.From, "to", e.To)
			d.paths.TunnelState(e.Tunnel, e.To == tunnel.StateUp) // a static path's session
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

// ErrStopped is Reload's answer once Run has stopped serving.
var ErrStopped = errors.New("cgwd is stopping")

// reload is a request to Run's loop: a reload or an operator's action.
type reload struct {
	fn  func(ctx context.Context) error
	err chan error
}

// onLoop runs fn on Run's loop, one request at a time, and returns its
// error, or ErrStopped once Run is stopping.
func (d *Daemon) onLoop(fn func(ctx context.Context) error) error {
	r := reload{fn: fn, err: make(chan error, 1)}
	select {
	case d.reloads <- r:
		return <-r.err
	case <-d.stopped:
		return ErrStopped
	}
}

// Reload applies a new, already validated config to the running daemon, part
// by part, touching only what changed:
//
//   - tunnels: an unchanged tunnel is not touched (no packet lost); a changed
//     one is re-established with its new settings (keys re-read from their
//     files); an added one is started; a removed one is closed after its BGP
//     session is gone;
//   - routing: BGP sessions whose settings are unchanged stay up; changed ones
//     are re-established, removed ones torn down, added ones started; new or
//     withdrawn on-prem prefixes and changed import/export policies apply with
//     the sessions up; the FIB and the failover manager follow the new set of
//     paths (DX links and tunnels), keeping the routes over unchanged paths;
//     fail closed is turned on or off, and the fail-closed routes follow
//     the new aws_prefixes;
//   - the firewall table is rebuilt in one atomic batch, or removed.
//
// Secrets are read and everything is checked before anything changes, so a
// bad key file or password file rejects the reload with the running state
// kept. Changes only a restart applies (control socket, metrics, logging,
// route table/protocol, reconcile interval, stale time, nexthop compat mode)
// are refused with ErrRestartNeeded, nothing else applied.
//
// The reload runs on Run's loop: Reload waits until Run serves and has
// applied it, and returns ErrStopped once Run is stopping.
func (d *Daemon) Reload(cfg *config.Config) error {
	return d.onLoop(func(ctx context.Context) error { return d.apply(ctx, cfg) })
}

// reloadConfig reads the config with LoadConfig and applies it, logging
// the outcome. An invalid file is rejected with every problem logged; the
// running state stays.
func (d *Daemon) reloadConfig(ctx context.Context) {
	cfg, err := d.LoadConfig()
	if err == nil {
		err = d.apply(ctx, cfg)
	}
	var probs config.Problems
	switch {
	case err == nil:
	case errors.As(err, &probs):
		for _, p := range probs {
			d.log.Error("reload rejected: invalid config, keeping the running state", "field", p.Field, "problem", p.Msg)
		}
	case errors.Is(err, ErrRestartNeeded):
		d.log.Error("reload rejected, keeping the running state", "err", err)
	default:
		d.log.Error("reload: not every change could be applied", "err", err)
	}
}

// apply is Reload, on Run's loop; ctx (Run's) bounds its BGP requests.
func (d *Daemon) apply(ctx context.Context, newCfg *config.Config) error {
	d.mu.Lock()
	old := d.cfg
	d.mu.Unlock()
	if diff := restartFields(old, newCfg); len(diff) > 0 {
		return fmt.Errorf("reload: changed %s: %w", strings.Join(diff, ", "), ErrRestartNeeded)
	}
	bgpCfg, fibCfg, foCfg, err := d.reloadRoutingConfig(newCfg)
	if err != nil {
		return err
	}
	tc := diffTunnels(old, newCfg)
	// Build every added or changed tunnel first, so a bad key file changes nothing.
	built, err := buildTunnels(append(append([]tunnelConf(nil), tc.added...), tc.changed...), func(c tunnelConf) (tunnel.Tunnel, error) {
		return newTunnel(c.cfg, d.log.With("vpn", c.vpn))
	})
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}

	var errs []error
	for _, c := range tc.changed {
		d.log.Info("reload: tunnel settings changed, re-establishing", "tunnel", c.cfg.Name)
		d.stopTunnel(c.cfg.Name)
		if err := d.startTunnel(built[c.cfg.Name]); err != nil {
			errs = append(errs, fmt.Errorf("reload: %w", err))
		}
	}
	for _, c := range tc.added {
		d.log.Info("reload: tunnel added", "tunnel", c.cfg.Name)
		if err := d.startTunnel(built[c.cfg.Name]); err != nil {
			errs = append(errs, fmt.Errorf("reload: %w", err))
		}
	}
	// Routing: the FIB learns the new paths, failover checks them, BGP feeds them.
	// A drained box stays drained, with the new file's drain settings.
	d.setLAN(newCfg, &bgpCfg)
	for _, c := range tc.changed {
		foCfg.Recreated = append(foCfg.Recreated, c.cfg.Name)
	}
	if err := d.reloadRouting(ctx, d.withDrain(bgpCfg, newCfg), fibCfg, foCfg); err != nil {
		errs = append(errs, err)
	}
	d.syncLANBFD()
	d.reloadStaticRoutes(old, newCfg)
	for _, name := range tc.removed {
		d.log.Info("reload: tunnel removed", "tunnel", name)
		d.stopTunnel(name)
	}
	d.mu.Lock()
	d.cfg = newCfg
	d.bgpCfg, d.fibCfg = bgpCfg, fibCfg
	d.mu.Unlock()
	if err := d.reloadFirewall(old, newCfg); err != nil {
		errs = append(errs, err)
	}
	d.log.Info("reload: applied", "tunnels_changed", len(tc.changed), "tunnels_added", len(tc.added), "tunnels_removed", len(tc.removed))
	return errors.Join(errs...)
}

// reloadRoutingConfig is the routing configuration a reload to newCfg
// applies; the router ID derived at start-up is kept.
func (d *Daemon) reloadRoutingConfig(newCfg *config.Config) (bgp.Config, fib.Config, failover.Config, error) {
	bgpCfg, fibCfg, foCfg, err := routingConfig(newCfg, d.log)
	if err != nil {
		return bgpCfg, fibCfg, foCfg, fmt.Errorf("reload: %w", err)
	}
	bgpCfg.Logger, fibCfg.Logger, foCfg.Logger = d.log, d.log, d.log
	if !newCfg.RouterID.IsSet() {
		// A derived router ID is chosen once, at start-up, as routers do:
		// removing the session it came from must not reset every other one.
		d.mu.Lock()
		bgpCfg.RouterID = d.bgpCfg.RouterID
		d.mu.Unlock()
	}
	return bgpCfg, fibCfg, foCfg, nil
}

// reloadRouting applies new routing settings to the FIB, the failover
// manager and the BGP speaker, in that order (a path must be known to the
// FIB before failover marks it, and to failover before BGP reports it).
func (d *Daemon) reloadRouting(ctx context.Context, bgpCfg bgp.Config, fibCfg fib.Config, foCfg failover.Config) error {
	var errs []error
	if _, err := d.fib.SetPaths(fibCfg.Paths); err != nil {
		errs = append(errs, fmt.Errorf("reload: %w", err))
	}
	d.fib.SetFailClosed(fibCfg.FailClosed, fibCfg.AWSPrefixes)
	if _, err := d.paths.Reconfigure(foCfg); err != nil {
		errs = append(errs, fmt.Errorf("reload: %w", err))
	}
	d.sym.SetPaths(symmetryPaths(fibCfg.Paths, foCfg.Paths))
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	defer d.kickLANExport() // path kinds or LAN peers may have changed
	sp := d.bgpSpeaker()
	_, err := sp.Reconfigure(ctx, bgpCfg)
	if errors.Is(err, bgp.ErrNewSpeaker) {
		d.log.Info("reload: ASN, router ID, listen port or gRPC address changed: re-establishing every BGP session")
		err = d.replaceSpeaker(bgpCfg)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("reload: %w", err))
	}
	return errors.Join(errs...)
}

// replaceSpeaker stops the running speaker, withdraws what its peers
// offered, and starts one with cfg.
func (d *Daemon) replaceSpeaker(cfg bgp.Config) error {
	d.stopSpeaker()
	d.mu.Lock()
	oldPeers := d.bgpCfg.Peers
	d.mu.Unlock()
	for _, p := range oldPeers {
		d.peerEvent(p.Name, false)
	}
	return d.startSpeaker(cfg)
}

// reloadFirewall rebuilds, installs or removes the firewall table.
func (d *Daemon) reloadFirewall(old, cur *config.Config) error {
	switch {
	case cur.Firewall.Enabled:
		if reflect.DeepEqual(old, cur) {
			return nil
		}
		// Endpoints, ports, peers or MTUs may have changed: rebuild the table
		// (one atomic batch replacing the old one).
		fw, err := firewall.Install(firewallSpec(cur))
		if err != nil {
			return fmt.Errorf("reload: firewall: %w", err)
		}
		d.mu.Lock()
		d.fw = fw
		d.mu.Unlock()
		if !old.Firewall.Enabled {
			d.log.Info("firewall installed", "table", "inet "+fw.Table(), "wan", cur.Firewall.WANInterface)
		}
	case old.Firewall.Enabled:
		d.removeFirewall()
	}
	return nil
}

// tunnelConf is a tunnel's config and the connection it belongs to.
type tunnelConf struct {
	vpn string
	cfg *config.Tunnel
}

// buildTunnels makes a tunnel for each of confs. If one fails, those already
// made are closed, which wipes the keys they hold, and the error returned.
func buildTunnels(confs []tunnelConf, build func(tunnelConf) (tunnel.Tunnel, error)) (map[string]tunnel.Tunnel, error) {
	built := map[string]tunnel.Tunnel{}
	for _, c := range confs {
		t, err := build(c)
		if err != nil {
			for _, b := range built {
				b.Close()
			}
			return nil, err
		}
		built[c.cfg.Name] = t
	}
	return built, nil
}

// tunnelChanges is what a reload does to the tunnels, matched by name.
type tunnelChanges struct {
	added, changed []tunnelConf
	removed        []string
}

func diffTunnels(a, b *config.Config) tunnelChanges {
	var tc tunnelChanges
	olds := map[string]*config.Tunnel{}
	for _, v := range a.VPN {
		for i := range v.Tunnels {
			olds[v.Tunnels[i].Name] = &v.Tunnels[i]
		}
	}
	news := map[string]bool{}
	for _, v := range b.VPN {
		for i := range v.Tunnels {
			nt := &v.Tunnels[i]
			news[nt.Name] = true
			ot, ok := olds[nt.Name]
			switch {
			case !ok:
				tc.added = append(tc.added, tunnelConf{v.Name, nt})
			case !reflect.DeepEqual(tunnelSettings(ot), tunnelSettings(nt)):
				tc.changed = append(tc.changed, tunnelConf{v.Name, nt})
			}
		}
	}
	for _, v := range a.VPN {
		for _, t := range v.Tunnels {
			if !news[t.Name] {
				tc.removed = append(tc.removed, t.Name)
			}
		}
	}
	return tc
}

// tunnelSettings is the part of a tunnel's config the tunnel itself runs
// with; BGP, BFD, probe and preference settings belong to routing and do not re-create
// the tunnel.
func tunnelSettings(t *config.Tunnel) config.Tunnel {
	c := *t
	c.BGP, c.BFD, c.Probe = config.PeerBGP{}, config.BFD{}, config.Probe{}
	c.Preference = 0 // routing's too
	return c
}

// restartFields names the parts of the config that differ between a and b
// and that only a restart applies.
func restartFields(a, b *config.Config) []string {
	var diff []string
	check := func(name string, x, y any) {
		if !reflect.DeepEqual(x, y) {
			diff = append(diff, name)
		}
	}
	check("control_socket", a.ControlSocket, b.ControlSocket)
	check("metrics", a.Metrics, b.Metrics)
	check("pprof", a.Pprof, b.Pprof)
	check("log", a.Log, b.Log)
	check("bgp.route_table", a.BGP.RouteTable, b.BGP.RouteTable)
	check("bgp.route_protocol", a.BGP.RouteProtocol, b.BGP.RouteProtocol)
	check("bgp.reconcile_interval", a.BGP.ReconcileInterval, b.BGP.ReconcileInterval)
	check("bgp.stale_time", a.BGP.StaleTime, b.BGP.StaleTime)
	check("failover.nexthop_compat_mode", a.Failover.NexthopCompatMode, b.Failover.NexthopCompatMode)
	check("failover.symmetry", a.Failover.Symmetry, b.Failover.Symmetry)
	check("manage_forwarding", a.ManageForwardingOn(), b.ManageForwardingOn())
	return append(diff, routingChanged(a, b)...)
}
