// Package symmetry is cgwd's symmetry guard. Stateful firewalls behind the
// box drop a flow whose two directions take different tunnels: AWS picks
// the tunnel it sends on by what cgwd advertises, cgwd picks the tunnel it
// sends on by what AWS advertises, and the two need not agree. The guard
// samples, per path, whether AWS is sending on it (the receive packet rate
// of its netdev above a threshold that control traffic stays below) and
// whether cgwd is (the FIB's selection), exports both, and marks a path
// asymmetric where AWS sends and cgwd does not; an alert rule
// (deploy/prometheus) fires when that lasts. It also tells the FIB where
// AWS sends, which paths with follow_aws use to break ties (pkg/fib).
package symmetry

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Path is one path the guard watches.
type Path struct {
	// Name is the path's name, as the FIB knows it.
	Name string
	// VPN is the connection it belongs to ("" for DX): a metrics label.
	VPN string
	// Link is the netdev AWS's traffic arrives on.
	Link string
}

// FIB is the route programmer as the guard sees it.
type FIB interface {
	// Active tells which paths carry traffic now.
	Active() map[string]bool
	// SetAWSSends tells whether AWS sends on a path.
	SetAWSSends(path string, sends bool)
}

// Config configures a Guard.
type Config struct {
	Paths []Path
	// Interval is how often the counters are sampled.
	Interval time.Duration
	// MinPPS is the receive rate (packets per second) above which AWS
	// counts as sending on a path.
	MinPPS int
	// RxPackets reads a link's received packets; nil reads
	// /sys/class/net/<link>/statistics/rx_packets.
	RxPackets func(link string) (uint64, error)
	Logger    *slog.Logger
}

// Guard samples the paths; Start runs it.
type Guard struct {
	cfg  Config
	log  *slog.Logger
	done chan struct{}

	mu    sync.Mutex // guards paths and last
	paths []Path
	last  map[string]sample
	state map[string]State

	awsSends   *prometheus.GaugeVec
	asymmetric *prometheus.GaugeVec
	rxRate     *prometheus.GaugeVec
}

type sample struct {
	rx uint64
	at time.Time
}

// State is what the guard last saw of a path.
type State struct {
	AWSSends  bool    `json:"aws_sends"`
	CgwdSends bool    `json:"cgwd_sends"`
	RxPPS     float64 `json:"rx_pps"`
	// Since is when AWSSends or CgwdSends last changed.
	Since time.Time `json:"since"`
}

// Asymmetric reports whether AWS sends on the path and cgwd does not.
func (s State) Asymmetric() bool { return s.AWSSends && !s.CgwdSends }

// New returns a guard; call Start.
func New(cfg Config) *Guard {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.RxPackets == nil {
		cfg.RxPackets = sysfsRxPackets
	}
	labels := []string{"vpn", "path"}
	return &Guard{
		cfg: cfg, log: log.With("component", "symmetry"), done: make(chan struct{}),
		paths: append([]Path(nil), cfg.Paths...), last: map[string]sample{}, state: map[string]State{},
		awsSends: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cgwd_path_aws_sending", Help: "Whether AWS sends traffic on the path (1): its receive rate is above failover.symmetry.min_pps.",
		}, labels),
		asymmetric: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cgwd_path_asymmetric", Help: "Whether AWS sends traffic on the path while cgwd does not use it (1): flows through a stateful firewall break.",
		}, labels),
		rxRate: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cgwd_path_rx_packets_per_second", Help: "Packets received on the path's netdev per second over the last sampling interval.",
		}, labels),
	}
}

// Collectors are the guard's metrics.
func (g *Guard) Collectors() []prometheus.Collector {
	return []prometheus.Collector{g.awsSends, g.asymmetric, g.rxRate}
}

// SetPaths replaces the watched paths (a config reload); a removed path's
// series go.
func (g *Guard) SetPaths(paths []Path) {
	g.mu.Lock()
	defer g.mu.Unlock()
	keep := map[string]bool{}
	for _, p := range paths {
		keep[p.Name] = true
	}
	for _, p := range g.paths {
		if !keep[p.Name] {
			delete(g.last, p.Name)
			delete(g.state, p.Name)
			for _, v := range g.Collectors() {
				v.(*prometheus.GaugeVec).DeleteLabelValues(p.VPN, p.Name)
			}
		}
	}
	g.paths = append([]Path(nil), paths...)
}

// States returns what the guard last saw, by path.
func (g *Guard) States() map[string]State {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]State, len(g.state))
	for k, v := range g.state {
		out[k] = v
	}
	return out
}

// Start samples every Interval until ctx ends.
func (g *Guard) Start(ctx context.Context, fib FIB) error {
	if g.cfg.Interval <= 0 {
		return fmt.Errorf("symmetry: interval %v", g.cfg.Interval)
	}
	g.Sample(fib, time.Now())
	go func() {
		defer close(g.done)
		tick := time.NewTicker(g.cfg.Interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				g.Sample(fib, now)
			}
		}
	}()
	return nil
}

// Done is closed once the guard has stopped after Start's context ended.
func (g *Guard) Done() <-chan struct{} { return g.done }

// Sample reads every path's counter once, compares it with the previous
// reading taken at least half an interval before, and updates the metrics
// and the FIB.
func (g *Guard) Sample(fib FIB, now time.Time) {
	active := fib.Active()
	type change struct {
		name  string
		sends bool
	}
	var tell []change
	g.mu.Lock()
	for _, p := range g.paths {
		rx, err := g.cfg.RxPackets(p.Link)
		if err != nil {
			continue // the netdev is not there (a tunnel starting): no verdict
		}
		prev, had := g.last[p.Name]
		if had && now.Sub(prev.at) < g.cfg.Interval/2 {
			continue
		}
		g.last[p.Name] = sample{rx, now}
		old := g.state[p.Name]
		st := old
		st.CgwdSends = active[p.Name]
		if had && rx >= prev.rx {
			st.RxPPS = float64(rx-prev.rx) / now.Sub(prev.at).Seconds()
			st.AWSSends = st.RxPPS > float64(g.cfg.MinPPS)
		}
		if st.AWSSends != old.AWSSends || st.CgwdSends != old.CgwdSends || old.Since.IsZero() {
			st.Since = now
		}
		g.state[p.Name] = st
		g.awsSends.WithLabelValues(p.VPN, p.Name).Set(b2f(st.AWSSends))
		g.asymmetric.WithLabelValues(p.VPN, p.Name).Set(b2f(st.Asymmetric()))
		g.rxRate.WithLabelValues(p.VPN, p.Name).Set(st.RxPPS)
		if st.AWSSends != old.AWSSends {
			tell = append(tell, change{p.Name, st.AWSSends})
		}
		if st.Asymmetric() != old.Asymmetric() {
			level := slog.LevelInfo
			if st.Asymmetric() {
				level = slog.LevelWarn
			}
			g.log.Log(context.Background(), level, "path symmetry changed", "path", p.Name,
				"aws_sends", st.AWSSends, "cgwd_sends", st.CgwdSends, "asymmetric", st.Asymmetric(), "rx_pps", int(st.RxPPS))
		}
	}
	g.mu.Unlock()
	for _, c := range tell {
		fib.SetAWSSends(c.name, c.sends)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// sysfsRxPackets reads a netdev's received packets from sysfs.
func sysfsRxPackets(link string) (uint64, error) {
	if link == "" || strings.ContainsAny(link, "/\x00") || link == "." || link == ".." {
		return 0, fmt.Errorf("symmetry: bad link name %q", link)
	}
	b, err := os.ReadFile(filepath.Join("/sys/class/net", link, "statistics", "rx_packets"))
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}
