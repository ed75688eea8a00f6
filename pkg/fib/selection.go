package fib

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// Attrs are the BGP attributes of one path's route to a prefix that rank
// it against the other paths' routes to the same prefix, in the order of
// BGP's decision process (RFC 4271 9.1.2.2) after local preference: the
// shorter AS path, then the lower origin, then the lower MED. The zero
// value ties with itself (a path with no attributes, e.g. a static route).
type Attrs struct {
	ASPathLen int
	Origin    uint8 // 0 IGP, 1 EGP, 2 incomplete
	MED       uint32
}

// How paths are ordered for a prefix, best first (selection):
//
//  1. Preference, higher first: the path's class (AWS's order: DX, then a
//     static VPN, then a dynamic VPN) or the operator's override; BGP's
//     local preference carries the same number, so gobgp agrees.
//  2. The attributes of the path's route to the prefix (Attrs).
//  3. With FollowAWS on the path, one AWS sends on before one it does not.
//  4. Rank, lower first (the configured order: tunnel 1, then tunnel 2).
//
// Paths equal on every step share the prefix (ECMP).
type order struct {
	pref   int
	attrs  Attrs
	notAWS bool
	rank   int
}

// compare is negative when a is better than b, 0 when they tie.
func (a order) compare(b order) int {
	switch {
	case a.pref != b.pref:
		return cmpInt(b.pref, a.pref)
	case a.attrs.ASPathLen != b.attrs.ASPathLen:
		return cmpInt(a.attrs.ASPathLen, b.attrs.ASPathLen)
	case a.attrs.Origin != b.attrs.Origin:
		return cmpInt(int(a.attrs.Origin), int(b.attrs.Origin))
	case a.attrs.MED != b.attrs.MED:
		if a.attrs.MED < b.attrs.MED {
			return -1
		}
		return 1
	case a.notAWS != b.notAWS:
		if b.notAWS {
			return -1
		}
		return 1
	}
	return cmpInt(a.rank, b.rank)
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// offer is what the FIB knows of a prefix for selection: the paths that
// offer it and the profile of their attributes. Prefixes with the same
// offer share a nexthop group.
type offer struct {
	set  uint64
	prof uint32 // 0: every path's attributes are zero
}

// profiles interns the per-slot attributes of prefixes: there are few
// distinct ones (AWS sends the same attributes for most prefixes of a
// session), so a prefix holds a small ID instead of a slice.
type profiles struct {
	byKey map[string]uint32
	attrs map[uint32][]Attrs // by ID, indexed by path slot
	next  uint32
	// steps remembers with's answers: a full table arriving asks the same
	// few questions 100,000 times.
	steps map[step]uint32
}

type step struct {
	from uint32
	slot int
	a    Attrs
}

func newProfiles() profiles {
	return profiles{byKey: map[string]uint32{}, attrs: map[uint32][]Attrs{}, next: 1, steps: map[step]uint32{}}
}

// with returns the ID of profile id with slot i's attributes set to a.
func (ps *profiles) with(id uint32, i int, a Attrs) uint32 {
	st := step{id, i, a}
	if got, ok := ps.steps[st]; ok {
		return got
	}
	got := ps.intern(id, i, a)
	ps.steps[st] = got
	return got
}

func (ps *profiles) intern(id uint32, i int, a Attrs) uint32 {
	cur := ps.attrs[id]
	if i < len(cur) && cur[i] == a || i >= len(cur) && a == (Attrs{}) {
		return id
	}
	n := len(cur)
	if i >= n {
		n = i + 1
	}
	next := make([]Attrs, n)
	copy(next, cur)
	next[i] = a
	for len(next) > 0 && next[len(next)-1] == (Attrs{}) {
		next = next[:len(next)-1]
	}
	if len(next) == 0 {
		return 0
	}
	key := profileKey(next)
	if got, ok := ps.byKey[key]; ok {
		return got
	}
	for ps.next == 0 || ps.attrs[ps.next] != nil {
		ps.next++ // 0 is the empty profile; skip IDs still in use after a wrap
	}
	got := ps.next
	ps.next++
	ps.byKey[key], ps.attrs[got] = got, next
	return got
}

// get returns slot i's attributes in profile id.
func (ps *profiles) get(id uint32, i int) Attrs {
	if a := ps.attrs[id]; i < len(a) {
		return a[i]
	}
	return Attrs{}
}

// keep forgets every profile not in used.
func (ps *profiles) keep(used map[uint32]bool) {
	clear(ps.steps)
	for id, a := range ps.attrs {
		if !used[id] {
			delete(ps.attrs, id)
			delete(ps.byKey, profileKey(a))
		}
	}
}

func profileKey(as []Attrs) string {
	b := make([]byte, 0, len(as)*12)
	for _, a := range as {
		b = binary.BigEndian.AppendUint32(b, uint32(a.ASPathLen))
		b = append(b, a.Origin)
		b = binary.BigEndian.AppendUint32(b, a.MED)
	}
	return string(b)
}

// offerOf is prefix's offer (ok false: no path offers it). Called with
// f.state held.
func (f *FIB) offerOf(prefix netip.Prefix) (offer, bool) {
	set, ok := f.state.cands[prefix]
	return offer{set, f.state.prof[prefix]}, ok
}

// setAttrsLocked records slot i's attributes for prefix. Called with
// f.state held.
func (f *FIB) setAttrsLocked(prefix netip.Prefix, i int, a Attrs) {
	id := f.state.profiles.with(f.state.prof[prefix], i, a)
	if id == 0 {
		delete(f.state.prof, prefix)
	} else {
		f.state.prof[prefix] = id
	}
}

// collectProfiles forgets the attribute profiles no prefix uses. Called
// with f.state held.
func (f *FIB) collectProfiles() {
	used := map[uint32]bool{}
	for _, id := range f.state.prof {
		used[id] = true
	}
	for o := range f.state.groupID {
		used[o.prof] = true // a group awaiting collection still selects by it
	}
	f.state.profiles.keep(used)
}

// selection is the set of paths that carry traffic for prefixes with offer
// o: the usable ones that come first in the order above. Called with
// f.state held.
func (f *FIB) selection(o offer) uint64 {
	avail := o.set & f.state.usable
	var best order
	sel := uint64(0)
	for avail != 0 {
		i := bits.TrailingZeros64(avail)
		avail &^= 1 << i
		p := &f.state.paths[i]
		k := order{pref: p.Preference, attrs: f.state.profiles.get(o.prof, i), rank: p.Rank}
		k.notAWS = p.FollowAWS && f.state.awsSends&(1<<i) == 0
		switch c := k.compare(best); {
		case sel == 0 || c < 0:
			best, sel = k, 1<<i
		case c == 0:
			sel |= 1 << i
		}
	}
	return sel
}

// SetAWSSends tells the FIB whether AWS is sending traffic on a path (its
// receive counters rise): among paths whose attributes tie, those with
// FollowAWS on prefer the ones AWS sends on, so that traffic goes out where
// it comes in. It returns once the kernel follows.
func (f *FIB) SetAWSSends(path string, sends bool) {
	f.state.Lock()
	i, ok := f.state.pathIdx[path]
	if !ok || (f.state.awsSends&(1<<i) != 0) == sends {
		f.state.Unlock()
		return
	}
	if sends {
		f.state.awsSends |= 1 << i
	} else {
		f.state.awsSends &^= 1 << i
	}
	follow := f.state.paths[i].FollowAWS
	if follow {
		f.markPathDirty(i)
	}
	f.state.Unlock()
	if follow {
		f.flush()
	}
}
