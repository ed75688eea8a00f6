// Package daemon wires cgwd's parts together from a config: tunnels, the
// control socket and the metrics endpoint. It starts them in order and stops
// them in reverse, removing everything it created.
package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cgwd/cgwd/pkg/bgp"
	"github.com/cgwd/cgwd/pkg/config"
	"github.com/cgwd/cgwd/pkg/control"
	"github.com/cgwd/cgwd/pkg/failover"
	"github.com/cgwd/cgwd/pkg/fib"
	"github.com/cgwd/cgwd/pkg/firewall"
	"github.com/cgwd/cgwd/pkg/metrics"
	"github.com/cgwd/cgwd/pkg/tunnel"
	"github.com/cgwd/cgwd/pkg/version"
)

// Daemon is a configured cgwd instance.
type Daemon struct {
	// OnReady, if set, is called once Run has started everything, before it
	// waits for its context to end (cgwd run tells systemd READY=1 there).
	OnReady func()

	cfg     *config.Config
	log     *slog.Logger
	tunnels []tunnel.Tunnel // as built by New; Run starts them

	mu      sync.Mutex // guards running and cfg after Run started
	running []*runningTunnel
	runCtx  context.Context
	bgpCfg  bgp.Config
	fibCfg  fib.Config
	paths   *failover.Manager
	speaker *bgp.Speaker // replaced by a reload that changes the ASN or router ID
	fib     *fib.FIB
	fw      *firewall.Firewall
	started time.Time
}

// New builds the daemon's tunnels from cfg (reading their secret files) but
// creates nothing in the kernel yet.
func New(cfg *config.Config, log *slog.Logger) (*Daemon, error) {
	d := &Daemon{cfg: cfg, log: log}
	for _, v := range cfg.VPN {
		for i := range v.Tunnels {
			t, err := newTunnel(&v.Tunnels[i], log.With("vpn", v.Name))
			if err != nil {
				return nil, err
			}
			d.tunnels = append(d.tunnels, t)
		}
	}
	var err error
	var foCfg failover.Config
	if d.bgpCfg, d.fibCfg, foCfg, err = routingConfig(cfg, log); err != nil {
		return nil, err
	}
	d.bgpCfg.Logger, d.fibCfg.Logger, foCfg.Logger = log, log, log
	d.paths = failover.New(foCfg)
	return d, nil
}

// newEcmp reports whether any VPN connection of cfg spreads traffic over its tunnels.
func newEcmp(cfg *config.Config) bool {
	for _, v := range cfg.VPN {
		if v.Mode == config.ModeECMP {
			return true
		}
	}
	return false
}

// setMultipathHash makes Linux hash multipath routes on ports too (L4): by
// default it hashes on addresses only, which puts every flow between two
// hosts on one tunnel.
// A value already set (by the host, for a container whose /proc/sys is
// read-only) is not written again.
func setMultipathHash(log *slog.Logger) error {
	if b, err := os.ReadFile("/proc/sys/net/ipv4/fib_multipath_hash_policy"); err == nil && strings.TrimSpace(string(b)) == "1" {
		return nil
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/fib_multipath_hash_policy", []byte("1"), 0o644); err != nil {
		return fmt.Errorf("ecmp: set net.ipv4.fib_multipath_hash_policy=1: %w", err)
	}
	log.Info("ecmp: net.ipv4.fib_multipath_hash_policy set to 1 (layer 4 hash)")
	return nil
}

// runContext is Run's context.
func (d *Daemon) runContext() context.Context {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.runCtx
}

// bgpSpeaker is the running BGP speaker, nil before routing started.
func (d *Daemon) bgpSpeaker() *bgp.Speaker {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.speaker
}

// routeEvent passes a route BGP accepted or withdrew to the FIB.
func (d *Daemon) routeEvent(ev bgp.RouteEvent) {
	if ev.Withdraw {
		d.fib.Remove(ev.Prefix, ev.Peer)
	} else {
		d.fib.Add(ev.Prefix, ev.Peer, ev.Nexthop)
	}
}

// peerEvent passes a BGP session's state to failover and, when it went
// down, withdraws what it offered. Failover hears first: the withdrawal
// moves traffic at once, and failover counts that move from what it saw.
func (d *Daemon) peerEvent(name string, up bool) {
	d.paths.BGPState(name, up)
	if !up {
		d.fib.RemovePath(name)
	}
}

// speakerRef tears sessions down on whichever speaker is running.
type speakerRef struct{ d *Daemon }

// ShutdownPeer implements failover.SessionResetter.
func (r speakerRef) ShutdownPeer(ctx context.Context, name, reason string) error {
	sp := r.d.bgpSpeaker()
	if sp == nil {
		return fmt.Errorf("bgp: not running")
	}
	return sp.ShutdownPeer(ctx, name, reason)
}

// removeFirewall removes the firewall table, if installed.
func (d *Daemon) removeFirewall() {
	d.mu.Lock()
	fw := d.fw
	d.fw = nil
	d.mu.Unlock()
	if fw == nil {
		return
	}
	if err := fw.Remove(); err != nil {
		d.log.Error("firewall removal failed", "err", err)
		return
	}
	d.log.Info("firewall removed", "table", "inet "+fw.Table())
}

// Status is a snapshot of the daemon's state.
func (d *Daemon) Status() control.Status {
	st := control.Status{Version: version.String(), Started: d.started}
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	for _, v := range cfg.VPN {
		vs := control.VPNStatus{Name: v.Name}
		for _, t := range v.Tunnels {
			vs.Tunnels = append(vs.Tunnels, t.Name)
		}
		st.VPN = append(st.VPN, vs)
	}
	for _, rt := range d.runningTunnels() {
		st.Tunnels = append(st.Tunnels, rt.t.Status())
	}
	if sp := d.bgpSpeaker(); sp != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		installed := d.fib.Installed()
		for _, p := range sp.Peers(ctx) {
			st.BGP = append(st.BGP, control.PeerStatus{PeerStatus: p, Installed: installed[p.Name]})
		}
		st.Paths = d.paths.Status()
		st.RoutesProgrammed = d.fib.Counters.Programmed.Load()
		st.RouteErrors = d.fib.Counters.Errors.Load()
		st.FailClosedRoutes = len(d.fib.FailClosed())
	}
	return st
}

// Run starts everything, serves until ctx ends, then stops everything in
// reverse order. If start-up fails, what was started is torn down and the
// error returned.
func (d *Daemon) Run(ctx context.Context) (err error) {
	d.started = time.Now()
	var stack []func() // undo actions, run in reverse
	defer func() {
		for i := len(stack) - 1; i >= 0; i-- {
			stack[i]()
		}
	}()

	ctrl, err := control.Listen(d.cfg.ControlSocket, d.Status)
	if err != nil {
		return err
	}
	var ms *metrics.Server
	if d.cfg.Metrics.Listen != "off" {
		ms, err = metrics.Listen(d.cfg.Metrics.Listen, metrics.NewRegistry(d.Status, d.paths.Collectors()...))
		if err != nil {
			return err
		}
	}
	var ps *metrics.Server
	if d.cfg.Pprof.On() {
		if ps, err = metrics.ListenPprof(d.cfg.Pprof.Listen); err != nil {
			return err
		}
	}

	srvCtx, stopServers := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	serve := func(name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(srvCtx); err != nil {
				d.log.Error("server failed", "server", name, "err", err)
			}
		}()
	}
	serve("control", ctrl.Serve)
	if ms != nil {
		serve("metrics", ms.Serve)
		d.log.Info("metrics listening", "addr", ms.Addr())
	}
	if ps != nil {
		serve("pprof", ps.Serve)
		d.log.Info("pprof listening", "addr", ps.Addr())
	}
	stack = append(stack, func() { stopServers(); wg.Wait() })

	d.mu.Lock()
	d.runCtx = ctx
	d.mu.Unlock()
	stack = append(stack, d.stopAllTunnels)
	for _, t := range d.tunnels {
		if err := d.startTunnel(t); err != nil {
			return err
		}
	}
	if d.cfg.Firewall.Enabled {
		fw, err := firewall.Install(firewallSpec(d.cfg))
		if err != nil {
			return err
		}
		d.log.Info("firewall installed", "table", "inet "+fw.Table(), "wan", d.cfg.Firewall.WANInterface)
		d.mu.Lock()
		d.fw = fw
		d.mu.Unlock()
	}
	stack = append(stack, d.removeFirewall) // a reload may install one later
	if err := d.startRouting(ctx, &stack); err != nil {
		return err
	}
	d.log.Info("cgwd running", "version", version.String(), "tunnels", len(d.tunnels), "control_socket", d.cfg.ControlSocket)
	if d.OnReady != nil {
		d.OnReady()
	}
	<-ctx.Done()
	d.log.Info("cgwd stopping", "cause", context.Cause(ctx))
	return nil
}

// startRouting starts the FIB, the failover manager driving it and the BGP
// speaker feeding both. Their undo actions go on stack, so they stop in
// reverse: BGP, failover, then the FIB, which removes its routes.
func (d *Daemon) startRouting(ctx context.Context, stack *[]func()) error {
	if newEcmp(d.cfg) {
		if err := setMultipathHash(d.log); err != nil {
			return err
		}
	}
	f, err := fib.New(d.fibCfg)
	if err != nil {
		return err
	}
	fibCtx, stopFIB := context.WithCancel(context.Background())
	fibDone := make(chan error, 1)
	go func() { fibDone <- f.Run(fibCtx) }()
	*stack = append(*stack, func() {
		stopFIB()
		if err := <-fibDone; err != nil {
			d.log.Error("fib stopped with error", "err", err)
		}
	})
	d.fib = f
	sp := bgp.New(d.bgpCfg)
	foCtx, stopFailover := context.WithCancel(context.Background())
	foDone, err := d.paths.Start(foCtx, f, speakerRef{d})
	if err != nil {
		stopFailover()
		return err
	}
	*stack = append(*stack, func() { stopFailover(); <-foDone })
	if err := sp.Start(ctx, d.routeEvent, d.peerEvent); err != nil {
		return err
	}
	d.mu.Lock()
	d.speaker = sp
	d.mu.Unlock()
	*stack = append(*stack, func() { d.bgpSpeaker().Stop() })
	return nil
}
