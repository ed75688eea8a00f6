// Package fib is the one owner of cgwd's routes in the kernel. BGP tells it
// which prefixes each path (tunnel or DX link) offers; health checking tells
// it which paths are usable; it decides the route of every prefix and keeps
// the kernel in line: it marks its routes with its own protocol number, never
// touches another, repairs drift on a timer, adopts its routes after a
// restart and removes them on a clean stop.
package fib

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Path is a way out of the box toward AWS: a tunnel netdev or a DX link.
type Path struct {
	// Name identifies the path (the tunnel netdev name or the DX link name).
	Name string
	// Link is the netdev routes over this path use.
	Link string
	// Rank orders paths: lower is preferred (DX 0, tunnel 1, tunnel 2, ...).
	Rank int
}

// Config configures a FIB.
type Config struct {
	Table             int
	Protocol          int
	ReconcileInterval time.Duration
	// StaleTime keeps routes found in the kernel at start-up that nobody
	// re-learned for this long before removing them.
	StaleTime time.Duration
	Paths     []Path
	Logger    *slog.Logger
	// Kernel is where routes go; nil means the Linux kernel over netlink.
	Kernel Kernel
}

// Route is a kernel route as the FIB sees it.
type Route struct {
	Prefix  netip.Prefix
	Link    string
	Gateway netip.Addr
}

// Kernel is the FIB's view of the kernel routing table: only the routes of
// the FIB's protocol in its table.
type Kernel interface {
	List() ([]Route, error)
	Replace(Route) error
	Delete(Route) error
}

// Counters are the FIB's running totals.
type Counters struct {
	Programmed atomic.Uint64 // routes added, replaced or deleted in the kernel
	Errors     atomic.Uint64 // failed kernel operations
}

// FIB decides and installs routes.
type FIB struct {
	cfg    Config
	log    *slog.Logger
	kernel Kernel
	paths  map[string]Path
	kick   chan struct{}

	// Counters are exported through metrics.
	Counters Counters

	mu        sync.Mutex
	cands     map[netip.Prefix]map[string]netip.Addr // prefix -> path -> BGP next hop
	usable    map[string]bool
	dirty     map[netip.Prefix]struct{}
	installed map[netip.Prefix]Route
	stale     map[netip.Prefix]time.Time // adopted at start-up, until
}

// New returns a FIB; call Run to make it act.
func New(cfg Config) (*FIB, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	k := cfg.Kernel
	if k == nil {
		var err error
		if k, err = NewNetlinkKernel(cfg.Table, cfg.Protocol); err != nil {
			return nil, err
		}
	}
	f := &FIB{
		cfg: cfg, log: log.With("component", "fib"), kernel: k,
		paths: map[string]Path{}, kick: make(chan struct{}, 1),
		cands: map[netip.Prefix]map[string]netip.Addr{}, usable: map[string]bool{},
		dirty: map[netip.Prefix]struct{}{}, installed: map[netip.Prefix]Route{}, stale: map[netip.Prefix]time.Time{},
	}
	for _, p := range cfg.Paths {
		f.paths[p.Name] = p
		f.usable[p.Name] = true
	}
	if err := f.adopt(); err != nil {
		return nil, err
	}
	return f, nil
}

// adopt takes over the routes of our protocol already in the kernel (left by
// a previous run): they stay until re-learned or until StaleTime passes.
func (f *FIB) adopt() error {
	existing, err := f.kernel.List()
	if err != nil {
		return fmt.Errorf("fib: list kernel routes: %w", err)
	}
	until := time.Now().Add(f.cfg.StaleTime)
	for _, r := range existing {
		f.installed[r.Prefix] = r
		f.stale[r.Prefix] = until
		f.dirty[r.Prefix] = struct{}{}
	}
	if len(existing) > 0 {
		f.log.Info("adopted routes from a previous run", "routes", len(existing), "stale_time", f.cfg.StaleTime)
		f.poke()
	}
	return nil
}

// Add records that path offers prefix via nexthop.
func (f *FIB) Add(prefix netip.Prefix, path string, nexthop netip.Addr) {
	f.mu.Lock()
	c := f.cands[prefix]
	if c == nil {
		c = map[string]netip.Addr{}
		f.cands[prefix] = c
	}
	c[path] = nexthop
	f.dirty[prefix] = struct{}{}
	f.mu.Unlock()
	f.poke()
}

// Remove records that path no longer offers prefix.
func (f *FIB) Remove(prefix netip.Prefix, path string) {
	f.mu.Lock()
	if c := f.cands[prefix]; c != nil {
		delete(c, path)
		if len(c) == 0 {
			delete(f.cands, prefix)
		}
		f.dirty[prefix] = struct{}{}
	}
	f.mu.Unlock()
	f.poke()
}

// RemovePath forgets every prefix path offers (its session went down).
func (f *FIB) RemovePath(path string) {
	f.mu.Lock()
	for prefix, c := range f.cands {
		if _, ok := c[path]; ok {
			delete(c, path)
			if len(c) == 0 {
				delete(f.cands, prefix)
			}
			f.dirty[prefix] = struct{}{}
		}
	}
	f.mu.Unlock()
	f.poke()
}

// SetUsable marks a path usable or not (its health check).
func (f *FIB) SetUsable(path string, ok bool) {
	f.mu.Lock()
	if f.usable[path] != ok {
		f.usable[path] = ok
		for prefix, c := range f.cands {
			if _, has := c[path]; has {
				f.dirty[prefix] = struct{}{}
			}
		}
	}
	f.mu.Unlock()
	f.poke()
}

func (f *FIB) poke() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// desired computes prefix's route; ok is false when no usable path offers it.
// Called with f.mu held.
func (f *FIB) desired(prefix netip.Prefix) (r Route, ok bool) {
	best := ""
	for name := range f.cands[prefix] {
		p, known := f.paths[name]
		if !known || !f.usable[name] {
			continue
		}
		if best == "" || p.Rank < f.paths[best].Rank || (p.Rank == f.paths[best].Rank && name < best) {
			best = name
		}
	}
	if best == "" {
		return r, false
	}
	return Route{Prefix: prefix, Link: f.paths[best].Link, Gateway: f.cands[prefix][best]}, true
}

// Run programs changes as they come and reconciles every ReconcileInterval
// until ctx ends; then it removes every route of its protocol from its table.
func (f *FIB) Run(ctx context.Context) error {
	tick := time.NewTicker(f.cfg.ReconcileInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			f.removeAll()
			return nil
		case <-f.kick:
			f.flush()
		case <-tick.C:
			f.reconcile()
		}
	}
}

// flush programs every dirty prefix.
func (f *FIB) flush() {
	f.mu.Lock()
	dirty := f.dirty
	f.dirty = make(map[netip.Prefix]struct{}, len(dirty))
	now := time.Now()
	type op struct {
		r   Route
		del bool
	}
	ops := make([]op, 0, len(dirty))
	for prefix := range dirty {
		want, ok := f.desired(prefix)
		have, installed := f.installed[prefix]
		if ok {
			delete(f.stale, prefix) // re-learned: no longer only adopted
		}
		switch {
		case ok && (!installed || have != want):
			ops = append(ops, op{r: want})
			f.installed[prefix] = want
		case !ok && installed:
			if until, isStale := f.stale[prefix]; isStale && now.Before(until) {
				continue // adopted route: keep until its stale time
			}
			ops = append(ops, op{r: have, del: true})
			delete(f.installed, prefix)
			delete(f.stale, prefix)
		}
	}
	f.mu.Unlock()
	for _, o := range ops {
		var err error
		if o.del {
			err = f.kernel.Delete(o.r)
		} else {
			err = f.kernel.Replace(o.r)
		}
		f.count(o.r, err, o.del)
	}
}

func (f *FIB) count(r Route, err error, del bool) {
	if err != nil {
		f.Counters.Errors.Add(1)
		f.log.Error("route programming failed", "prefix", r.Prefix, "dev", r.Link, "via", r.Gateway, "delete", del, "err", err)
		f.mu.Lock()
		f.dirty[r.Prefix] = struct{}{} // the reconcile tick retries
		if !del {
			delete(f.installed, r.Prefix)
		}
		f.mu.Unlock()
		return
	}
	f.Counters.Programmed.Add(1)
}

// reconcile compares the kernel with what the FIB believes it installed and
// repairs any difference: a route deleted or changed by hand comes back, a
// route of our protocol nobody wants goes (once its stale time is over).
func (f *FIB) reconcile() {
	inKernel, err := f.kernel.List()
	if err != nil {
		f.Counters.Errors.Add(1)
		f.log.Error("reconcile: list kernel routes", "err", err)
		return
	}
	seen := make(map[netip.Prefix]Route, len(inKernel))
	for _, r := range inKernel {
		seen[r.Prefix] = r
	}
	now := time.Now()
	f.mu.Lock()
	repaired := 0
	for prefix, want := range f.installed {
		if got, ok := seen[prefix]; !ok || got != want {
			delete(f.installed, prefix)
			f.dirty[prefix] = struct{}{}
			repaired++
		}
	}
	var extra []Route
	for prefix, r := range seen {
		if _, ours := f.installed[prefix]; ours {
			continue
		}
		if _, pending := f.dirty[prefix]; pending {
			continue
		}
		if until, isStale := f.stale[prefix]; isStale && now.Before(until) {
			continue
		}
		delete(f.stale, prefix)
		extra = append(extra, r)
	}
	for prefix, until := range f.stale {
		if !now.Before(until) {
			f.dirty[prefix] = struct{}{}
		}
	}
	f.mu.Unlock()
	if repaired > 0 || len(extra) > 0 {
		f.log.Warn("reconcile: kernel drifted, repairing", "missing_or_changed", repaired, "unwanted", len(extra))
	}
	for _, r := range extra {
		f.count(r, f.kernel.Delete(r), true)
	}
	f.flush()
}

// removeAll deletes every route of the FIB's protocol in its table.
func (f *FIB) removeAll() {
	routes, err := f.kernel.List()
	if err != nil {
		f.log.Error("shutdown: list kernel routes", "err", err)
		return
	}
	for _, r := range routes {
		f.count(r, f.kernel.Delete(r), true)
	}
	f.mu.Lock()
	f.installed = map[netip.Prefix]Route{}
	f.mu.Unlock()
	f.log.Info("removed cgwd's routes", "routes", len(routes))
}

// Installed returns how many installed routes use each path's link.
func (f *FIB) Installed() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	byLink := map[string]int{}
	for _, r := range f.installed {
		byLink[r.Link]++
	}
	out := map[string]int{}
	for name, p := range f.paths {
		out[name] = byLink[p.Link]
	}
	return out
}

// Routes returns the installed routes sorted by prefix.
func (f *FIB) Routes() []Route {
	f.mu.Lock()
	out := make([]Route, 0, len(f.installed))
	for _, r := range f.installed {
		out = append(out, r)
	}
	f.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Prefix.String() < out[j].Prefix.String() })
	return out
}
