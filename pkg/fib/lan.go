package fib

// What the LAN side needs of routing: which AWS prefixes the FIB routes
// over a usable path and over which path (Carried, exported to the LAN
// peers), and the kernel routes back to the on-prem networks learned from
// them (LANRoutes).

import (
	"context"
	"fmt"
	"log/slog"
	"math/bits"
	"net/netip"
	"sync"
	"time"

	"github.com/cgwd/cgwd/pkg/fib/internal/nexthop"
)

// Carried returns every prefix the FIB routes over a usable path, with the
// name of the path that carries it (the first of several sharing it). A
// prefix offered only by unusable paths, or only adopted from a previous
// run, is not there.
func (f *FIB) Carried() map[netip.Prefix]string {
	f.state.Lock()
	defer f.state.Unlock()
	out := make(map[netip.Prefix]string, len(f.state.installed))
	for prefix := range f.state.installed {
		o, ok := f.offerOf(prefix)
		if !ok {
			continue
		}
		if sel := f.selection(o); sel != 0 {
			out[prefix] = f.state.paths[bits.TrailingZeros64(sel)].Name
		}
	}
	return out
}

// LANMetric is the metric of the routes LANRoutes installs: the FIB
// leaves routes of its protocol with this metric alone, and an operator's
// own route to the same prefix (metric 0) wins over them.
const LANMetric = 0x4c414e // "LAN"

// LANRoute is a route toward an on-prem network: via Gateway on Link.
type LANRoute struct {
	Prefix  netip.Prefix
	Link    string
	Gateway netip.Addr
}

// LANRoutes keeps the kernel routes toward the on-prem networks learned
// from LAN peers: protocol and table as the FIB's, metric LANMetric. Set
// gives the routes wanted; Run repairs drift every interval and removes
// them all when its context ends. Routes found at start-up are kept for
// the stale time unless Set wants them.
type LANRoutes struct {
	log             *slog.Logger
	table, protocol int
	interval, stale time.Duration

	mu      sync.Mutex // guards want, in and h
	h       *nexthop.Handle
	want    map[netip.Prefix]LANRoute
	in      map[netip.Prefix]nexthop.Route // what cgwd last wrote
	staleAt time.Time
	kick    chan struct{}
}

// NewLANRoutes opens netlink for the caller's network namespace.
func NewLANRoutes(table, protocol int, interval, stale time.Duration, log *slog.Logger) (*LANRoutes, error) {
	h, err := nexthop.Open()
	if err != nil {
		return nil, fmt.Errorf("lan routes: netlink: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	return &LANRoutes{
		log: log.With("component", "lan-routes"), table: table, protocol: protocol, interval: interval, stale: stale,
		h: h, want: map[netip.Prefix]LANRoute{}, in: map[netip.Prefix]nexthop.Route{}, kick: make(chan struct{}, 1),
	}, nil
}

// Set replaces the routes wanted; Run installs them at once.
func (l *LANRoutes) Set(routes []LANRoute) {
	want := make(map[netip.Prefix]LANRoute, len(routes))
	for _, r := range routes {
		want[r.Prefix] = r
	}
	l.mu.Lock()
	l.want = want
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// Run programs what Set asks for and repairs drift until ctx ends; then it
// removes every route it installed and closes netlink.
func (l *LANRoutes) Run(ctx context.Context) error {
	l.mu.Lock()
	l.staleAt = time.Now().Add(l.stale)
	l.mu.Unlock()
	tick := time.NewTicker(l.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			l.mu.Lock()
			defer l.mu.Unlock()
			l.want = nil
			l.syncLocked(true)
			return l.h.Close()
		case <-l.kick:
			l.mu.Lock()
			l.syncLocked(false)
			l.mu.Unlock()
		case <-tick.C:
			l.mu.Lock()
			l.syncLocked(true)
			l.mu.Unlock()
		}
	}
}

// syncLocked writes what is wanted and deletes what is not; with full, it
// reads the kernel first, so that drift (and leftovers, once the stale time
// is over) is repaired. Called with l.mu held.
func (l *LANRoutes) syncLocked(full bool) {
	if full {
		rs, err := l.h.ListRoutes(uint32(l.table), uint8(l.protocol))
		if err != nil {
			l.log.Error("list kernel routes", "err", err)
			return
		}
		in := map[netip.Prefix]nexthop.Route{}
		for _, r := range rs {
			if r.Priority == LANMetric {
				in[r.Dst] = r
			}
		}
		for p, r := range in {
			if _, ours := l.in[p]; !ours && time.Now().Before(l.staleAt) {
				continue // adopted from a previous run: kept for the stale time
			}
			if old, ok := l.in[p]; !ok || old.Gateway != r.Gateway || old.LinkIndex != r.LinkIndex {
				l.in[p] = r // differs from what cgwd wrote: rewritten or deleted below
			}
		}
		for p := range l.in {
			if _, ok := in[p]; !ok {
				delete(l.in, p) // deleted behind cgwd's back: written again below
			}
		}
	}
	var add, del []nexthop.Route
	for p, w := range l.want {
		idx, err := l.h.LinkIndex(w.Link)
		if err != nil {
			l.log.Error("route toward the LAN", "prefix", p, "link", w.Link, "err", err)
			continue
		}
		r := nexthop.Route{Dst: p, Gateway: w.Gateway, LinkIndex: idx, Table: uint32(l.table), Protocol: uint8(l.protocol), Priority: LANMetric}
		if old, ok := l.in[p]; !ok || old.Gateway != r.Gateway || old.LinkIndex != r.LinkIndex {
			add = append(add, r)
		}
	}
	for p, r := range l.in {
		if _, ok := l.want[p]; !ok {
			r.Gateway, r.LinkIndex, r.NexthopID = netip.Addr{}, 0, 0
			del = append(del, r)
		}
	}
	// One at a time: one bad route (a gateway not on the link) must not keep the others out.
	for _, r := range add {
		if err := l.h.ReplaceRoutes([]nexthop.Route{r}); err != nil {
			l.log.Error("route toward the LAN", "prefix", r.Dst, "via", r.Gateway, "err", err)
			continue
		}
		l.in[r.Dst] = r
	}
	for _, r := range del {
		if err := l.h.DeleteRoutes([]nexthop.Route{r}); err != nil {
			l.log.Error("remove route toward the LAN", "prefix", r.Dst, "err", err)
		}
		delete(l.in, r.Dst)
	}
	if len(add)+len(del) > 0 {
		l.log.Info("routes toward the LAN", "installed", len(add), "removed", len(del), "total", len(l.in))
	}
}
