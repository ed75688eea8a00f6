package fib

import "fmt"

// PathChanges says what SetPaths did, by path name.
type PathChanges struct {
	Added, Removed, Changed []string
}

// SetPaths replaces the set of paths while the FIB runs (a config reload).
// Paths are matched by name. A path that is kept keeps its slot and its
// nexthop object, so routes over it are not touched unless its link, gateway
// or rank changed; a removed path's prefixes are withdrawn (they move to the
// remaining paths) and its nexthop object is deleted once no group uses it;
// an added path starts unusable until failover says otherwise. It returns
// once the kernel follows.
func (f *FIB) SetPaths(paths []Path) (PathChanges, error) {
	var ch PathChanges
	want := map[string]Path{}
	for _, p := range paths {
		if p.Name == "" {
			return ch, fmt.Errorf("fib: path with no name")
		}
		if _, dup := want[p.Name]; dup {
			return ch, fmt.Errorf("fib: path %s given twice", p.Name)
		}
		want[p.Name] = p
	}

	f.kmu.Lock()
	f.state.Lock()
	// Slots: the free ones now, plus room to grow (removed paths' slots are
	// reusable only from the next change on).
	room := 64 - len(f.state.paths)
	for _, p := range f.state.paths {
		if p.Name == "" {
			room++
		}
	}
	for name := range want {
		if _, ok := f.state.pathIdx[name]; !ok {
			room--
		}
	}
	if room < 0 {
		f.state.Unlock()
		f.kmu.Unlock()
		return ch, fmt.Errorf("fib: %d paths, at most 64 slots (paths removed by this change free theirs for the next)", len(want))
	}
	var removedSlots, rewrite []int
	for i, p := range f.state.paths {
		if p.Name == "" {
			continue
		}
		np, keep := want[p.Name]
		if !keep {
			ch.Removed = append(ch.Removed, p.Name)
			f.forgetLocked(i)
			f.state.usable &^= 1 << i
			f.state.awsSends &^= 1 << i
			delete(f.state.pathIdx, p.Name)
			f.state.paths[i] = Path{}
			removedSlots = append(removedSlots, i)
			continue
		}
		if np == p {
			continue
		}
		ch.Changed = append(ch.Changed, p.Name)
		if np.Link != p.Link || np.Gateway != p.Gateway {
			rewrite = append(rewrite, i)
		}
		f.state.paths[i] = np
		f.markPathDirty(i)
	}
	for _, np := range paths {
		if _, ok := f.state.pathIdx[np.Name]; ok {
			continue
		}
		i := f.freeSlot(removedSlots)
		if i == len(f.state.paths) {
			f.state.paths = append(f.state.paths, np)
		} else {
			f.state.paths[i] = np
		}
		f.state.pathIdx[np.Name] = i
		f.state.usable &^= 1 << i // failover marks it usable once it is healthy
		ch.Added = append(ch.Added, np.Name)
		rewrite = append(rewrite, i)
	}
	if f.groups {
		f.state.dirtyGroups = true
	}
	slots := make([]Path, len(f.state.paths))
	copy(slots, f.state.paths)
	f.state.Unlock()

	// New and changed paths' nexthop objects first, so that groups and routes
	// may point at them.
	if f.groups {
		for _, i := range rewrite {
			if err := f.kernel.ReplaceNexthop(nhPathBase+uint32(i), slots[i].Link, slots[i].Gateway); err != nil {
				f.Counters.Errors.Add(1)
				f.log.Error("nexthop for path", "path", slots[i].Name, "err", err)
			}
		}
	}
	f.kmu.Unlock()
	f.flush()
	if f.groups && len(removedSlots) > 0 {
		// The flush rewrote every group without the removed paths: their
		// nexthop objects are unused now.
		f.kmu.Lock()
		ids := make([]uint32, len(removedSlots))
		for k, i := range removedSlots {
			ids[k] = nhPathBase + uint32(i)
		}
		if err := f.kernel.DeleteNexthops(ids); err != nil {
			f.Counters.Errors.Add(1)
			f.log.Error("delete nexthops of removed paths", "err", err)
		}
		f.kmu.Unlock()
	}
	if len(ch.Added)+len(ch.Removed)+len(ch.Changed) > 0 {
		f.log.Info("paths changed", "added", ch.Added, "removed", ch.Removed, "changed", ch.Changed)
	}
	if f.sys != nil {
		// New links get loose rp_filter, equal ranks the L4 hash.
		if err := f.applySysctls(); err != nil {
			return ch, err
		}
	}
	return ch, nil
}

// freeSlot is the lowest free slot not freed by this very change (a removed
// path's nexthop object is deleted after the flush, so its slot cannot be
// reused before then), or len(f.state.paths) for a new one. Called with f.state held.
func (f *FIB) freeSlot(justFreed []int) int {
	for i, p := range f.state.paths {
		if p.Name != "" {
			continue
		}
		reused := false
		for _, j := range justFreed {
			reused = reused || i == j
		}
		if !reused {
			return i
		}
	}
	return len(f.state.paths)
}

// markPathDirty makes the next flush recompute whatever path i's change
// affects: the groups (ranks), or without groups every route over it.
// Called with f.state held.
func (f *FIB) markPathDirty(i int) {
	if f.groups {
		f.state.dirtyGroups = true
		return
	}
	for prefix, set := range f.state.cands {
		if set&(1<<i) != 0 {
			f.state.dirty[prefix] = struct{}{}
		}
	}
}

// Paths returns the FIB's paths in slot order.
func (f *FIB) Paths() []Path {
	f.state.Lock()
	defer f.state.Unlock()
	var out []Path
	for _, p := range f.state.paths {
		if p.Name != "" {
			out = append(out, p)
		}
	}
	return out
}
