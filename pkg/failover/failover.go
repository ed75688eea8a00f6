// Package failover decides which paths are usable and tells the route
// programmer (pkg/fib), which alone selects the paths that carry each
// prefix among the usable ones (see its package comment). A path (a DX link
// or a tunnel) is usable only when its health check is up and its BGP
// session is Established; a path that recovers
// becomes usable again only after a hold-down, so a flapping link cannot flap
// the routes. When BFD declares a DX neighbor down, the DX BGP session is torn
// down at once, as a router does. A path whose link (PathConfig.Link) is down
// or has lost carrier is unusable whatever its BGP session says: the kernel
// drops the link's nexthop at once, and BGP alone would notice only when its
// hold timer expires.
package failover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cgwd/cgwd/pkg/bfd"
	"github.com/cgwd/cgwd/pkg/probe"
)

// Programmer is the route programmer (pkg/fib) as failover sees it.
type Programmer interface {
	// SetUsable marks a path usable or not and returns once the kernel follows.
	SetUsable(path string, ok bool)
	// Active tells which paths carry traffic now.
	Active() map[string]bool
}

// SessionResetter tears a BGP session down (pkg/bgp).
type SessionResetter interface {
	ShutdownPeer(ctx context.Context, name, reason string) error
}

// LinkWatcher reports the state of network links (pkg/netdev).
type LinkWatcher interface {
	// Watch calls onChange with every link's state now and on every change
	// (up: administratively up with carrier; a deleted link is down) until
	// ctx ends. The returned channel is closed once it has stopped.
	Watch(ctx context.Context, onChange func(link string, up bool)) (<-chan struct{}, error)
}

// PathConfig is one path and its health check.
type PathConfig struct {
	// Name is the path's name, as the FIB and BGP know it.
	Name string
	// Kind is "dx" or "tunnel" (metrics label).
	Kind string
	// VPN is the connection the path belongs to ("" for DX).
	VPN string
	// BFD, when set, checks the path; without it the path's health is its
	// BGP session alone.
	BFD *bfd.Config
	// Probe, when set (and BFD is not), checks the path with ICMP echo.
	Probe *probe.Config
	// ResetBGPOnDown tears the path's BGP session down when BFD goes down.
	ResetBGPOnDown bool
	// Link, when set, is the netdev the path leaves by: while it is down or
	// without carrier the path is unusable (Config.Links watches it).
	Link string
	// Static marks a tunnel of a static VPN connection: it has no BGP
	// session, and the tunnel's own state (TunnelState) stands in for one.
	Static bool
}

// Config configures a Manager.
type Config struct {
	Paths []PathConfig
	// HoldDown is how long a recovered path waits before it carries traffic.
	HoldDown time.Duration
	// Links, when set, watches the paths' links; without it every link
	// counts as up.
	Links  LinkWatcher
	Logger *slog.Logger
	// Recreated, for Reconfigure only, names paths whose netdev was
	// deleted and made again since the last configuration (a reload that
	// re-established a tunnel): their health checks restart, because a
	// socket bound to the old netdev hears nothing on the new one.
	Recreated []string
}

type pathState struct {
	cfg       PathConfig
	stop      context.CancelFunc // ends the path's health checks
	session   *bfd.Session
	prober    *probe.Prober
	healthy   bool // BFD up (or no BFD)
	bgpUp     bool
	adminDown bool // taken out of service by the operator
	linkDown  bool // its link is down or has no carrier
	usable    bool
	wasUsable bool
	holdUntil time.Time
	hold      *time.Timer
	since     time.Time
}

type event struct {
	path   string
	from   *pathState // the health check's path; nil for BGP and timer events
	health *bool
	bgp    *bool
	hold   bool          // hold-down expired
	admin  *bool         // the operator took the path out of service (true) or back
	link   *bool         // the path's link went up (true) or down
	done   chan struct{} // closed once handled, if set
	at     time.Time
	reason string
	// tunnel: the path's tunnel changed state (TunnelState); a static
	// path's session is then m.tunnelUp's word.
	tunnel bool
	// seen is what carried traffic when a BGP session went down, taken
	// before the daemon withdrew the session's routes (which moves traffic
	// by itself); seenAt is the number of programs run by then.
	seen   string
	seenAt uint64
}

// Manager runs the health checks and drives the route programmer.
type Manager struct {
	cfg Config
	log *slog.Logger
	fib Programmer
	bgp SessionResetter
	ctx context.Context // Start's
	ev  chan event
	// quit is closed when run stops reading ev; done once every health
	// check has stopped too.
	quit, done chan struct{}

	reconf sync.Mutex // serialises Reconfigure
	mu     sync.Mutex // guards paths, order, cfg.HoldDown and the pathState fields
	paths  map[string]*pathState
	order  []string
	// linkDown holds the links last seen down, for paths added later.
	linkDown map[string]bool
	// tunnelUp holds the tunnels last seen up (TunnelState), for static paths.
	tunnelUp map[string]bool
	// running is set once Start has started the loop that reads ev.
	running bool
	// linksDone is closed once the link watch has stopped (nil without one).
	linksDone <-chan struct{}
	// selected is set once a path first carries traffic after start; that
	// first selection is not a failover.
	selected bool
	// programs counts program calls, so that a BGP-down event knows
	// whether its snapshot of the active paths is still the latest view.
	programs uint64

	failovers *prometheus.CounterVec
	duration  prometheus.Histogram
	active    *prometheus.GaugeVec
	bfdUp     *prometheus.GaugeVec
	probeRTT  *prometheus.HistogramVec
	probeLoss *prometheus.GaugeVec
	probeJit  *prometheus.GaugeVec
	info      *prometheus.GaugeVec
}

// New returns a manager; call Start.
func New(cfg Config) *Manager {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	m := &Manager{
		cfg: cfg, log: log.With("component", "failover"),
		paths: map[string]*pathState{}, linkDown: map[string]bool{}, tunnelUp: map[string]bool{}, ev: make(chan event, 64),
		info: newPathInfo(),
		quit: make(chan struct{}), done: make(chan struct{}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cgwd_failovers_total", Help: "Changes of the active path, by previous and new active path and cause.",
		}, []string{"from", "to", "reason"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cgwd_failover_duration_seconds",
			Help:    "Time from detecting a path change to the kernel being programmed.",
			Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1},
		}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cgwd_path_active", Help: "Whether the path carries traffic (1) or not (0).",
		}, []string{"vpn", "path", "kind"}),
		bfdUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cgwd_bfd_session_up", Help: "Whether the path's BFD session is Up (1) or not (0).",
		}, []string{"path", "peer"}),
		probeRTT: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cgwd_probe_rtt_seconds", Help: "Round-trip time of ICMP probes across the tunnel.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"vpn", "path"}),
		probeLoss: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cgwd_probe_loss_ratio", Help: "Share of the recent probes (the prober's window) that were lost.",
		}, []string{"vpn", "path"}),
		probeJit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cgwd_probe_jitter_seconds", Help: "Smoothed difference of consecutive probe RTTs.",
		}, []string{"vpn", "path"}),
	}
	for _, p := range cfg.Paths {
		m.paths[p.Name] = &pathState{cfg: p, healthy: p.BFD == nil && p.Probe == nil}
		m.order = append(m.order, p.Name)
	}
	m.zeroFailovers()
	return m
}

// zeroFailovers creates at 0 the failover series that the configuration
// lets us know in advance, so that increase() sees their first change: for
// every ordered pair of configured paths (and "none" as target), the causes
// by which the first can go down (bgp-down, and bfd-Down or probe-down for
// its check), and for every pair the causes by which the second can come up
// (bgp-up, bfd-Up or probe-up, and recovered after a hold-down). Active sets
// of several paths ("a+b") and rarer causes (bfd-Init, bfd-AdminDown) appear
// when they first happen. Called with m.mu held or before Start.
func (m *Manager) zeroFailovers() {
	for _, from := range append([]string{"none"}, m.order...) {
		for _, to := range append([]string{"none"}, m.order...) {
			if from == to {
				continue
			}
			var reasons []string
			if p := m.paths[from]; p != nil {
				reasons = append(reasons, checkReasons(p.cfg, false)...)
			}
			if p := m.paths[to]; p != nil {
				reasons = append(reasons, checkReasons(p.cfg, true)...)
				if m.cfg.HoldDown > 0 {
					reasons = append(reasons, "recovered")
				}
			}
			for _, r := range reasons {
				m.failovers.WithLabelValues(from, to, r)
			}
		}
	}
}

// checkReasons lists the causes a path's checks report when it goes up or down.
func checkReasons(c PathConfig, up bool) []string {
	out := []string{reason(sessionKind(c), up)}
	switch {
	case c.BFD != nil && up:
		out = append(out, "bfd-"+bfd.StateUp.String())
	case c.BFD != nil:
		out = append(out, "bfd-"+bfd.StateDown.String())
	case c.Probe != nil:
		out = append(out, reason("probe", up))
	}
	if c.Link != "" {
		out = append(out, reason("link", up))
	}
	return out
}

// Collectors are the manager's metrics, for registration with
// metrics.NewRegistry: failovers by cause, detection-to-kernel durations,
// BFD state and probe results are counted as they happen, which a status
// snapshot cannot show.
func (m *Manager) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.failovers, m.duration, m.active, m.bfdUp, m.probeRTT, m.probeLoss, m.probeJit, m.info}
}

// BGPState reports a path's BGP session state; call it from BGP's peer
// events. When a session goes down, call it before withdrawing the
// session's routes from the FIB: the withdrawal moves traffic at once, and
// the failover is counted from what carried traffic when BGPState was called.
func (m *Manager) BGPState(path string, up bool) {
	e := event{path: path, bgp: &up, at: time.Now(), reason: reason("bgp", up)}
	if !up && m.fib != nil {
		m.mu.Lock()
		e.seenAt = m.programs
		m.mu.Unlock()
		e.seen = m.activeName()
	}
	m.send(e)
}

func reason(src string, up bool) string {
	if up {
		return src + "-up"
	}
	return src + "-down"
}

func (m *Manager) send(e event) {
	m.mu.Lock()
	_, ok := m.paths[e.path]
	m.mu.Unlock()
	if !ok {
		return
	}
	select {
	case m.ev <- e:
	case <-m.quit: // the loop has stopped: nobody will read it
	}
}

// Start marks every path unusable until its checks pass, starts the health
// checks and then applies path changes to fib until ctx ends. On error the
// checks it started are stopped. Start may be called once.
func (m *Manager) Start(ctx context.Context, fib Programmer, bgp SessionResetter) error {
	m.fib, m.bgp, m.ctx = fib, bgp, ctx
	m.mu.Lock()
	order := append([]string(nil), m.order...)
	m.mu.Unlock()
	for i, name := range order {
		m.fib.SetUsable(name, false)
		if err := m.startChecks(name, m.path(name)); err != nil {
			for _, n := range order[:i+1] {
				m.stopChecks(m.path(n))
			}
			close(m.quit)
			close(m.done)
			return err
		}
	}
	if m.cfg.Links != nil {
		done, err := m.cfg.Links.Watch(ctx, m.linkState)
		if err != nil {
			for _, n := range order {
				m.stopChecks(m.path(n))
			}
			close(m.quit)
			close(m.done)
			return fmt.Errorf("failover: watch links: %w", err)
		}
		m.linksDone = done
	}
	m.updateActive()
	go func() {
		defer close(m.done)
		m.run(ctx)
		if m.linksDone != nil {
			<-m.linksDone
		}
	}()
	m.mu.Lock()
	m.running = true
	m.mu.Unlock()
	m.replayTunnels(order)
	return nil
}

// linkState is the link watch's report: when a link goes down or comes
// back, every path leaving by it gets an event.
func (m *Manager) linkState(link string, up bool) {
	m.mu.Lock()
	if m.linkDown[link] != up { // no change
		m.mu.Unlock()
		return
	}
	if up {
		delete(m.linkDown, link)
	} else {
		m.linkDown[link] = true
	}
	var names []string
	for _, n := range m.order {
		if m.paths[n].cfg.Link == link {
			names = append(names, n)
		}
	}
	m.mu.Unlock()
	for _, n := range names {
		m.send(event{path: n, link: &up, at: time.Now(), reason: reason("link", up)})
	}
}

// Done is closed when the manager and every health check have stopped
// after Start's context ended.
func (m *Manager) Done() <-chan struct{} { return m.done }

// path returns the named path's state, nil if there is none.
func (m *Manager) path(name string) *pathState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.paths[name]
}

// startChecks starts a path's BFD session or prober, which run until the
// manager's context ends or the path is removed or replaced.
func (m *Manager) startChecks(name string, p *pathState) error {
	ctx, stop := context.WithCancel(m.ctx)
	p.stop = stop
	if p.cfg.BFD == nil && p.cfg.Probe != nil {
		return m.startProbe(ctx, name, p)
	}
	if p.cfg.BFD == nil {
		return nil
	}
	bc := *p.cfg.BFD
	bc.OnChange = func(c bfd.Change) {
		up := c.To == bfd.StateUp
		m.send(event{path: name, from: p, health: &up, at: c.At, reason: fmt.Sprintf("bfd-%s", c.To)})
	}
	s, err := bfd.New(bc)
	if err != nil {
		return fmt.Errorf("failover: path %s: %w", name, err)
	}
	if err := s.Start(ctx); err != nil {
		return fmt.Errorf("failover: path %s: %w", name, err)
	}
	m.mu.Lock()
	p.session = s
	m.mu.Unlock()
	m.bfdUp.WithLabelValues(name, bc.Peer.String()).Set(0)
	return nil
}

// stopChecks ends a path's health checks and waits until they have
// stopped and released their sockets.
func (m *Manager) stopChecks(p *pathState) {
	if p.stop != nil {
		p.stop()
	}
	m.mu.Lock()
	session, prober := p.session, p.prober
	m.mu.Unlock()
	if session != nil {
		<-session.Done()
	}
	if prober != nil {
		<-prober.Done()
	}
}

// startProbe starts ICMP probes on a path; their verdicts are health events.
func (m *Manager) startProbe(ctx context.Context, name string, p *pathState) error {
	pc := *p.cfg.Probe
	vpn := p.cfg.VPN
	pc.OnChange = func(up bool, at time.Time) {
		m.send(event{path: name, from: p, health: &up, at: at, reason: reason("probe", up)})
	}
	pc.OnResult = func(rtt time.Duration, lost bool, st probe.Stats) {
		if !lost {
			m.probeRTT.WithLabelValues(vpn, name).Observe(rtt.Seconds())
		}
		m.probeLoss.WithLabelValues(vpn, name).Set(st.LossRatio)
		m.probeJit.WithLabelValues(vpn, name).Set(st.Jitter.Seconds())
	}
	pr, err := probe.New(pc)
	if err != nil {
		return fmt.Errorf("failover: path %s: %w", name, err)
	}
	if err := pr.Start(ctx); err != nil {
		return fmt.Errorf("failover: path %s: %w", name, err)
	}
	m.mu.Lock()
	p.prober = pr
	m.mu.Unlock()
	return nil
}

func (m *Manager) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			close(m.quit)
			m.mu.Lock()
			paths := make([]*pathState, 0, len(m.paths))
			for _, p := range m.paths {
				m.stopHold(p)
				paths = append(paths, p)
			}
			m.mu.Unlock()
			for _, p := range paths {
				m.stopChecks(p)
			}
			return
		case e := <-m.ev:
			m.handle(ctx, e)
		}
	}
}

func (m *Manager) handle(ctx context.Context, e event) {
	if e.done != nil {
		defer close(e.done)
	}
	m.mu.Lock()
	p := m.paths[e.path]
	if p == nil || (e.from != nil && e.from != p) {
		m.mu.Unlock() // a removed path, or a replaced health check's last word
		return
	}
	fell := false // the health check went from up to down
	if e.health != nil {
		if p.cfg.BFD != nil {
			m.bfdUp.WithLabelValues(e.path, p.cfg.BFD.Peer.String()).Set(b2f(*e.health))
		}
		fell = p.healthy && !*e.health
		p.healthy = *e.health
	}
	if e.bgp != nil && !p.cfg.Static {
		p.bgpUp = *e.bgp
	}
	if e.tunnel && p.cfg.Static {
		p.bgpUp = m.tunnelUp[e.path]
	}
	if e.admin != nil {
		p.adminDown = *e.admin
	}
	if e.link != nil {
		p.linkDown = !*e.link
	}
	want := p.healthy && p.bgpUp && !p.adminDown && !p.linkDown
	now := time.Now()
	change := false
	switch {
	case !want:
		m.stopHold(p)
		change = p.usable
	case p.usable:
	case e.admin != nil:
		change = true // the operator's word skips the hold-down
	case e.hold:
		change = !p.holdUntil.IsZero() && !now.Before(p.holdUntil)
	case m.cfg.HoldDown > 0 && p.wasUsable:
		if p.holdUntil.IsZero() {
			m.startHold(ctx, p, e.path)
			m.log.Info("path recovered, holding down", "path", e.path, "hold_down", m.cfg.HoldDown, "cause", e.reason)
		}
	default:
		change = true // first use, or no hold-down
	}
	if change {
		p.usable = want
		p.since = now
		p.holdUntil = time.Time{}
		p.wasUsable = p.wasUsable || want
	}
	m.mu.Unlock()
	if change {
		m.program(ctx, e, want)
	}
	m.resetOnBFDDown(ctx, p, e, fell)
}

// startHold arms the hold-down timer of a recovered path. Called with m.mu held.
func (m *Manager) startHold(ctx context.Context, p *pathState, name string) {
	p.holdUntil = time.Now().Add(m.cfg.HoldDown)
	p.hold = time.AfterFunc(m.cfg.HoldDown, func() {
		select {
		case m.ev <- event{path: name, hold: true, at: time.Now(), reason: "recovered"}:
		case <-ctx.Done():
		}
	})
}

// stopHold cancels a pending hold-down. Called with m.mu held.
func (m *Manager) stopHold(p *pathState) {
	if p.hold != nil {
		p.hold.Stop()
		p.hold = nil
	}
	p.holdUntil = time.Time{}
}

// program applies a path change to the kernel and records it. A failover is
// counted from what carried traffic before: the FIB's view now or, for a BGP
// session that went down, the view taken when it was reported, if no other
// change was programmed since (the daemon withdraws the session's routes
// right after reporting it, so by now traffic may have moved already).
func (m *Manager) program(ctx context.Context, e event, usable bool) {
	m.mu.Lock()
	latest := e.seen != "" && e.seenAt == m.programs
	m.programs++
	m.mu.Unlock()
	before := m.activeName()
	if latest {
		before = e.seen
	}
	m.fib.SetUsable(e.path, usable)
	took := time.Since(e.at)
	after := m.activeName()
	m.duration.Observe(took.Seconds())
	level := slog.LevelInfo
	if !usable {
		level = slog.LevelWarn
	}
	m.log.Log(ctx, level, "path usable changed", "path", e.path, "usable", usable, "cause", e.reason,
		"active_before", before, "active_after", after, "detection_to_kernel", took)
	m.mu.Lock()
	first := !m.selected && before == "none"
	m.selected = m.selected || after != "none"
	m.mu.Unlock()
	// The first path to carry traffic after start is a selection, not a
	// failover; a later recovery from "none" (every path was down) counts.
	if before != after && !first {
		m.failovers.WithLabelValues(before, after, e.reason).Inc()
	}
	m.updateActive()
}

// ErrNoPath is SetAdminDown's error for a path the manager does not have.
var ErrNoPath = errors.New("no such path")

// SetAdminDown takes a path out of service (down) or puts it back, as an
// operator does for maintenance: a path taken down is not usable whatever
// its health, so traffic moves off it as on a failure; put back, it is
// usable as soon as its health and BGP session are, without the hold-down.
// It returns once the manager has handled it (the kernel follows), or when
// ctx ends.
func (m *Manager) SetAdminDown(ctx context.Context, name string, down bool) error {
	if m.path(name) == nil {
		return fmt.Errorf("failover: path %q: %w", name, ErrNoPath)
	}
	cause := "admin-up"
	if down {
		cause = "admin-down"
	}
	done := make(chan struct{})
	e := event{path: name, admin: &down, at: time.Now(), reason: cause, done: done}
	select {
	case m.ev <- e:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// resetOnBFDDown tears the BGP session down when BFD says the neighbor is
// gone: when it fell from Up. A BFD session still coming up (Down, Init)
// says nothing about the neighbour; after a restart of cgwd BGP may well be
// up before BFD is, and a reset then would end the peer's graceful restart
// and withdraw cgwd's routes.
func (m *Manager) resetOnBFDDown(ctx context.Context, p *pathState, e event, fell bool) {
	if !fell || !p.cfg.ResetBGPOnDown || m.bgp == nil || !p.bgpUp {
		return
	}
	if err := m.bgp.ShutdownPeer(ctx, e.path, "BFD down"); err != nil {
		m.log.Error("tear down BGP after BFD down", "path", e.path, "err", err)
	}
}

// activeName names the paths carrying traffic, in configured order.
func (m *Manager) activeName() string {
	act := m.fib.Active()
	m.mu.Lock()
	order := append([]string(nil), m.order...)
	m.mu.Unlock()
	var names []string
	for _, n := range order {
		if act[n] {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	s := names[0]
	for _, n := range names[1:] {
		s += "+" + n
	}
	return s
}

func (m *Manager) updateActive() {
	act := m.fib.Active()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range m.order {
		p := m.paths[n]
		m.active.WithLabelValues(p.cfg.VPN, n, p.cfg.Kind).Set(b2f(act[n]))
		m.info.WithLabelValues(p.cfg.VPN, n, p.cfg.Kind, routingOf(p.cfg)).Set(1)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// PathStatus is a path's health as `cgwd status` shows it.
type PathStatus struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Health string `json:"health"` // bfd state, or "bgp-only" ("tunnel-only" for a static path)
	BGPUp  bool   `json:"bgp_up"`
	// Routing is "static" for a tunnel of a static VPN connection (no BGP
	// session; TunnelUp stands in for it), "bgp" otherwise.
	Routing  string `json:"routing"`
	TunnelUp bool   `json:"tunnel_up,omitempty"`
	// Installed counts the kernel routes over the path (set by the daemon
	// from the FIB): for a static path, its static routes.
	Installed int `json:"installed"`
	// AdminDown is set while the operator keeps the path out of service.
	AdminDown bool      `json:"admin_down"`
	Usable    bool      `json:"usable"`
	Active    bool      `json:"active"`
	HoldUntil time.Time `json:"hold_until,omitempty"`
	Since     time.Time `json:"since"`
	Peer      string    `json:"bfd_peer,omitempty"`
}

// Status returns every path's state in configured order.
func (m *Manager) Status() []PathStatus {
	if m.fib == nil {
		return nil
	}
	act := m.fib.Active()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]PathStatus, 0, len(m.order))
	for _, n := range m.order {
		p := m.paths[n]
		ps := PathStatus{Name: n, Kind: p.cfg.Kind, Health: "bgp-only", BGPUp: p.bgpUp, AdminDown: p.adminDown, Usable: p.usable, Active: act[n], Since: p.since}
		staticStatus(&ps, p.cfg)
		if !p.usable {
			ps.HoldUntil = p.holdUntil
		}
		if p.session != nil {
			st := p.session.Status()
			ps.Health = "bfd " + st.State.String()
			ps.Peer = st.Peer.String()
		}
		if p.prober != nil {
			st := p.prober.Stats()
			verdict := "down"
			if st.Up {
				verdict = "up"
			}
			ps.Health = fmt.Sprintf("probe %s rtt %v loss %.0f%%", verdict, st.LastRTT.Round(time.Microsecond), st.LossRatio*100)
		}
		out = append(out, ps)
	}
	return out
}
