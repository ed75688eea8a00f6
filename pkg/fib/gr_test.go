package fib

import (
	"net/netip"
	"testing"
	"time"
)

// A stop for a restart leaves routes, nexthop objects and the kernel
// settings cgwd changed (forwarding on) as they are, and the next FIB
// adopts the routes.
func TestKeepOnStopLeavesRoutesAndSettings(t *testing.T) {
	root, f, cancel, done := startOnBox(t, freshBox(), Config{Paths: paths, ManageForwarding: true})
	k := f.kernel.(*fakeKernel)
	f.Add(vpc, "dx1", dxGw)
	waitRoute(t, k, vpc, Route{Prefix: vpc, Link: "dx0", Gateway: dxGw}, true)
	f.KeepOnStop()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitRoute(t, k, vpc, Route{Prefix: vpc, Link: "dx0", Gateway: dxGw}, true)
	if ids, _ := k.Groups(); len(ids) == 0 {
		t.Error("nexthop groups removed")
	}
	checkSettings(t, "stopped for a restart", root, map[string]string{"net.ipv4.ip_forward": "1", "net.ipv4.conf.dx0.rp_filter": "2"})

	next, err := New(Config{Table: 254, Protocol: 200, ReconcileInterval: time.Hour, StaleTime: time.Hour, Paths: paths, Kernel: k})
	if err != nil {
		t.Fatal(err)
	}
	if got := next.Adopted(); got != 1 {
		t.Errorf("the next run adopted %d routes, want 1", got)
	}
}

// Adopted routes that nobody offers again are removed once every path's
// peer has sent End-of-RIB, long before the stale time; until then they
// stay.
func TestEndOfRIBFromEveryPathRemovesUnlearnedAdoptedRoutes(t *testing.T) {
	gone := Route{Prefix: netip.MustParsePrefix("10.98.0.0/16"), Link: "dx0", Gateway: dxGw}
	k := newFakeKernel(Route{Prefix: vpc, Link: "dx0", Gateway: dxGw}, gone)
	f, cancel, done := start(t, k, time.Hour)
	defer func() { cancel(); <-done }()
	if got := f.Adopted(); got != 2 {
		t.Fatalf("adopted %d, want 2", got)
	}
	f.Add(vpc, "dx1", dxGw)
	f.EndOfRIB("dx1")
	f.EndOfRIB("cgw-t1")
	f.EndOfRIB("nonesuch")
	f.flush()
	if _, ok := k.get(gone.Prefix); !ok {
		t.Fatal("an adopted route was removed before every path sent End-of-RIB")
	}
	f.EndOfRIB("cgw-t2")
	waitRoute(t, k, gone.Prefix, Route{}, false)
	waitRoute(t, k, vpc, Route{Prefix: vpc, Link: "dx0", Gateway: dxGw}, true)
}

// After a restart, a route offered again before any of its paths is usable
// (BGP back before BFD) keeps the previous run's nexthop group, which still
// forwards, instead of a blackhole group; it moves once a path is usable.
func TestAdoptedRouteKeptUntilAPathIsUsable(t *testing.T) {
	_, f, cancel, done := startOnBox(t, freshBox(), Config{Paths: paths})
	k := f.kernel.(*fakeKernel)
	f.Add(vpc, "dx1", dxGw)
	waitRoute(t, k, vpc, Route{Prefix: vpc, Link: "dx0", Gateway: dxGw}, true)
	f.KeepOnStop()
	cancel()
	<-done
	before, _ := k.getRaw(vpc)

	next, cancel2, done2 := startWith(t, Config{Table: 254, Protocol: 200, ReconcileInterval: time.Hour, StaleTime: time.Hour, Paths: paths, Kernel: k})
	defer func() { cancel2(); <-done2 }()
	for _, p := range paths {
		next.SetUsable(p.Name, false) // as failover starts
	}
	next.Add(vpc, "dx1", dxGw)
	next.flush()
	if got, _ := k.getRaw(vpc); got != before {
		t.Fatalf("route replaced by %+v before a path is usable, want the adopted %+v", got, before)
	}
	next.SetUsable("dx1", true)
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _ := k.getRaw(vpc)
		if got.NexthopID != before.NexthopID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the route never left the adopted group once DX was usable")
		}
		time.Sleep(5 * time.Millisecond)
	}
	waitRoute(t, k, vpc, Route{Prefix: vpc, Link: "dx0", Gateway: dxGw}, true)
}

// getRaw is p's route as in the kernel (its nexthop group, not resolved).
func (k *fakeKernel) getRaw(p netip.Prefix) (Route, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	r, ok := k.routes[p]
	return r, ok
}
