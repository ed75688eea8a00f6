package fib

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// fakeKernel is an in-memory routing table of one protocol.
type fakeKernel struct {
	mu       sync.Mutex
	routes   map[netip.Prefix]Route
	fail     bool
	groups   bool
	nexthops map[uint32]Route // single nexthops: Link and Gateway
	members  map[uint32][]uint32
	replaces int                   // group replaces
	closed   map[netip.Prefix]bool // fail-closed routes
}

func newFakeKernel(rs ...Route) *fakeKernel {
	k := &fakeKernel{routes: map[netip.Prefix]Route{}, nexthops: map[uint32]Route{}, members: map[uint32][]uint32{}, closed: map[netip.Prefix]bool{}}
	for _, r := range rs {
		k.routes[r.Prefix] = r
	}
	return k
}

func (k *fakeKernel) List() ([]Route, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]Route, 0, len(k.routes))
	for _, r := range k.routes {
		out = append(out, r)
	}
	return out, nil
}

func (k *fakeKernel) Replace(rs []Route) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail {
		return errors.New("injected failure")
	}
	for _, r := range rs {
		if r.NexthopID != 0 && len(k.members[r.NexthopID]) == 0 {
			return errors.New("no such nexthop group")
		}
		k.routes[r.Prefix] = r
	}
	return nil
}

func (k *fakeKernel) Delete(rs []Route) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, r := range rs {
		delete(k.routes, r.Prefix)
	}
	return nil
}

func (k *fakeKernel) NexthopObjects() bool { return k.groups }

func (k *fakeKernel) ReplaceNexthop(id uint32, link string, gw netip.Addr) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.nexthops[id] = Route{Link: link, Gateway: gw}
	return nil
}

func (k *fakeKernel) ReplaceGroup(id uint32, members []uint32) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, m := range members {
		if _, ok := k.nexthops[m]; !ok {
			return errors.New("no such nexthop")
		}
	}
	k.members[id] = members
	k.replaces++
	return nil
}

func (k *fakeKernel) Groups() ([]uint32, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var ids []uint32
	for id, m := range k.members {
		if len(m) > 0 {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func (k *fakeKernel) DeleteNexthops(ids []uint32) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, id := range ids {
		delete(k.nexthops, id)
		delete(k.members, id)
	}
	return nil
}

// get returns prefix's route resolved to where packets go: a route via a
// group is reported via its first member (Link ""+Gateway invalid: blackhole).
func (k *fakeKernel) get(p netip.Prefix) (Route, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.getLocked(p)
}

func (k *fakeKernel) getLocked(p netip.Prefix) (Route, bool) {
	r, ok := k.routes[p]
	if ok && r.NexthopID != 0 {
		m := k.members[r.NexthopID]
		nh := k.nexthops[m[0]]
		r = Route{Prefix: p, Link: nh.Link, Gateway: nh.Gateway}
	}
	return r, ok
}

var (
	vpc  = netip.MustParsePrefix("10.200.0.0/16")
	dxGw = netip.MustParseAddr("169.254.255.1")
	t1Gw = netip.MustParseAddr("169.254.10.1")
	t2Gw = netip.MustParseAddr("169.254.11.1")

	paths = []Path{{Name: "dx1", Link: "dx0", Gateway: dxGw, Rank: 0}, {Name: "cgw-t1", Link: "cgw-t1", Gateway: t1Gw, Rank: 1}, {Name: "cgw-t2", Link: "cgw-t2", Gateway: t2Gw, Rank: 2}}
)

// start runs a FIB over k with a long reconcile interval, so that only what a
// test triggers happens.
func start(t *testing.T, k Kernel, stale time.Duration) (*FIB, context.CancelFunc, chan error) {
	t.Helper()
	return startWith(t, Config{Table: 254, Protocol: 200, ReconcileInterval: time.Hour, StaleTime: stale, Paths: paths, Kernel: k})
}

// startWith runs a FIB with cfg until the returned function is called.
func startWith(t *testing.T, cfg Config) (*FIB, context.CancelFunc, chan error) {
	t.Helper()
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	return f, cancel, done
}

// waitRoute polls the fake kernel until prefix has want (ok=false: absent).
func waitRoute(t *testing.T, k *fakeKernel, p netip.Prefix, want Route, ok bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, has := k.get(p)
		if has == ok && (!ok || got == want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: kernel has %v (present %v), want %v (present %v)", p, got, has, want, ok)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPrefersDXThenTunnelOrder(t *testing.T) {
	k := newFakeKernel()
	f, cancel, done := start(t, k, 0)
	defer func() { cancel(); <-done }()

	f.Add(vpc, "cgw-t2", t2Gw)
	waitRoute(t, k, vpc, Route{Prefix: vpc, Link: "cgw-t2", Gateway: t2Gw}, true)
	f.Add(vpc, "cgw-t1", t1Gw)
	waitRoute(t, k, vpc, Route{Prefix: vpc, Link: "cgw-t1", Gateway: t1Gw}, true)
	f.Add(vpc, "dx1", dxGw)
	waitRoute(t, k, vpc, Route{Prefix: vpc, Link: "dx0", Gateway: dxGw}, true)

	f.Remove(vpc, "dx1") // DX withdraws: back to tunnel 1
	waitRoute(t, k, vpc, Route{Prefix: vpc, Link: "cgw-t1", Gateway: t1Gw}, true)
	f.SetUsable("cgw-t1", false) // tunnel 1 unhealthy: tunnel 2
	waitRoute(t, k, vpc, Route{Prefix: vpc, Link: "cgw-t2", Gateway: t2Gw}, true)
	f.RemovePath("cgw-t2") // last session lost: no route
	waitRoute(t, k, vpc, Route{}, false)
	if got := f.Counters.Errors.Load(); got != 0 {
		t.Errorf("errors = %d", got)
	}
}

func TestReconcileRepairsDriftAndKeepsOthers(t *testing.T) {
	k := newFakeKernel()
	f, cancel, done := start(t, k, 0)
	defer func() { cancel(); <-done }()
	f.Add(vpc, "dx1", dxGw)
	waitRoute(t, k, vpc, Route{Prefix: vpc, Link: "dx0", Gateway: dxGw}, true)

	_ = k.Delete([]Route{{Prefix: vpc}}) // deleted by hand
	unwanted := Route{Prefix: netip.MustParsePrefix("10.99.0.0/16"), Link: "dx0", Gateway: dxGw}
	_ = k.Replace([]Route{unwanted}) // a route of our protocol nobody asked for
	f.reconcile()
	waitRoute(t, k, vpc, Route{Prefix: vpc, Link: "dx0", Gateway: dxGw}, true)
	waitRoute(t, k, unwanted.Prefix, Route{}, false)
}

func TestAdoptsRoutesOnRestartWithoutFlap(t *testing.T) {
	old := Route{Prefix: vpc, Link: "dx0", Gateway: dxGw}
	gone := Route{Prefix: netip.MustParsePrefix("10.98.0.0/16"), Link: "dx0", Gateway: dxGw}
	k := newFakeKernel(old, gone)
	f, cancel, done := start(t, k, 50*time.Millisecond)
	defer func() { cancel(); <-done }()

	f.Add(vpc, "dx1", dxGw) // re-learned, identical: nothing to do
	f.reconcile()
	if _, ok := k.get(gone.Prefix); !ok {
		t.Fatal("a stale route was removed before its stale time")
	}
	// After the stale time, the route nobody re-learned goes; the other stays.
	waitUntil := time.Now().Add(5 * time.Second)
	for {
		f.reconcile()
		if _, ok := k.get(gone.Prefix); !ok {
			break
		}
		if time.Now().After(waitUntil) {
			t.Fatal("stale route never removed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitRoute(t, k, vpc, old, true)
	if got := f.Counters.Programmed.Load(); got != 1 {
		t.Errorf("kernel operations = %d, want 1 (only the stale delete)", got)
	}
}

func TestStopRemovesAllOwnRoutes(t *testing.T) {
	k := newFakeKernel()
	f, cancel, done := start(t, k, 0)
	f.Add(vpc, "cgw-t1", t1Gw)
	waitRoute(t, k, vpc, Route{Prefix: vpc, Link: "cgw-t1", Gateway: t1Gw}, true)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if rs, _ := k.List(); len(rs) != 0 {
		t.Fatalf("routes left after stop: %v", rs)
	}
}

func TestFailedReplaceIsCountedAndRetried(t *testing.T) {
	k := newFakeKernel()
	k.fail = true
	f, cancel, done := start(t, k, 0)
	defer func() { cancel(); <-done }()
	f.Add(vpc, "dx1", dxGw)
	recoverAfterFailure(t, f, k)
	waitRoute(t, k, vpc, Route{Prefix: vpc, Link: "dx0", Gateway: dxGw}, true)
}

// recoverAfterFailure waits until f counted a kernel error, lets the kernel
// work again and reconciles.
func recoverAfterFailure(t *testing.T, f *FIB, k *fakeKernel) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for f.Counters.Errors.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("failure not counted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	k.mu.Lock()
	k.fail = false
	k.mu.Unlock()
	f.reconcile()
}

func TestGroupModeFailoverIsOneGroupReplace(t *testing.T) {
	k := newFakeKernel()
	k.groups = true
	f, cancel, done := start(t, k, 0)
	defer func() { cancel(); <-done }()
	const n = 1000
	var prefixes []netip.Prefix
	for i := 0; i < n; i++ {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{20, byte(i >> 8), byte(i), 0}), 24)
		prefixes = append(prefixes, p)
		for _, path := range []string{"dx1", "cgw-t1", "cgw-t2"} {
			f.Add(p, path, netip.Addr{})
		}
	}
	for _, p := range prefixes {
		waitRoute(t, k, p, Route{Prefix: p, Link: "dx0", Gateway: dxGw}, true)
	}
	if act := f.Active(); !act["dx1"] || act["cgw-t1"] || act["cgw-t2"] {
		t.Errorf("active = %v, want only dx1 (sets seen while paths came up are not in use)", act)
	}
	f.reconcile() // collects the groups of the sets seen while paths were added one by one
	k.mu.Lock()
	before := k.replaces
	groupsLeft := 0
	for id := range k.members {
		if id >= nhGroupBase {
			groupsLeft++
		}
	}
	k.mu.Unlock()
	if groupsLeft != 1 {
		t.Errorf("%d groups in the kernel, want 1 (one path set)", groupsLeft)
	}
	ops := f.Counters.Programmed.Load()

	f.SetUsable("dx1", false) // returns once the kernel follows
	for _, p := range prefixes {
		if r, _ := k.get(p); r.Link != "cgw-t1" {
			t.Fatalf("%s still via %s after DX went unusable", p, r.Link)
		}
	}
	k.mu.Lock()
	replaces := k.replaces - before
	k.mu.Unlock()
	if replaces != 1 {
		t.Errorf("group replaces = %d, want 1", replaces)
	}
	if got := f.Counters.Programmed.Load() - ops; got != 0 {
		t.Errorf("%d route rewrites on failover, want 0", got)
	}
	if act := f.Active(); !act["cgw-t1"] || act["dx1"] || act["cgw-t2"] {
		t.Errorf("active = %v, want only cgw-t1", act)
	}
	f.SetUsable("cgw-t1", false)
	f.SetUsable("cgw-t2", false)
	r, ok := k.get(prefixes[0])
	if !ok || r.Link != "" || r.Gateway.IsValid() {
		t.Errorf("no usable path: route %v (present %v), want blackhole", r, ok)
	}
	f.SetUsable("dx1", true)
	if r, _ := k.get(prefixes[0]); r.Link != "dx0" {
		t.Errorf("DX back: via %s", r.Link)
	}
}

func TestECMPSelectsEveryUsableTunnelOfEqualRank(t *testing.T) {
	k := newFakeKernel()
	k.groups = true
	ecmp := []Path{{Name: "cgw-t1", Link: "cgw-t1", Gateway: t1Gw, Rank: 1}, {Name: "cgw-t2", Link: "cgw-t2", Gateway: t2Gw, Rank: 1}}
	f, err := New(Config{Table: 254, Protocol: 200, ReconcileInterval: time.Hour, Paths: ecmp, Kernel: k})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() { cancel(); <-done }()
	f.Add(vpc, "cgw-t1", t1Gw)
	f.Add(vpc, "cgw-t2", t2Gw)
	waitRoute(t, k, vpc, Route{Prefix: vpc, Link: "cgw-t1", Gateway: t1Gw}, true)
	// The two Adds may be programmed one at a time: the route can point at
	// tunnel 1's group first, then at the ECMP group.
	var id uint32
	deadline := time.Now().Add(5 * time.Second)
	for {
		k.mu.Lock()
		id = k.routes[vpc].NexthopID
		n := len(k.members[id])
		k.mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ECMP group has %d members, want 2", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.SetUsable("cgw-t1", false)
	k.mu.Lock()
	if m := k.members[id]; len(m) != 1 || k.nexthops[m[0]].Link != "cgw-t2" {
		t.Errorf("after tunnel 1 failed, group = %v", m)
	}
	k.mu.Unlock()
}

func TestRestartAdoptsGroupsAndCollectsThemOnceUnused(t *testing.T) {
	k := newFakeKernel()
	k.groups = true
	// A previous run left a route on its group 0x63771005 (DX).
	k.nexthops[nhPathBase] = Route{Link: "dx0", Gateway: dxGw}
	old := uint32(nhGroupBase + 5)
	k.members[old] = []uint32{nhPathBase}
	k.routes[vpc] = Route{Prefix: vpc, NexthopID: old}

	f, cancel, done := start(t, k, time.Hour)
	defer func() { cancel(); <-done }()
	if r, ok := k.get(vpc); !ok || r.Link != "dx0" {
		t.Fatalf("adopted route lost at start: %v %v", r, ok)
	}
	f.Add(vpc, "dx1", dxGw) // re-learned: moves to a group of this run
	deadline := time.Now().Add(5 * time.Second)
	for {
		k.mu.Lock()
		id := k.routes[vpc].NexthopID
		k.mu.Unlock()
		if id != old && id != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("route never moved to a group of this run")
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.reconcile()
	k.mu.Lock()
	_, left := k.members[old]
	k.mu.Unlock()
	if left {
		t.Error("the previous run's group was not collected once unused")
	}
	if r, _ := k.get(vpc); r.Link != "dx0" {
		t.Errorf("route via %s, want dx0", r.Link)
	}
}

// The kernel deletes a nexthop object when its link loses carrier (DX link
// down). When the path comes back, its group is written with the object
// made again, at once, not a reconcile later.
func TestPathBackAfterLinkLossRewritesItsNexthop(t *testing.T) {
	k := newFakeKernel()
	k.groups = true
	f, cancel, done := start(t, k, 0)
	defer func() { cancel(); <-done }()
	f.Add(vpc, "dx1", dxGw)
	f.Add(vpc, "cgw-t1", t1Gw)
	waitRoute(t, k, vpc, Route{Prefix: vpc, Link: "dx0", Gateway: dxGw}, true)
	f.SetUsable("dx1", false)
	if r, _ := k.get(vpc); r.Link != "cgw-t1" {
		t.Fatalf("DX unusable: via %s, want cgw-t1", r.Link)
	}
	k.mu.Lock()
	delete(k.nexthops, nhPathBase) // dx0 lost carrier: the kernel flushed DX's nexthop
	k.mu.Unlock()
	errs := f.Counters.Errors.Load()
	f.SetUsable("dx1", true) // returns once the kernel follows
	if r, _ := k.get(vpc); r.Link != "dx0" {
		t.Errorf("DX back: via %s, want dx0", r.Link)
	}
	if got := f.Counters.Errors.Load() - errs; got != 0 {
		t.Errorf("%d kernel errors, want 0", got)
	}
}
