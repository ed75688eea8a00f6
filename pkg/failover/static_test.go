package failover

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// startStatic starts a manager with DX and the two tunnels of a static
// connection, in the FIB's order (DX first, as AWS prefers it).
func startStatic(t *testing.T, hold time.Duration) (*Manager, *fakeFIB) {
	t.Helper()
	fib := &fakeFIB{order: []string{"dx1", "cgw-t1", "cgw-t2"}, usable: map[string]bool{}}
	m := New(Config{HoldDown: hold, Paths: []PathConfig{
		{Name: "dx1", Kind: "dx", ResetBGPOnDown: true},
		{Name: "cgw-t1", Kind: "tunnel", VPN: "vpn1", Static: true},
		{Name: "cgw-t2", Kind: "tunnel", VPN: "vpn1", Static: true},
	}})
	// cgw-t1's tunnel came up before failover started (tunnels start
	// first): the state is kept and applied at Start.
	m.TunnelState("cgw-t1", true)
	ctx, cancel := context.WithCancel(context.Background())
	if err := m.Start(ctx, fib, &fakeBGP{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-m.Done() })
	return m, fib
}

// TestStaticPathUsableWithoutBGP: a static connection's tunnel is usable
// once its tunnel is up, with no BGP session ever, and fails over to the
// other tunnel and to DX as a BGP path does, counted with cause tunnel-down.
func TestStaticPathUsableWithoutBGP(t *testing.T) {
	m, fib := startStatic(t, 0)
	waitFor(t, "cgw-t1 usable: its tunnel was up before Start", func() bool { return fib.is("cgw-t1") })
	if fib.is("cgw-t2") {
		t.Fatal("cgw-t2 usable before its tunnel is up")
	}
	m.BGPState("cgw-t2", true) // BGP has no say over a static path
	m.TunnelState("cgw-t2", true)
	waitFor(t, "cgw-t2 usable once its tunnel is up", func() bool { return fib.is("cgw-t2") })

	m.TunnelState("cgw-t1", false)
	waitFor(t, "cgw-t1 unusable once its tunnel is down", func() bool { return !fib.is("cgw-t1") })
	if !fib.Active()["cgw-t2"] {
		t.Errorf("active %v, want cgw-t2", fib.Active())
	}
	// The manager counts the failover just after it programs the FIB.
	waitFor(t, "failover cgw-t1 -> cgw-t2 by tunnel-down counted once", func() bool {
		v, ok := failoverCount(t, m, "cgw-t1", "cgw-t2", "tunnel-down")
		return ok && v == 1
	})
	m.BGPState("dx1", true)
	waitFor(t, "DX usable", func() bool { return fib.is("dx1") })
	if !fib.Active()["dx1"] {
		t.Errorf("active %v, want dx1", fib.Active())
	}
	m.BGPState("cgw-t2", false) // still no say
	// Events are handled in order: once an admin-up of a path that is
	// not down returns, the BGP event before it has been handled.
	if err := m.SetAdminDown(context.Background(), "dx1", false); err != nil {
		t.Fatal(err)
	}
	if !fib.is("cgw-t2") {
		t.Error("a BGP down event took a static path out of use")
	}

	st := m.Status()
	if st[0].Routing != "bgp" || st[1].Routing != "static" || st[1].TunnelUp || st[1].BGPUp || st[1].Health != "tunnel-only" || !st[2].TunnelUp {
		t.Errorf("status %+v", st)
	}
	if n := testutil.ToFloat64(m.info.WithLabelValues("vpn1", "cgw-t2", "tunnel", "static")); n != 1 {
		t.Errorf("cgwd_path_info for cgw-t2 = %v", n)
	}
}

// TestStaticPathHealthAndHoldDown: a static path needs its health check
// too, and a recovered one waits out the hold-down like any path.
func TestStaticPathHealthAndHoldDown(t *testing.T) {
	fib := &fakeFIB{order: []string{"cgw-t1"}, usable: map[string]bool{}}
	m := New(Config{HoldDown: 50 * time.Millisecond, Paths: []PathConfig{{Name: "cgw-t1", Kind: "tunnel", Static: true}}})
	m.paths["cgw-t1"].healthy = false // as with a probe not yet passed
	ctx, cancel := context.WithCancel(context.Background())
	if err := m.Start(ctx, fib, &fakeBGP{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-m.Done() })
	m.TunnelState("cgw-t1", true)
	waitFor(t, "events handled", func() bool { return len(m.ev) == 0 })
	time.Sleep(10 * time.Millisecond)
	if fib.is("cgw-t1") {
		t.Fatal("usable with its tunnel up but its health check not passed")
	}
	up := true
	m.send(event{path: "cgw-t1", health: &up, at: time.Now(), reason: "probe-up"})
	waitFor(t, "usable once the check passes", func() bool { return fib.is("cgw-t1") })
	m.TunnelState("cgw-t1", false)
	waitFor(t, "unusable when the tunnel goes down", func() bool { return !fib.is("cgw-t1") })
	m.TunnelState("cgw-t1", true)
	waitFor(t, "usable again after the hold-down", func() bool { return fib.is("cgw-t1") })
}

// TestReconfigureAddsStaticPathWithItsTunnelState: a reload starts a new
// tunnel before failover knows its path; the state reported in between is
// applied when the path is added.
func TestReconfigureAddsStaticPathWithItsTunnelState(t *testing.T) {
	m, fib := startStatic(t, 0)
	waitFor(t, "cgw-t1 usable", func() bool { return fib.is("cgw-t1") })
	m.TunnelState("cgw-t3", true)
	fib.mu.Lock()
	fib.order = append(fib.order, "cgw-t3")
	fib.mu.Unlock()
	if _, err := m.Reconfigure(Config{Paths: []PathConfig{
		{Name: "dx1", Kind: "dx", ResetBGPOnDown: true},
		{Name: "cgw-t1", Kind: "tunnel", VPN: "vpn1", Static: true},
		{Name: "cgw-t2", Kind: "tunnel", VPN: "vpn1", Static: true},
		{Name: "cgw-t3", Kind: "tunnel", VPN: "vpn2", Static: true},
	}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the added static path usable", func() bool { return fib.is("cgw-t3") })
}
