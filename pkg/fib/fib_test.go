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
	mu     sync.Mutex
	routes map[netip.Prefix]Route
	fail   bool
}

func newFakeKernel(rs ...Route) *fakeKernel {
	k := &fakeKernel{routes: map[netip.Prefix]Route{}}
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

func (k *fakeKernel) Replace(r Route) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail {
		return errors.New("injected failure")
	}
	k.routes[r.Prefix] = r
	return nil
}

func (k *fakeKernel) Delete(r Route) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.routes, r.Prefix)
	return nil
}

func (k *fakeKernel) get(p netip.Prefix) (Route, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	r, ok := k.routes[p]
	return r, ok
}

var (
	vpc  = netip.MustParsePrefix("10.200.0.0/16")
	dxGw = netip.MustParseAddr("169.254.255.1")
	t1Gw = netip.MustParseAddr("169.254.10.1")
	t2Gw = netip.MustParseAddr("169.254.11.1")

	paths = []Path{{Name: "dx1", Link: "dx0", Rank: 0}, {Name: "cgw-t1", Link: "cgw-t1", Rank: 1}, {Name: "cgw-t2", Link: "cgw-t2", Rank: 2}}
)

// start runs a FIB over k with a long reconcile interval, so that only what a
// test triggers happens.
func start(t *testing.T, k Kernel, stale time.Duration) (*FIB, context.CancelFunc, chan error) {
	t.Helper()
	f, err := New(Config{Table: 254, Protocol: 200, ReconcileInterval: time.Hour, StaleTime: stale, Paths: paths, Kernel: k})
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
	waitRoute(t, k, vpc, Route{vpc, "cgw-t2", t2Gw}, true)
	f.Add(vpc, "cgw-t1", t1Gw)
	waitRoute(t, k, vpc, Route{vpc, "cgw-t1", t1Gw}, true)
	f.Add(vpc, "dx1", dxGw)
	waitRoute(t, k, vpc, Route{vpc, "dx0", dxGw}, true)

	f.Remove(vpc, "dx1") // DX withdraws: back to tunnel 1
	waitRoute(t, k, vpc, Route{vpc, "cgw-t1", t1Gw}, true)
	f.SetUsable("cgw-t1", false) // tunnel 1 unhealthy: tunnel 2
	waitRoute(t, k, vpc, Route{vpc, "cgw-t2", t2Gw}, true)
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
	waitRoute(t, k, vpc, Route{vpc, "dx0", dxGw}, true)

	_ = k.Delete(Route{Prefix: vpc}) // deleted by hand
	unwanted := Route{netip.MustParsePrefix("10.99.0.0/16"), "dx0", dxGw}
	_ = k.Replace(unwanted) // a route of our protocol nobody asked for
	f.reconcile()
	waitRoute(t, k, vpc, Route{vpc, "dx0", dxGw}, true)
	waitRoute(t, k, unwanted.Prefix, Route{}, false)
}

func TestAdoptsRoutesOnRestartWithoutFlap(t *testing.T) {
	old := Route{vpc, "dx0", dxGw}
	gone := Route{netip.MustParsePrefix("10.98.0.0/16"), "dx0", dxGw}
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
	waitRoute(t, k, vpc, Route{vpc, "cgw-t1", t1Gw}, true)
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
	waitRoute(t, k, vpc, Route{vpc, "dx0", dxGw}, true)
}
