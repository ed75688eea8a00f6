package fib

import (
	"math/bits"
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
