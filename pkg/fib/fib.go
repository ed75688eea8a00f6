// Package fib is the one owner of cgwd's routes in the kernel. BGP tells it
// which prefixes each path (tunnel or DX link) offers; health checking
// (pkg/failover) tells it which paths are usable; it decides the route of
// every prefix and keeps the kernel in line.
//
// Path selection lives here and nowhere else: a prefix goes over the usable
// paths that come first among those that offer it, by preference, then the
// BGP attributes of their routes to it (AS path length, origin, MED), then
// Rank (selection.go); several that tie share it (ECMP); none usable, it is
// dropped rather than leaked to a less specific route. pkg/failover only decides whether a path is usable (health
// check, BGP session, hold-down); the ranks come from the config
// (pkg/daemon).
//
// The FIB marks its routes with its own protocol number, never touches
// another, repairs drift on a timer, adopts its routes after a restart and
// removes them on a clean stop. It writes the kernel settings routing needs
// and restores them on stop (sysctl.go). With fail closed on, it also
// keeps an unreachable route below its own for every AWS prefix it knows,
// left in place across a stop (see FailClosedMetric).
//
// Failover is prefix-independent where the kernel has nexthop objects: every
// path is one nexthop object, and every prefix points at the nexthop group of
// the set of paths that offer it (in practice a handful of groups). A path
// going unusable is one atomic group replace per affected group, whatever the
// number of prefixes. Without nexthop objects each route carries its gateway
// and a path change rewrites every affected route.
package fib

import (
	"context"
	"fmt"
	"log/slog"
	"math/bits"
	"net/netip"
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
	// Gateway is the AWS side's address on the link (the BGP peer).
	Gateway netip.Addr
	// Preference orders paths before anything else, higher first (see
	// selection.go): the daemon sets AWS's order (DX, then static VPN,
	// then dynamic VPN) or the operator's override.
	Preference int
	// Rank orders paths whose preference and BGP attributes tie: the usable
	// paths of lowest rank carry the traffic, several of equal rank share
	// it (ECMP). DX 0; tunnels 1 and 2 for active/standby, 1 and 1 for ECMP.
	Rank int
	// FollowAWS prefers, among paths that tie on preference and attributes,
	// the ones AWS sends on (SetAWSSends) over the rank.
	FollowAWS bool
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
	// KeepNexthopCompat leaves net.ipv4.nexthop_compat_mode as it is
	// (see sysctl.go).
	KeepNexthopCompat bool
	// ManageForwarding turns IPv4 forwarding on and reverse-path filtering
	// loose on the paths' netdevs while the FIB runs (see sysctl.go).
	ManageForwarding bool
	// ProcSys is where kernel settings are written: "" means /proc/sys
	// with the netlink kernel, nowhere with another Kernel (tests).
	ProcSys string
	// SettingsFile, when set, records the value each kernel setting had
	// before the FIB first changed it, so that a run after a restart or
	// crash restores them (sysctlstate.go).
	SettingsFile string
	// FailClosed keeps an unreachable route for every AWS prefix (learned
	// or in AWSPrefixes) below the real ones, also across a stop; off, any
	// found are removed.
	FailClosed bool
	// AWSPrefixes are covered by fail-closed routes before BGP offers them.
	AWSPrefixes []netip.Prefix
	// OnChange, when set, is called after the FIB programmed a change,
	// so that what is told of the routes (Carried) follows; it must not block.
	OnChange func()
}

// Route is a kernel route as the FIB sees it: via a nexthop group
// (NexthopID), or directly via Gateway on Link.
type Route struct {
	Prefix    netip.Prefix
	NexthopID uint32
	Link      string
	Gateway   netip.Addr
}

// Kernel is the FIB's view of the kernel: the routes of the FIB's protocol in
// its table, and its nexthop objects.
type Kernel interface {
	List() ([]Route, error)
	Replace([]Route) error
	Delete([]Route) error
	// NexthopObjects reports whether the kernel has nexthop objects.
	NexthopObjects() bool
	// ReplaceNexthop creates or replaces a single nexthop object; with no
	// link and no gateway it is a blackhole.
	ReplaceNexthop(id uint32, link string, gw netip.Addr) error
	// ReplaceGroup creates or replaces a group of nexthop objects.
	ReplaceGroup(id uint32, members []uint32) error
	// DeleteNexthops removes nexthop objects (groups first).
	DeleteNexthops(ids []uint32) error
	// Groups lists the IDs of the nexthop groups of the FIB's protocol.
	Groups() ([]uint32, error)
	// FailClosed lists the prefixes of the fail-closed routes (unreachable,
	// metric FailClosedMetric) of the FIB's protocol in its table.
	FailClosed() ([]netip.Prefix, error)
	// ReplaceFailClosed installs fail-closed routes.
	ReplaceFailClosed([]netip.Prefix) error
	// DeleteFailClosed removes fail-closed routes.
	DeleteFailClosed([]netip.Prefix) error
}

// Nexthop object IDs cgwd uses: one per path, one per group, one blackhole.
const (
	nhBase      = 0x63770000 // "cw"
	nhBlackhole = nhBase
	nhPathBase  = nhBase + 0x100
	nhGroupBase = nhBase + 0x1000
)

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
	groups bool // nexthop objects in use
	kick   chan struct{}
	sys    *sysctls // nil: kernel settings are not the FIB's to write

	// keep is set by KeepOnStop (gr.go).
	keep atomic.Bool

	// Counters are exported through metrics.
	Counters Counters

	// Lock discipline. Fields above are set by New and only read after;
	// Counters are atomic. kmu serialises writes to the kernel, so that
	// what is decided reaches the kernel in the order it was decided; it is
	// held across kernel calls. state guards what the FIB knows and wants
	// (paths, usable set, candidates, routes and groups in the kernel); it
	// is never held across a kernel call. Whoever needs both takes kmu
	// first. Functions named ...Locked, and those that say so, are called
	// with state held.
	kmu sync.Mutex

	state struct {
		sync.Mutex
		paths        []Path
		pathIdx      map[string]int
		cands        map[netip.Prefix]uint64 // prefix -> set of paths offering it (bit i: paths[i])
		prof         map[netip.Prefix]uint32 // prefix -> attribute profile, if not all zero
		profiles     profiles
		awsSends     uint64 // paths AWS sends traffic on (SetAWSSends)
		nexthop      map[netip.Prefix][]netip.Addr
		usable       uint64 // set of usable paths
		dirty        map[netip.Prefix]struct{}
		installed    map[netip.Prefix]Route
		stale        map[netip.Prefix]time.Time // adopted at start-up, until
		groupID      map[offer]uint32           // paths and attributes -> group object
		groupIn      map[uint32][]uint32        // group -> members in the kernel
		nextGroup    uint32
		orphans      map[uint32]bool // groups left by a previous run
		dirtyGroups  bool
		nexthopsLost bool
		usableSince  [64]time.Time // when each path last became usable
		eor          uint64        // paths whose peer sent End-of-RIB (gr.go)

		// Fail closed (failclosed.go).
		fcOn     bool
		fcStatic map[netip.Prefix]bool     // configured AWS prefixes
		fcKnown  map[netip.Prefix]uint64   // learned or adopted -> paths that offered it (fcAll: unknown)
		fcIn     map[netip.Prefix]bool     // fail-closed routes in the kernel
		fcCheck  map[netip.Prefix]struct{} // newly known, to install unless covered
		fcFull   bool                      // recompute the whole set at the next flush
	}
}

// New returns a FIB and adopts the routes of its protocol already in the kernel.
func New(cfg Config) (*FIB, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if len(cfg.Paths) > 64 {
		return nil, fmt.Errorf("fib: %d paths, at most 64", len(cfg.Paths))
	}
	k := cfg.Kernel
	if k == nil {
		var err error
		if k, err = NewNetlinkKernel(cfg.Table, cfg.Protocol); err != nil {
			return nil, err
		}
		if cfg.ProcSys == "" {
			cfg.ProcSys = procSys
		}
	}
	f := &FIB{cfg: cfg, log: log.With("component", "fib"), kernel: k, groups: k.NexthopObjects(), kick: make(chan struct{}, 1)}
	st := &f.state
	st.paths, st.pathIdx = append([]Path(nil), cfg.Paths...), map[string]int{}
	st.cands, st.nexthop = map[netip.Prefix]uint64{}, map[netip.Prefix][]netip.Addr{}
	st.dirty, st.installed, st.stale = map[netip.Prefix]struct{}{}, map[netip.Prefix]Route{}, map[netip.Prefix]time.Time{}
	st.groupID, st.groupIn = map[offer]uint32{}, map[uint32][]uint32{}
	st.prof, st.profiles = map[netip.Prefix]uint32{}, newProfiles()
	st.fcKnown, st.fcIn, st.fcCheck = map[netip.Prefix]uint64{}, map[netip.Prefix]bool{}, map[netip.Prefix]struct{}{}
	now := time.Now()
	for i, p := range cfg.Paths {
		f.state.pathIdx[p.Name] = i
		f.state.usable |= 1 << i
		f.state.usableSince[i] = now
	}
	f.setFailClosedLocked(cfg.FailClosed, cfg.AWSPrefixes)
	if cfg.ProcSys != "" {
		f.sys = newSysctls(cfg.ProcSys, f.log)
		if cfg.SettingsFile != "" {
			if err := f.sys.adopt(cfg.SettingsFile); err != nil {
				f.log.Warn("kernel settings of a previous run not adopted: they stay as they are after a stop", "err", err)
			}
		}
		if err := f.applySysctls(); err != nil {
			f.sys.restore()
			return nil, err
		}
		if !cfg.ManageForwarding && f.forwardingOff() {
			f.log.Warn("manage_forwarding is false and net.ipv4.ip_forward is 0: tunnels and BGP come up, and nothing is forwarded")
		}
	}
	if f.groups {
		f.log.Info("kernel has nexthop objects: failover is one group replace, whatever the number of prefixes")
	} else {
		f.log.Warn("kernel lacks nexthop objects: falling back to per-route replace on failover")
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
	if f.groups {
		ids, err := f.kernel.Groups()
		if err != nil {
			return fmt.Errorf("fib: list nexthop groups: %w", err)
		}
		f.state.orphans = map[uint32]bool{}
		for _, id := range ids {
			f.state.orphans[id] = true // adopted routes may use them until re-learned
		}
	}
	until := time.Now().Add(f.cfg.StaleTime)
	for _, r := range existing {
		f.state.installed[r.Prefix] = r
		f.state.stale[r.Prefix] = until
		f.state.dirty[r.Prefix] = struct{}{}
		f.learnLocked(r.Prefix, fcAll)
	}
	if len(existing) > 0 {
		f.log.Info("adopted routes from a previous run", "routes", len(existing), "stale_time", f.cfg.StaleTime)
		f.poke()
	}
	closed, err := f.kernel.FailClosed()
	if err != nil {
		return fmt.Errorf("fib: list fail-closed routes: %w", err)
	}
	for _, p := range closed {
		f.state.fcIn[p] = true
		f.learnLocked(p, fcAll)
	}
	if len(closed) > 0 {
		f.log.Info("adopted fail-closed routes from a previous run", "routes", len(closed), "fail_closed", f.state.fcOn)
	}
	f.poke()
	return nil
}

// Add records that path offers prefix via nexthop (the BGP next hop), with
// no attributes to rank it by (a static route).
func (f *FIB) Add(prefix netip.Prefix, path string, nexthop netip.Addr) {
	f.AddWithAttrs(prefix, path, nexthop, Attrs{})
}

// AddWithAttrs records that path offers prefix via nexthop with the BGP
// attributes a, which rank it against other paths offering prefix.
func (f *FIB) AddWithAttrs(prefix netip.Prefix, path string, nexthop netip.Addr, a Attrs) {
	f.state.Lock()
	i, ok := f.state.pathIdx[path]
	if !ok {
		f.state.Unlock()
		return
	}
	f.state.cands[prefix] |= 1 << i
	f.setAttrsLocked(prefix, i, a)
	f.learnLocked(prefix, 1<<i)
	// Per-prefix next hops matter only without groups (a group's member is
	// the path's own nexthop object); with 100,000 prefixes they cost ~10 MB.
	if nh := f.state.nexthop[prefix]; i < len(nh) {
		nh[i] = netip.Addr{}
	}
	if !f.groups && nexthop.IsValid() && nexthop != f.state.paths[i].Gateway {
		nh := f.state.nexthop[prefix]
		if len(nh) <= i { // none yet, or a path added by SetPaths since
			nh = append(nh, make([]netip.Addr, len(f.state.paths)-len(nh))...)
			f.state.nexthop[prefix] = nh
		}
		nh[i] = nexthop
	}
	f.state.dirty[prefix] = struct{}{}
	f.state.Unlock()
	f.poke()
}

// Remove records that path no longer offers prefix.
func (f *FIB) Remove(prefix netip.Prefix, path string) {
	f.state.Lock()
	if i, ok := f.state.pathIdx[path]; ok {
		f.removeLocked(prefix, i)
	}
	f.state.Unlock()
	f.poke()
}

func (f *FIB) removeLocked(prefix netip.Prefix, i int) {
	set, ok := f.state.cands[prefix]
	if !ok || set&(1<<i) == 0 {
		return
	}
	set &^= 1 << i
	if nh := f.state.nexthop[prefix]; i < len(nh) {
		nh[i] = netip.Addr{}
	}
	if _, has := f.state.prof[prefix]; has {
		f.setAttrsLocked(prefix, i, Attrs{})
	}
	if set == 0 {
		delete(f.state.cands, prefix)
		delete(f.state.nexthop, prefix)
		delete(f.state.prof, prefix)
	} else {
		f.state.cands[prefix] = set
	}
	f.state.dirty[prefix] = struct{}{}
}

// RemovePath forgets every prefix path offers (its session went down).
func (f *FIB) RemovePath(path string) {
	f.state.Lock()
	if i, ok := f.state.pathIdx[path]; ok {
		f.forgetLocked(i)
	}
	f.state.Unlock()
	f.poke()
}

// forgetLocked drops every prefix the path in slot i offers. Called with
// f.state held.
func (f *FIB) forgetLocked(i int) {
	for prefix := range f.state.cands {
		f.removeLocked(prefix, i)
	}
}

// SetUsable marks a path usable or not (its health and BGP state) and
// returns once the kernel follows: with nexthop groups, after the affected
// group replaces; otherwise after every affected route is rewritten.
func (f *FIB) SetUsable(path string, ok bool) {
	f.state.Lock()
	i, known := f.state.pathIdx[path]
	if !known {
		f.state.Unlock()
		return
	}
	was := f.state.usable&(1<<i) != 0
	if was == ok {
		f.state.Unlock()
		return
	}
	if ok {
		f.state.usable |= 1 << i
		f.state.usableSince[i] = time.Now()
	} else {
		f.state.usable &^= 1 << i
		f.state.usableSince[i] = time.Time{}
	}
	if f.groups {
		f.state.dirtyGroups = true
		f.adoptedDirtyLocked()
	} else {
		for prefix, set := range f.state.cands {
			if set&(1<<i) != 0 {
				f.state.dirty[prefix] = struct{}{}
			}
		}
	}
	f.state.Unlock()
	f.flush()
}

func (f *FIB) poke() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// members lists the nexthop objects of a selection.
func members(sel uint64) []uint32 {
	var out []uint32
	for sel != 0 {
		i := bits.TrailingZeros64(sel)
		sel &^= 1 << i
		out = append(out, nhPathBase+uint32(i))
	}
	return out
}

// desired computes prefix's route; ok is false when no path offers it (or,
// without nexthop groups, none is usable). Called with f.state held.
func (f *FIB) desired(prefix netip.Prefix) (r Route, ok bool) {
	o, has := f.offerOf(prefix)
	if !has {
		return r, false
	}
	if f.groups {
		id, known := f.state.groupID[o]
		if !known {
			for {
				id = nhGroupBase + f.state.nextGroup
				f.state.nextGroup = (f.state.nextGroup + 1) % 0xE000
				if !f.state.orphans[id] {
					break
				}
			}
			f.state.groupID[o] = id
			f.state.dirtyGroups = true
		}
		return Route{Prefix: prefix, NexthopID: id}, true
	}
	sel := f.selection(o)
	if sel == 0 {
		return r, false
	}
	i := bits.TrailingZeros64(sel)
	gw := f.state.paths[i].Gateway
	if nh := f.state.nexthop[prefix]; i < len(nh) && nh[i].IsValid() {
		gw = nh[i] // a next hop other than the peer (third-party next hop)
	}
	return Route{Prefix: prefix, Link: f.state.paths[i].Link, Gateway: gw}, true
}

// maxDeferredReconciles bounds how many reconcile intervals in a row a burst
// of route changes may put the reconcile off.
const maxDeferredReconciles = 3

// Run programs changes as they come and reconciles every ReconcileInterval
// until ctx ends; then it removes its routes and nexthop objects.
func (f *FIB) Run(ctx context.Context) error {
	tick := time.NewTicker(f.cfg.ReconcileInterval)
	defer tick.Stop()
	if f.groups {
		f.ensureNexthops()
		f.flush()
	}
	// A reconcile reads the whole table: during a burst of route changes
	// (a full table arriving) that all went into the kernel without an error
	// it is put off, at most maxDeferredReconciles intervals in a row, so that
	// it does not compete with the programming. After any error it runs at
	// the next tick: errors are what it repairs.
	var programmed, errs uint64
	deferred := 0
	for {
		select {
		case <-ctx.Done():
			if f.keep.Load() {
				f.log.Info("stopping for a restart: routes, nexthop objects and kernel settings left in place")
				return nil
			}
			f.removeAll()
			if f.sys != nil {
				f.sys.restore()
			}
			return nil
		case <-f.kick:
			f.flush()
		case <-tick.C:
			n, e := f.Counters.Programmed.Load(), f.Counters.Errors.Load()
			f.state.Lock()
			lost := f.state.nexthopsLost
			f.state.Unlock()
			busy := n != programmed && e == errs && !lost
			programmed, errs = n, e
			if busy && deferred < maxDeferredReconciles {
				deferred++
				continue
			}
			deferred = 0
			f.reconcile()
			programmed, errs = f.Counters.Programmed.Load(), f.Counters.Errors.Load()
		}
	}
}

// flush programs dirty groups, then dirty prefixes.
func (f *FIB) flush() {
	f.kmu.Lock()
	defer f.kmu.Unlock()

	f.state.Lock()
	dirty := f.state.dirty
	f.state.dirty = make(map[netip.Prefix]struct{})
	now := time.Now()
	var replace, del []Route
	for prefix := range dirty {
		want, ok := f.desired(prefix)
		have, installed := f.state.installed[prefix]
		if ok && installed && f.keepAdoptedLocked(prefix, now) {
			continue // re-learned, but no path usable yet (gr.go)
		}
		if ok {
			delete(f.state.stale, prefix) // re-learned: no longer only adopted
		}
		switch {
		case ok && (!installed || have != want):
			replace = append(replace, want)
			f.state.installed[prefix] = want
		case !ok && installed:
			if until, isStale := f.state.stale[prefix]; isStale && now.Before(until) {
				continue // adopted route: keep until its stale time
			}
			del = append(del, have)
			delete(f.state.installed, prefix)
			delete(f.state.stale, prefix)
		}
	}
	type groupOp struct {
		id      uint32
		members []uint32
	}
	var gops []groupOp
	if f.groups && f.state.dirtyGroups {
		f.state.dirtyGroups = false
		for o, id := range f.state.groupID {
			m := members(f.selection(o))
			if len(m) == 0 {
				m = []uint32{nhBlackhole} // offered, but no usable path: drop, do not leak elsewhere
			}
			if !equal(f.state.groupIn[id], m) || f.state.groupIn[id] == nil {
				gops = append(gops, groupOp{id, m})
				f.state.groupIn[id] = m
			}
		}
	}
	f.state.Unlock()

	for _, g := range gops {
		err := f.kernel.ReplaceGroup(g.id, g.members)
		if err != nil && f.rewriteMembers(g.members) {
			// A member's object was gone: the kernel deletes a nexthop when
			// its link loses carrier, and a path that comes back finds it
			// missing. Written again, the group can take it.
			err = f.kernel.ReplaceGroup(g.id, g.members)
		}
		if err != nil {
			f.Counters.Errors.Add(1)
			f.log.Error("nexthop group replace failed", "group", g.id, "err", err)
			f.state.Lock()
			delete(f.state.groupIn, g.id)
			f.state.dirtyGroups = true
			f.state.nexthopsLost = true // the next reconcile rewrites the nexthop objects
			f.state.Unlock()
		}
	}
	f.apply(replace, false)
	f.syncFailClosed() // after the new routes (they carry traffic), before any route goes
	f.apply(del, true)
	if f.cfg.OnChange != nil && len(dirty)+len(gops) > 0 {
		f.cfg.OnChange()
	}
}

// rewriteMembers writes the nexthop objects of a group's members again and
// reports whether every write succeeded. Called with f.kmu held.
func (f *FIB) rewriteMembers(ids []uint32) bool {
	f.state.Lock()
	paths := append([]Path(nil), f.state.paths...)
	f.state.Unlock()
	for _, id := range ids {
		var p Path // the blackhole: no link, no gateway
		if id != nhBlackhole {
			p = paths[id-nhPathBase]
		}
		if err := f.kernel.ReplaceNexthop(id, p.Link, p.Gateway); err != nil {
			return false
		}
	}
	return true
}

func equal(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// apply writes a batch of routes; on failure the batch is retried by the
// next reconcile.
func (f *FIB) apply(rs []Route, del bool) {
	if len(rs) == 0 {
		return
	}
	var err error
	if del {
		err = f.kernel.Delete(rs)
	} else {
		err = f.kernel.Replace(rs)
	}
	if err == nil {
		f.Counters.Programmed.Add(uint64(len(rs)))
		return
	}
	f.Counters.Errors.Add(1)
	f.log.Error("route programming failed", "routes", len(rs), "delete", del, "err", err)
	f.state.Lock()
	for _, r := range rs {
		f.state.dirty[r.Prefix] = struct{}{}
		if !del {
			delete(f.state.installed, r.Prefix)
		}
	}
	f.state.Unlock()
}

// reconcile compares the kernel with what the FIB believes it installed and
// repairs any difference: a route deleted or changed by hand comes back, a
// route of our protocol nobody wants goes (once its stale time is over), and
// the nexthop objects are rewritten (a re-created netdev takes its nexthops
// and their routes with it).
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
	f.state.Lock()
	repaired := 0
	for prefix, want := range f.state.installed {
		if got, ok := seen[prefix]; !ok || got != want {
			delete(f.state.installed, prefix)
			f.state.dirty[prefix] = struct{}{}
			repaired++
		}
	}
	var extra []Route
	for prefix, r := range seen {
		if _, ours := f.state.installed[prefix]; ours {
			continue
		}
		if _, pending := f.state.dirty[prefix]; pending {
			continue
		}
		if until, isStale := f.state.stale[prefix]; isStale && now.Before(until) {
			continue
		}
		delete(f.state.stale, prefix)
		extra = append(extra, r)
	}
	for prefix, until := range f.state.stale {
		if !now.Before(until) {
			f.state.dirty[prefix] = struct{}{}
		}
	}
	f.state.Unlock()
	f.reconcileFailClosed(now)
	if repaired > 0 || len(extra) > 0 {
		f.log.Warn("reconcile: kernel drifted, repairing", "missing_or_changed", repaired, "unwanted", len(extra))
	}
	f.kmu.Lock()
	f.apply(extra, true)
	f.kmu.Unlock()
	f.state.Lock()
	lost := f.state.nexthopsLost
	f.state.nexthopsLost = false
	f.state.Unlock()
	if f.groups && (repaired > 0 || lost) {
		// Routes vanish with their nexthop objects (a netdev re-created):
		// rewrite the objects before the routes that use them.
		f.ensureNexthops()
	}
	f.flush()
	if f.groups {
		f.collectGroups()
	}
	if f.sys != nil {
		if err := f.applySysctls(); err != nil {
			f.Counters.Errors.Add(1)
			f.log.Error("reconcile", "err", err)
		}
	}
}

// collectGroups deletes the nexthop groups no installed route uses any more
// (left behind as sessions came up one by one).
func (f *FIB) collectGroups() {
	f.kmu.Lock()
	defer f.kmu.Unlock()
	f.state.Lock()
	used := map[uint32]bool{}
	for _, r := range f.state.installed {
		used[r.NexthopID] = true
	}
	var unused []uint32
	for o, id := range f.state.groupID {
		if !used[id] {
			unused = append(unused, id)
			delete(f.state.groupID, o)
			delete(f.state.groupIn, id)
		}
	}
	f.collectProfiles()
	for id := range f.state.orphans {
		if !used[id] {
			unused = append(unused, id)
			delete(f.state.orphans, id)
		}
	}
	f.state.Unlock()
	if len(unused) == 0 {
		return
	}
	if err := f.kernel.DeleteNexthops(unused); err != nil {
		f.Counters.Errors.Add(1)
		f.log.Error("delete unused nexthop groups", "err", err)
	}
}

// ensureNexthops (re)writes the blackhole and per-path nexthop objects and
// marks every group for rewriting.
func (f *FIB) ensureNexthops() {
	f.kmu.Lock()
	defer f.kmu.Unlock()
	if err := f.kernel.ReplaceNexthop(nhBlackhole, "", netip.Addr{}); err != nil {
		f.Counters.Errors.Add(1)
		f.log.Error("nexthop blackhole", "err", err)
	}
	f.state.Lock()
	paths := append([]Path(nil), f.state.paths...)
	f.state.Unlock()
	for i, p := range paths {
		if p.Name == "" {
			continue // a free slot
		}
		if err := f.kernel.ReplaceNexthop(nhPathBase+uint32(i), p.Link, p.Gateway); err != nil {
			f.Counters.Errors.Add(1)
			f.log.Error("nexthop for path", "path", p.Name, "err", err)
		}
	}
	f.state.Lock()
	f.state.groupIn = map[uint32][]uint32{}
	f.state.dirtyGroups = true
	f.state.Unlock()
}

// removeAll deletes every route of the FIB's protocol in its table, then
// its nexthop objects. The fail-closed routes stay (installed first, should
// any be missing) unless fail closed is off.
func (f *FIB) removeAll() {
	f.kmu.Lock()
	defer f.kmu.Unlock()
	f.state.Lock()
	on := f.state.fcOn
	f.state.Unlock()
	if on {
		f.syncFailClosed()
	}
	routes, err := f.kernel.List()
	if err != nil {
		f.log.Error("shutdown: list kernel routes", "err", err)
	} else {
		f.apply(routes, true)
	}
	if f.groups {
		f.state.Lock()
		ids := make([]uint32, 0, len(f.state.groupID)+len(f.state.paths)+1)
		for _, id := range f.state.groupID {
			ids = append(ids, id)
		}
		for id := range f.state.orphans {
			ids = append(ids, id)
		}
		for i, p := range f.state.paths {
			if p.Name != "" {
				ids = append(ids, nhPathBase+uint32(i))
			}
		}
		f.state.Unlock()
		ids = append(ids, nhBlackhole)
		if err := f.kernel.DeleteNexthops(ids); err != nil {
			f.log.Error("shutdown: delete nexthop objects", "err", err)
		}
	}
	f.state.Lock()
	f.state.installed = map[netip.Prefix]Route{}
	kept := len(f.state.fcIn)
	f.state.Unlock()
	if !on {
		f.removeFailClosed()
		kept = 0
	}
	f.log.Info("removed cgwd's routes", "routes", len(routes), "fail_closed_kept", kept)
}

// Active returns, for each path, whether it carries traffic for at least one
// prefix right now.
func (f *FIB) Active() map[string]bool {
	f.state.Lock()
	defer f.state.Unlock()
	var on uint64
	for _, o := range f.offers() {
		on |= f.selection(o)
	}
	out := map[string]bool{}
	for i, p := range f.state.paths {
		if p.Name != "" {
			out[p.Name] = on&(1<<i) != 0
		}
	}
	return out
}

// offers lists the distinct offers of the known prefixes (with groups: of
// the groups installed routes use, not those awaiting collection).
// Called with f.state held.
func (f *FIB) offers() []offer {
	if f.groups {
		used := map[uint32]bool{}
		for _, r := range f.state.installed {
			used[r.NexthopID] = true
		}
		out := make([]offer, 0, len(f.state.groupID))
		for o, id := range f.state.groupID {
			if used[id] {
				out = append(out, o)
			}
		}
		return out
	}
	seen := map[offer]bool{}
	var out []offer
	for prefix := range f.state.cands {
		o, _ := f.offerOf(prefix)
		if !seen[o] {
			seen[o] = true
			out = append(out, o)
		}
	}
	return out
}

// Installed returns how many prefixes each path carries traffic for.
func (f *FIB) Installed() map[string]int {
	f.state.Lock()
	defer f.state.Unlock()
	count := map[uint64]int{}
	for prefix := range f.state.installed {
		if o, ok := f.offerOf(prefix); ok {
			count[f.selection(o)]++
		}
	}
	out := map[string]int{}
	for i, p := range f.state.paths {
		if p.Name == "" {
			continue
		}
		n := 0
		for sel, c := range count {
			if sel&(1<<i) != 0 {
				n += c
			}
		}
		out[p.Name] = n
	}
	return out
}
