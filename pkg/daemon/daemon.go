// Package daemon wires cgwd's parts together from a config: tunnels, the
// control socket and the metrics endpoint. It starts them in order on one
// stack (pkg/lifecycle) and stops them in reverse, removing everything it
// created: at shutdown BGP closes its sessions with a NOTIFICATION and the
// routes are withdrawn while the tunnels still carry them, and only then do
// the tunnels go.
package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cgwd/cgwd/pkg/bgp"
	"github.com/cgwd/cgwd/pkg/config"
	"github.com/cgwd/cgwd/pkg/control"
	"github.com/cgwd/cgwd/pkg/drain"
	"github.com/cgwd/cgwd/pkg/failover"
	"github.com/cgwd/cgwd/pkg/fib"
	"github.com/cgwd/cgwd/pkg/firewall"
	"github.com/cgwd/cgwd/pkg/lifecycle"
	"github.com/cgwd/cgwd/pkg/metrics"
	"github.com/cgwd/cgwd/pkg/symmetry"
	"github.com/cgwd/cgwd/pkg/tunnel"
	"github.com/cgwd/cgwd/pkg/version"
)

// Daemon is a configured cgwd instance.
type Daemon struct {
	// OnReady, if set, is called once Run has started everything, before it
	// waits for its context to end (cgwd run tells systemd READY=1 there).
	OnReady func()
	// ReloadSignal, if set, makes Run's loop reload the config on each
	// value received (cgwd run connects SIGHUP): it reads the config with
	// LoadConfig and applies it as Reload does, logging the outcome.
	ReloadSignal <-chan os.Signal
	LoadConfig   func() (*config.Config, error)
	// StartDrained makes Run start drained, as drain.start_drained does
	// (cgwd run -drained).
	StartDrained bool

	cfg     *config.Config
	log     *slog.Logger
	tunnels []tunnel.Tunnel // as built by New; Run starts them
	reloads chan reload     // Reload's requests to Run's loop
	stopped chan struct{}   // closed when Run's loop has ended

	mu      sync.Mutex // guards running and cfg after Run started
	running []*runningTunnel
	bgpCfg  bgp.Config
	fibCfg  fib.Config
	paths   *failover.Manager
	sym     *symmetry.Guard
	speaker *bgp.Speaker // replaced by a reload that changes the ASN or router ID
	stopBGP context.CancelFunc
	fib     *fib.FIB
	fw      *firewall.Firewall
	lan     lanSide // the LAN side (lan.go)
	started time.Time
	drain   *drain.Controller // drained or not; kept across reloads

	// ConfigFile is the file `cgwd reload` loads over the control socket.
	ConfigFile string

	// restarting is set by PrepareRestart (restart.go).
	restarting atomic.Bool
}

// New builds the daemon's tunnels from cfg (reading their secret files) but
// creates nothing in the kernel yet.
func New(cfg *config.Config, log *slog.Logger) (*Daemon, error) {
	d := &Daemon{cfg: cfg, log: log, reloads: make(chan reload), stopped: make(chan struct{}), drain: drain.NewController()}
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
	d.fibCfg.OnChange = d.kickLANExport
	d.setLAN(cfg, &d.bgpCfg)
	d.paths = failover.New(foCfg)
	d.sym = symmetry.New(symmetryConfig(cfg, d.fibCfg, foCfg, log))
	return d, nil
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
		d.fib.AddWithAttrs(ev.Prefix, ev.Peer, ev.Nexthop, fib.Attrs{ASPathLen: ev.ASPathLen, Origin: ev.Origin, MED: ev.MED})
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
	st := control.Status{Version: version.String(), Started: d.started, Drain: d.drain.Status()}
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
		bfdState := d.lanBFDState()
		for _, p := range sp.Peers(ctx) {
			st.BGP = append(st.BGP, control.PeerStatus{PeerStatus: p, Installed: installed[p.Name], BFD: bfdState[p.Name]})
		}
		st.Paths = d.paths.Status()
		st.Symmetry = d.sym.States()
		for i := range st.Paths {
			st.Paths[i].Installed = installed[st.Paths[i].Name]
		}
		st.RoutesProgrammed = d.fib.Counters.Programmed.Load()
		st.RouteErrors = d.fib.Counters.Errors.Load()
		st.FailClosedRoutes = len(d.fib.FailClosed())
	}
	return st
}

// Run starts everything, serves until ctx ends, then stops everything in
// reverse order. Reloads (Reload, ReloadSignal) run on Run's loop, one at a
// time, so none overlaps start-up or shutdown. If start-up fails, what was
// started is torn down and the error returned.
func (d *Daemon) Run(ctx context.Context) error {
	d.started = time.Now()
	stack := lifecycle.Stack{Log: d.log}
	defer stack.Unwind()
	defer close(d.stopped) // before Unwind: no reload once stopping begins
	if err := d.start(&stack); err != nil {
		return err
	}
	d.log.Info("cgwd running", "version", version.String(), "tunnels", len(d.tunnels), "control_socket", d.cfg.ControlSocket)
	if d.OnReady != nil {
		d.OnReady()
	}
	for {
		select {
		case <-ctx.Done():
			d.log.Info("cgwd stopping", "cause", context.Cause(ctx))
			return nil
		case r := <-d.reloads:
			if ctx.Err() != nil {
				r.err <- ErrStopped
				continue
			}
			r.err <- r.fn(ctx)
		case <-d.ReloadSignal:
			if ctx.Err() == nil {
				d.reloadConfig(ctx)
			}
		}
	}
}

// start starts every part on stack, in this order: the control socket and
// metrics endpoints, the tunnels, the firewall, the FIB, failover and BGP.
// Unwinding the stack stops BGP first (a Cease NOTIFICATION to every peer
// while the tunnels still carry it), then failover, the FIB (which removes
// its routes and keeps the fail-closed ones), the firewall, and only then
// the tunnels: no part gets Run's context, so none stops out of turn.
func (d *Daemon) start(stack *lifecycle.Stack) error {
	ctrl, err := control.Listen(d.cfg.ControlSocket, d.Status)
	if err != nil {
		return err
	}
	ctrl.SetActions(d)
	ctrl.SetDrainActions(d)
	ctrl.OnError = d.serverFailed("control")
	if err := stack.Start("control socket", ctrl); err != nil {
		return err
	}
	if d.cfg.Metrics.Listen != "off" {
		ms, err := metrics.Listen(d.cfg.Metrics.Listen, metrics.NewRegistry(d.Status, append(d.paths.Collectors(), d.sym.Collectors()...)...))
		if err != nil {
			return err
		}
		ms.OnError = d.serverFailed("metrics")
		if err := stack.Start("metrics", ms); err != nil {
			return err
		}
		d.log.Info("metrics listening", "addr", ms.Addr())
	}
	if d.cfg.Pprof.On() {
		ps, err := metrics.ListenPprof(d.cfg.Pprof.Listen)
		if err != nil {
			return err
		}
		ps.OnError = d.serverFailed("pprof")
		if err := stack.Start("pprof", ps); err != nil {
			return err
		}
		d.log.Info("pprof listening", "addr", ps.Addr())
	}

	stack.Defer("tunnels", d.stopAllTunnels)
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
	stack.Defer("firewall", d.removeFirewall) // a reload may install one later
	d.startDrained()
	stack.Defer("drain", d.drain.Close) // a drain's wait for quiet
	return d.startRouting(stack)
}

// serverFailed logs a server that stopped serving on its own.
func (d *Daemon) serverFailed(name string) func(error) {
	return func(err error) { d.log.Error("server failed", "server", name, "err", err) }
}

// startRouting starts the FIB, the failover manager driving it and the BGP
// speaker feeding both. They go on stack in that order, so they stop in
// reverse: BGP, failover, then the FIB, which removes its routes.
func (d *Daemon) startRouting(stack *lifecycle.Stack) error {
	f, err := fib.New(d.fibCfg)
	if err != nil {
		return err
	}
	err = stack.Start("fib", lifecycle.Go(f.Run, func(err error) { d.log.Error("fib stopped with error", "err", err) }))
	if err != nil {
		return err
	}
	d.fib = f
	// Routes a previous run left: its forwarding state survived, which
	// sessions with graceful restart announce.
	d.bgpCfg.Restarting = f.Adopted() > 0
	for _, r := range d.cfg.StaticRoutes() {
		f.Add(r.Prefix, r.Tunnel, r.Gateway)
	}
	for _, v := range d.cfg.VPN {
		for _, t := range v.Tunnels {
			if v.Static() {
				f.EndOfRIB(t.Name) // no BGP session: nothing more to wait for
			}
		}
	}
	fo := lifecycle.Func(func(ctx context.Context) error { return d.paths.Start(ctx, f, speakerRef{d}) }, d.paths.Done)
	if err := stack.Start("failover", fo); err != nil {
		return err
	}
	sym := lifecycle.Func(func(ctx context.Context) error { return d.sym.Start(ctx, f) }, d.sym.Done)
	if err := stack.Start("symmetry guard", sym); err != nil {
		return err
	}
	if err := d.startLAN(stack); err != nil {
		return err
	}
	if err := d.startSpeaker(d.withDrain(d.bgpCfg, d.cfg)); err != nil {
		return err
	}
	stack.Defer("bgp", d.stopSpeaker)
	return stack.Start("lan", lifecycle.Go(d.runLAN, func(err error) { d.log.Error("lan stopped with error", "err", err) }))
}

// startSpeaker starts a BGP speaker with cfg, stopped only by stopSpeaker.
func (d *Daemon) startSpeaker(cfg bgp.Config) error {
	sp := bgp.New(cfg)
	sp.OnEndOfRIB(d.fib.EndOfRIB)
	sp.PeerReachable(d.paths.PeerAlive)
	sp.OnPeerRestarting(d.paths.BGPRestarting)
	ctx, cancel := context.WithCancel(context.Background())
	if err := sp.Start(ctx, d.routeEvent, d.peerEvent); err != nil {
		cancel()
		return err
	}
	d.mu.Lock()
	d.speaker, d.stopBGP = sp, cancel
	d.mu.Unlock()
	d.kickLANExport() // a new speaker exports nothing yet
	return nil
}

// stopSpeaker stops the running speaker, which closes its sessions with a
// Cease NOTIFICATION, and waits until it has stopped.
func (d *Daemon) stopSpeaker() {
	d.mu.Lock()
	sp, stop := d.speaker, d.stopBGP
	d.mu.Unlock()
	if sp == nil {
		return
	}
	if d.restarting.Load() {
		sp.Detach()
	}
	stop()
	<-sp.Done()
}
