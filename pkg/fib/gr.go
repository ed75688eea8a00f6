package fib

import (
	"math/bits"
	"net/netip"
	"time"
)

// Graceful restart support: a FIB stopped for a restart of cgwd leaves its
// routes, nexthop objects and kernel settings in place for the next run to
// adopt; the next run keeps what it adopted until the BGP peers have sent
// everything again (End-of-RIB from every path) or the stale time passes,
// whichever comes first, and then removes what nobody re-learned.

// Adopted is how many routes New found in the kernel from a previous run
// and still keeps without anyone having offered them again; right after
// New, every route the previous run left.
func (f *FIB) Adopted() int {
	f.state.Lock()
	defer f.state.Unlock()
	return len(f.state.stale)
}

// KeepOnStop makes Run leave the routes, nexthop objects and kernel
// settings in place when its context ends (cgwd stopping for a restart).
func (f *FIB) KeepOnStop() { f.keep.Store(true) }

// EndOfRIB records that path's BGP peer has sent everything it has (its
// End-of-RIB). Once every path has, the adopted routes nobody re-learned
// are removed at once rather than at the end of the stale time.
func (f *FIB) EndOfRIB(path string) {
	f.state.Lock()
	i, ok := f.state.pathIdx[path]
	if !ok {
		f.state.Unlock()
		return
	}
	f.state.eor |= 1 << i
	var all uint64
	for j, p := range f.state.paths {
		if p.Name != "" {
			all |= 1 << j
		}
	}
	n := 0
	if f.state.eor&all == all && len(f.state.stale) > 0 {
		now := time.Now()
		for prefix, until := range f.state.stale {
			if now.Before(until) {
				f.state.stale[prefix] = now
				f.state.dirty[prefix] = struct{}{}
				n++
			}
		}
	}
	f.state.Unlock()
	if n > 0 {
		f.log.Info("every path sent end-of-rib: adopted routes not re-learned are removed", "paths", bits.OnesCount64(all), "stale", n)
		f.poke()
	}
}

// keepAdoptedLocked reports whether an adopted route, offered again, stays
// as the previous run left it: while none of the paths offering it is
// usable yet (after a restart BGP often comes back before BFD), the new
// route would drop its traffic (a blackhole group), and with it, through
// reverse-path filtering, the traffic coming back from AWS, while the
// adopted route still forwards. It is replaced once a path is usable
// (SetUsable marks adopted routes dirty) or the stale time is over. Called
// with f.state held.
func (f *FIB) keepAdoptedLocked(prefix netip.Prefix, now time.Time) bool {
	until, adopted := f.state.stale[prefix]
	return adopted && now.Before(until) && f.state.cands[prefix]&f.state.usable == 0
}

// adoptedDirtyLocked marks the adopted routes still in place for
// re-evaluation (a path became usable or not). Called with f.state held.
func (f *FIB) adoptedDirtyLocked() {
	for prefix := range f.state.stale {
		f.state.dirty[prefix] = struct{}{}
	}
}
