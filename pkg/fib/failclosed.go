package fib

import (
	"net/netip"
	"sort"
	"time"
)

// FailClosedMetric is the metric of the fail-closed routes: the worst a
// route can practically have, so that cgwd's own routes (metric 0) and any
// route an operator adds for the same prefix win over them.
const FailClosedMetric = 4000000000

// Fail closed: with Config.FailClosed, the FIB keeps an unreachable route
// (same table and protocol, metric FailClosedMetric) for every AWS prefix it
// knows: the configured AWSPrefixes and every prefix an AWS peer offered.
// While a real route exists it wins (metric 0); when it goes (no usable
// path, BGP down, cgwd stopped) the prefix stays unreachable instead of
// falling back to the default route, which leads to the internet in clear
// text. The routes stay across a clean stop and are adopted by the next
// start: they are the memory of which prefixes were AWS's. A prefix
// contained in another fail-closed prefix needs no route of its own.
//
// A learned prefix is forgotten (its fail-closed route removed) only when
// nobody offers it any more although every path that offered it has been
// usable for StaleTime: AWS withdrew it while the network was fine. While a
// path that offered it is down, it is kept, however long that takes.

// fcAll is the mask of "offered by an unknown set of paths" (adopted).
const fcAll = 0

// learnLocked records that the paths in mask offer prefix (fcAll: adopted
// from the kernel). Called with f.state held.
func (f *FIB) learnLocked(prefix netip.Prefix, mask uint64) {
	m, known := f.state.fcKnown[prefix]
	f.state.fcKnown[prefix] = m | mask
	if !known {
		f.state.fcCheck[prefix] = struct{}{}
	}
}

// fcWanted reports whether prefix should be fail-closed. A default route
// (a TGW may offer one) never is: below the internet's default route it
// would refuse nothing, and taken as covering every prefix it would leave
// them all without a fail-closed route of their own. Called with f.state held.
func (f *FIB) fcWanted(p netip.Prefix) bool {
	if !f.state.fcOn || p.Bits() == 0 {
		return false
	}
	if f.state.fcStatic[p] {
		return true
	}
	_, ok := f.state.fcKnown[p]
	return ok
}

// fcNeeded reports whether prefix needs a fail-closed route of its own:
// wanted, and not inside another wanted prefix. Called with f.state held.
func (f *FIB) fcNeeded(p netip.Prefix) bool {
	if !f.fcWanted(p) {
		return false
	}
	for b := p.Bits() - 1; b >= 0; b-- {
		if q, _ := p.Addr().Prefix(b); f.fcWanted(q) {
			return false
		}
	}
	return true
}

// syncFailClosed installs the fail-closed routes that are missing and
// removes those no longer needed. It is called with f.kmu held, after new
// real routes are installed (they carry traffic) and before any is removed,
// so that a prefix is never without either.
func (f *FIB) syncFailClosed() {
	f.state.Lock()
	var add, del []netip.Prefix
	if f.state.fcFull {
		f.state.fcFull = false
		clear(f.state.fcCheck)
		for p := range f.state.fcStatic {
			if !f.state.fcIn[p] && f.fcNeeded(p) {
				add = append(add, p)
			}
		}
		for p := range f.state.fcKnown {
			if !f.state.fcIn[p] && !f.state.fcStatic[p] && f.fcNeeded(p) {
				add = append(add, p)
			}
		}
		for p := range f.state.fcIn {
			if !f.fcNeeded(p) {
				del = append(del, p)
			}
		}
	} else {
		for p := range f.state.fcCheck {
			if !f.state.fcIn[p] && f.fcNeeded(p) {
				add = append(add, p)
			}
		}
		clear(f.state.fcCheck)
	}
	for _, p := range add {
		f.state.fcIn[p] = true
	}
	for _, p := range del {
		delete(f.state.fcIn, p)
	}
	f.state.Unlock()
	f.applyFailClosed(add, false)
	f.applyFailClosed(del, true)
}

// applyFailClosed writes a batch of fail-closed routes; on failure the next
// reconcile compares with the kernel and retries.
func (f *FIB) applyFailClosed(ps []netip.Prefix, del bool) {
	if len(ps) == 0 {
		return
	}
	var err error
	if del {
		err = f.kernel.DeleteFailClosed(ps)
	} else {
		err = f.kernel.ReplaceFailClosed(ps)
	}
	if err == nil {
		f.Counters.Programmed.Add(uint64(len(ps)))
		return
	}
	f.Counters.Errors.Add(1)
	f.log.Error("fail-closed route programming failed", "routes", len(ps), "delete", del, "err", err)
	f.state.Lock()
	for _, p := range ps {
		if del {
			f.state.fcIn[p] = true
		} else {
			delete(f.state.fcIn, p)
		}
	}
	f.state.fcFull = true
	f.state.Unlock()
}

// reconcileFailClosed compares the fail-closed routes with the kernel's,
// forgets the learned prefixes AWS withdrew while every path that offered
// them stayed usable, and marks the whole set for a sync.
func (f *FIB) reconcileFailClosed(now time.Time) {
	f.kmu.Lock() // no sync in flight: the listing is what the kernel has
	defer f.kmu.Unlock()
	inKernel, err := f.kernel.FailClosed()
	if err != nil {
		f.Counters.Errors.Add(1)
		f.log.Error("reconcile: list fail-closed routes", "err", err)
		return
	}
	f.state.Lock()
	defer f.state.Unlock()
	clear(f.state.fcIn)
	for _, p := range inKernel {
		f.state.fcIn[p] = true
	}
	var all uint64
	for i, p := range f.state.paths {
		if p.Name != "" {
			all |= 1 << i
		}
	}
	var forgot []netip.Prefix
	for p, mask := range f.state.fcKnown {
		if _, offered := f.state.cands[p]; offered {
			continue
		}
		if mask == fcAll {
			mask = all
		}
		if mask != 0 && f.settled(mask, now) {
			delete(f.state.fcKnown, p)
			forgot = append(forgot, p)
		}
	}
	if len(forgot) > 0 {
		f.log.Info("fail closed: AWS no longer offers these prefixes over paths that stayed up, forgetting them", "prefixes", len(forgot))
	}
	f.state.fcFull = true
}

// settled reports whether every path in mask has been usable for at least
// StaleTime. Called with f.state held.
func (f *FIB) settled(mask uint64, now time.Time) bool {
	for i := range f.state.paths {
		if mask&(1<<i) == 0 {
			continue
		}
		since := f.state.usableSince[i]
		if f.state.paths[i].Name == "" || f.state.usable&(1<<i) == 0 || since.IsZero() || now.Sub(since) < f.cfg.StaleTime {
			return false
		}
	}
	return true
}

// SetFailClosed turns fail-closed routes on or off and sets the configured
// AWS prefixes (a config reload); it returns once the kernel follows.
func (f *FIB) SetFailClosed(on bool, awsPrefixes []netip.Prefix) {
	f.state.Lock()
	f.setFailClosedLocked(on, awsPrefixes)
	f.state.Unlock()
	f.flush()
}

func (f *FIB) setFailClosedLocked(on bool, awsPrefixes []netip.Prefix) {
	f.state.fcOn = on
	f.state.fcStatic = map[netip.Prefix]bool{}
	for _, p := range awsPrefixes {
		f.state.fcStatic[p.Masked()] = true
	}
	f.state.fcFull = true
}

// FailClosed returns the prefixes that have a fail-closed route in the
// kernel, sorted.
func (f *FIB) FailClosed() []netip.Prefix {
	f.state.Lock()
	out := make([]netip.Prefix, 0, len(f.state.fcIn))
	for p := range f.state.fcIn {
		out = append(out, p)
	}
	f.state.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if c := out[i].Addr().Compare(out[j].Addr()); c != 0 {
			return c < 0
		}
		return out[i].Bits() < out[j].Bits()
	})
	return out
}

// removeFailClosed deletes every fail-closed route of the FIB's protocol in
// its table (fail closed turned off). Called with f.kmu held.
func (f *FIB) removeFailClosed() int {
	ps, err := f.kernel.FailClosed()
	if err != nil {
		f.log.Error("shutdown: list fail-closed routes", "err", err)
		return 0
	}
	if len(ps) == 0 {
		return 0
	}
	if err := f.kernel.DeleteFailClosed(ps); err != nil {
		f.log.Error("shutdown: delete fail-closed routes", "err", err)
		return 0
	}
	f.state.Lock()
	clear(f.state.fcIn)
	f.state.Unlock()
	return len(ps)
}
