package fib

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"sort"
	"testing"
	"time"
)

func (k *fakeKernel) FailClosed() ([]netip.Prefix, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []netip.Prefix
	for p := range k.closed {
		out = append(out, p)
	}
	return out, nil
}

func (k *fakeKernel) ReplaceFailClosed(ps []netip.Prefix) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail {
		return errors.New("injected failure")
	}
	for _, p := range ps {
		k.closed[p] = true
	}
	return nil
}

func (k *fakeKernel) DeleteFailClosed(ps []netip.Prefix) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, p := range ps {
		delete(k.closed, p)
	}
	return nil
}

// lookup is where the kernel sends a packet to a: the longest matching
// prefix, a real route before a fail-closed one; "default" when none
// matches (the default route to the internet).
func (k *fakeKernel) lookup(a netip.Addr) string {
	for b := 32; b >= 0; b-- {
		p, _ := a.Prefix(b)
		if _, ok := k.routes[p]; ok {
			r, _ := k.getLocked(p)
			if r.Link == "" {
				return "blackhole"
			}
			return r.Link
		}
		if k.closed[p] {
			return "unreachable"
		}
	}
	return "default"
}

func (k *fakeKernel) closedSet() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for p := range k.closed {
		out = append(out, p.String())
	}
	sort.Strings(out)
	return out
}

var (
	vpcHost = netip.MustParseAddr("10.200.0.10")
	vpc2    = netip.MustParsePrefix("10.201.0.0/16")
	inVPC   = netip.MustParsePrefix("10.200.1.0/24")
)

// startFC runs a FIB with fail closed on and the given configured prefixes.
func startFC(t *testing.T, k *fakeKernel, stale time.Duration, static ...netip.Prefix) (*FIB, context.CancelFunc, chan error) {
	t.Helper()
	return startWith(t, Config{Table: 254, Protocol: 200, ReconcileInterval: time.Hour, StaleTime: stale, Paths: paths, Kernel: k, FailClosed: true, AWSPrefixes: static})
}

// waitClosed polls until the kernel's fail-closed routes are want.
func waitClosed(t *testing.T, k *fakeKernel, want ...string) {
	t.Helper()
	sort.Strings(want)
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := k.closedSet()
		if reflect.DeepEqual(got, want) || (len(got) == 0 && len(want) == 0) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("fail-closed routes %v, want %v", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (k *fakeKernel) lookupNow(a netip.Addr) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lookup(a)
}

func TestFailClosedCoversLearnedAndConfiguredPrefixes(t *testing.T) {
	k := newFakeKernel()
	f, cancel, done := startFC(t, k, time.Hour, vpc2)
	defer func() { cancel(); <-done }()
	waitClosed(t, k, "10.201.0.0/16") // configured: covered before BGP offers it

	f.Add(vpc, "cgw-t1", t1Gw)
	waitRoute(t, k, vpc, Route{Prefix: vpc, Link: "cgw-t1", Gateway: t1Gw}, true)
	waitClosed(t, k, "10.200.0.0/16", "10.201.0.0/16")
	if got := k.lookupNow(vpcHost); got != "cgw-t1" {
		t.Fatalf("10.200.0.10 goes to %s, want cgw-t1 (the real route wins)", got)
	}
	// A default route offered by AWS is not made unreachable, nor does it
	// stand for the prefixes inside it.
	f.Add(netip.MustParsePrefix("0.0.0.0/0"), "cgw-t1", t1Gw)
	f.reconcile()
	waitClosed(t, k, "10.200.0.0/16", "10.201.0.0/16")
	f.Remove(netip.MustParsePrefix("0.0.0.0/0"), "cgw-t1")
	// A prefix inside a fail-closed one needs no route of its own.
	f.Add(inVPC, "cgw-t1", t1Gw)
	waitRoute(t, k, inVPC, Route{Prefix: inVPC, Link: "cgw-t1", Gateway: t1Gw}, true)
	f.reconcile()
	waitClosed(t, k, "10.200.0.0/16", "10.201.0.0/16")

	f.RemovePath("cgw-t1") // the session is lost: the real routes go, the prefixes stay unreachable
	waitRoute(t, k, vpc, Route{}, false)
	waitRoute(t, k, inVPC, Route{}, false)
	for _, a := range []string{"10.200.0.10", "10.200.1.1", "10.201.0.1"} {
		if got := k.lookupNow(netip.MustParseAddr(a)); got != "unreachable" {
			t.Errorf("%s goes to %s with no path, want unreachable", a, got)
		}
	}
	f.reconcile() // paths that offered it are not usable for long: kept
	waitClosed(t, k, "10.200.0.0/16", "10.201.0.0/16")
	if got := f.FailClosed(); len(got) != 2 {
		t.Errorf("FailClosed() = %v", got)
	}
}

func TestFailClosedRoutesStayAcrossStopAndAreAdopted(t *testing.T) {
	k := newFakeKernel()
	k.groups = true
	f, cancel, done := startFC(t, k, time.Hour)
	f.Add(vpc, "dx1", dxGw)
	waitRoute(t, k, vpc, Route{Prefix: vpc, Link: "dx0", Gateway: dxGw}, true)
	waitClosed(t, k, "10.200.0.0/16")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if rs, _ := k.List(); len(rs) != 0 {
		t.Fatalf("real routes left after stop: %v", rs)
	}
	if len(k.nexthops)+len(k.members) != 0 {
		t.Fatalf("nexthop objects left after stop: %v %v", k.nexthops, k.members)
	}
	waitClosed(t, k, "10.200.0.0/16")
	if got := k.lookupNow(vpcHost); got != "unreachable" {
		t.Fatalf("while stopped 10.200.0.10 goes to %s, want unreachable", got)
	}

	// The next start adopts it: kept while no path is up and nobody offers the prefix.
	f, cancel, done = startFC(t, k, time.Hour)
	defer func() { cancel(); <-done }()
	f.reconcile()
	waitClosed(t, k, "10.200.0.0/16")
	if got := f.FailClosed(); len(got) != 1 || got[0] != vpc {
		t.Errorf("adopted: %v", got)
	}
	f.Add(vpc, "dx1", dxGw)
	waitRoute(t, k, vpc, Route{Prefix: vpc, Link: "dx0", Gateway: dxGw}, true)
	waitClosed(t, k, "10.200.0.0/16")
}

func TestFailClosedOffRemovesThemAndKeepsNothingAtStop(t *testing.T) {
	k := newFakeKernel()
	k.closed[vpc] = true // left by a run with fail closed on
	f, cancel, done := start(t, k, time.Hour)
	waitClosed(t, k)
	f.Add(vpc, "cgw-t1", t1Gw)
	waitRoute(t, k, vpc, Route{Prefix: vpc, Link: "cgw-t1", Gateway: t1Gw}, true)
	f.reconcile()
	waitClosed(t, k)
	cancel()
	<-done
	waitClosed(t, k)
	if rs, _ := k.List(); len(rs) != 0 {
		t.Fatalf("routes left after stop: %v", rs)
	}
	if got := k.lookupNow(vpcHost); got != "default" {
		t.Fatalf("with fail closed off 10.200.0.10 goes to %s after stop, want default", got)
	}
}

func TestFailClosedFollowsReload(t *testing.T) {
	k := newFakeKernel()
	f, cancel, done := startFC(t, k, time.Hour, vpc2)
	defer func() { cancel(); <-done }()
	f.Add(inVPC, "cgw-t1", t1Gw)
	waitClosed(t, k, "10.200.1.0/24", "10.201.0.0/16")

	// The VPC's whole CIDR configured: it covers the learned /24.
	f.SetFailClosed(true, []netip.Prefix{vpc, vpc2})
	waitClosed(t, k, "10.200.0.0/16", "10.201.0.0/16")
	// Both removed from the config: the learned /24 needs its own route again.
	f.SetFailClosed(true, nil)
	waitClosed(t, k, "10.200.1.0/24")
	f.SetFailClosed(false, []netip.Prefix{vpc2})
	waitClosed(t, k)
	f.SetFailClosed(true, []netip.Prefix{vpc2})
	waitClosed(t, k, "10.200.1.0/24", "10.201.0.0/16")
}

func TestFailClosedForgetsWhatAWSWithdrewOverLivePaths(t *testing.T) {
	k := newFakeKernel()
	f, cancel, done := startFC(t, k, 50*time.Millisecond, vpc2)
	defer func() { cancel(); <-done }()
	f.SetUsable("dx1", false)
	f.Add(vpc, "cgw-t1", t1Gw)
	f.Add(inVPC, "dx1", dxGw)
	waitClosed(t, k, "10.200.0.0/16", "10.201.0.0/16")
	f.Remove(vpc, "cgw-t1") // withdrawn by tunnel 1, which stays usable
	f.Remove(inVPC, "dx1")  // withdrawn while DX is down: kept
	f.Remove(vpc2, "dx1")   // never offered; configured: kept
	// Once tunnel 1 has been usable for the stale time (50 ms), the prefix
	// it withdrew is forgotten; the others stay.
	deadline := time.Now().Add(5 * time.Second)
	want := []string{"10.200.1.0/24", "10.201.0.0/16"}
	for !reflect.DeepEqual(k.closedSet(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("fail-closed routes %v: the withdrawn prefix was never forgotten", k.closedSet())
		}
		f.reconcile()
		time.Sleep(10 * time.Millisecond)
	}
	if got := k.lookupNow(vpcHost); got != "default" {
		t.Errorf("a prefix AWS withdrew over a live path goes to %s, want default", got)
	}
	if got := k.lookupNow(netip.MustParseAddr("10.200.1.1")); got != "unreachable" {
		t.Errorf("a prefix lost with its path goes to %s, want unreachable", got)
	}
}

func TestFailClosedRetriedAfterKernelError(t *testing.T) {
	k := newFakeKernel()
	k.fail = true
	f, cancel, done := startFC(t, k, time.Hour, vpc2)
	defer func() { cancel(); <-done }()
	recoverAfterFailure(t, f, k)
	waitClosed(t, k, "10.201.0.0/16")
}
