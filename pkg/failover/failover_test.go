package failover

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/cgwd/cgwd/pkg/bfd"
	"github.com/cgwd/cgwd/pkg/probe"
)

// fakeFIB records usable paths; the active path is the first usable in
// order (of those offering routes, when withdrawn is set).
type fakeFIB struct {
	mu        sync.Mutex
	order     []string
	usable    map[string]bool
	withdrawn map[string]bool // paths whose routes BGP withdrew (fib.RemovePath)
	calls     int
}

// removePath withdraws a path's routes, as the daemon does when its BGP
// session goes down: traffic moves without failover.
func (f *fakeFIB) removePath(p string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.withdrawn == nil {
		f.withdrawn = map[string]bool{}
	}
	f.withdrawn[p] = true
}

func (f *fakeFIB) SetUsable(p string, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.usable[p] = ok
	f.calls++
}

func (f *fakeFIB) Active() map[string]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]bool{}
	for _, p := range f.order {
		if f.usable[p] && !f.withdrawn[p] {
			out[p] = true
			break
		}
	}
	return out
}

func (f *fakeFIB) is(p string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.usable[p]
}

type fakeBGP struct {
	mu    sync.Mutex
	reset []string
	// hold, when set, keeps ShutdownPeer (and so failover's loop) busy
	// until it is closed.
	hold chan struct{}
}

func (b *fakeBGP) ShutdownPeer(_ context.Context, name, _ string) error {
	b.mu.Lock()
	b.reset = append(b.reset, name)
	hold := b.hold
	b.mu.Unlock()
	if hold != nil {
		<-hold
	}
	return nil
}

func (b *fakeBGP) resets() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.reset)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func start(t *testing.T, hold time.Duration) (*Manager, *fakeFIB, *fakeBGP) {
	t.Helper()
	fib := &fakeFIB{order: []string{"dx1", "cgw-t1"}, usable: map[string]bool{}}
	bgp := &fakeBGP{}
	m := New(Config{HoldDown: hold, Paths: []PathConfig{
		{Name: "dx1", Kind: "dx", ResetBGPOnDown: true},
		{Name: "cgw-t1", Kind: "tunnel", VPN: "vpn1"},
	}})
	ctx, cancel := context.WithCancel(context.Background())
	err := m.Start(ctx, fib, bgp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-m.Done() })
	return m, fib, bgp
}

func TestPathUsableNeedsBGPAndHealth(t *testing.T) {
	m, fib, _ := start(t, 0)
	m.BGPState("cgw-t1", true)
	waitFor(t, "tunnel usable once BGP is up", func() bool { return fib.is("cgw-t1") })
	m.BGPState("dx1", true)
	waitFor(t, "DX usable", func() bool { return fib.is("dx1") })

	up, down := true, false
	m.send(event{path: "dx1", health: &down, at: time.Now(), reason: "bfd-down"})
	waitFor(t, "DX unusable after BFD down", func() bool { return !fib.is("dx1") })
	waitFor(t, "failover counted", func() bool {
		return testutil.ToFloat64(m.failovers.WithLabelValues("dx1", "cgw-t1", "bfd-down")) == 1
	})
	m.send(event{path: "dx1", health: &up, at: time.Now(), reason: "bfd-up"})
	waitFor(t, "DX usable again (no hold-down)", func() bool { return fib.is("dx1") })
}

func TestBFDDownTearsDXSessionDown(t *testing.T) {
	m, fib, bgp := start(t, 0)
	m.BGPState("dx1", true)
	waitFor(t, "DX usable", func() bool { return fib.is("dx1") })
	down := false
	m.send(event{path: "dx1", health: &down, at: time.Now(), reason: "bfd-down"})
	waitFor(t, "DX BGP reset", func() bool {
		bgp.mu.Lock()
		defer bgp.mu.Unlock()
		return len(bgp.reset) == 1 && bgp.reset[0] == "dx1"
	})
}

func TestHoldDownDelaysRecoveryAndAbsorbsFlaps(t *testing.T) {
	m, fib, _ := start(t, 200*time.Millisecond)
	m.BGPState("dx1", true)
	waitFor(t, "DX usable at first (no hold-down on first use)", func() bool { return fib.is("dx1") })
	up, down := true, false
	for i := 0; i < 5; i++ { // a flapping link
		m.send(event{path: "dx1", health: &down, at: time.Now(), reason: "bfd-down"})
		m.send(event{path: "dx1", health: &up, at: time.Now(), reason: "bfd-up"})
	}
	waitFor(t, "events handled", func() bool { return len(m.ev) == 0 })
	if st := m.Status()[0]; st.Usable || st.HoldUntil.IsZero() {
		t.Fatalf("flapping path usable=%v hold_until=%v, want held down", st.Usable, st.HoldUntil)
	}
	if fib.is("dx1") {
		t.Fatal("flapping DX carries traffic during hold-down")
	}
	waitFor(t, "DX usable after the hold-down", func() bool { return fib.is("dx1") })
}

// failoverCount reads one failover series; ok is false if it does not exist.
func failoverCount(t *testing.T, m *Manager, from, to, reason string) (v float64, ok bool) {
	t.Helper()
	ch := make(chan prometheus.Metric, 1024)
	m.failovers.Collect(ch)
	close(ch)
	for pm := range ch {
		var d dto.Metric
		if err := pm.Write(&d); err != nil {
			t.Fatal(err)
		}
		l := map[string]string{}
		for _, lp := range d.GetLabel() {
			l[lp.GetName()] = lp.GetValue()
		}
		if l["from"] == from && l["to"] == to && l["reason"] == reason {
			return d.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

func TestFailoverSeriesExistAtZeroFromStart(t *testing.T) {
	m := New(Config{HoldDown: time.Second, Paths: []PathConfig{
		{Name: "dx1", Kind: "dx", BFD: &bfd.Config{}},
		{Name: "cgw-t1", Kind: "tunnel", VPN: "vpn1", Probe: &probe.Config{}},
	}})
	for _, s := range [][3]string{
		{"dx1", "cgw-t1", "bfd-Down"}, {"dx1", "cgw-t1", "bgp-down"}, {"dx1", "none", "bfd-Down"},
		{"cgw-t1", "dx1", "recovered"}, {"cgw-t1", "dx1", "bfd-Up"}, {"none", "dx1", "bgp-up"},
		{"cgw-t1", "none", "probe-down"}, {"dx1", "cgw-t1", "probe-up"},
	} {
		if v, ok := failoverCount(t, m, s[0], s[1], s[2]); !ok || v != 0 {
			t.Errorf("cgwd_failovers_total%v = %v (exists %v), want 0 before any change", s, v, ok)
		}
	}
	if _, ok := failoverCount(t, m, "cgw-t1", "dx1", "probe-up"); ok {
		t.Error("a probe reason pre-created for dx1, which has no prober")
	}
}

func TestReloadedPathGetsFailoverSeries(t *testing.T) {
	m, _, _ := start(t, 0)
	if _, err := m.Reconfigure(Config{Paths: []PathConfig{
		{Name: "dx1", Kind: "dx", ResetBGPOnDown: true},
		{Name: "cgw-t1", Kind: "tunnel", VPN: "vpn1"},
		{Name: "cgw-t2", Kind: "tunnel", VPN: "vpn1"},
	}}); err != nil {
		t.Fatal(err)
	}
	if v, ok := failoverCount(t, m, "cgw-t1", "cgw-t2", "bgp-down"); !ok || v != 0 {
		t.Errorf("series for the added path = %v (exists %v), want 0", v, ok)
	}
}

func TestStartupSelectionIsNotAFailover(t *testing.T) {
	m, fib, _ := start(t, 0)
	m.BGPState("cgw-t1", true)
	waitFor(t, "tunnel usable", func() bool { return fib.is("cgw-t1") })
	m.BGPState("dx1", true)
	waitFor(t, "switch to DX counted", func() bool {
		v, _ := failoverCount(t, m, "cgw-t1", "dx1", "bgp-up")
		return v == 1
	})
	if v, _ := failoverCount(t, m, "none", "cgw-t1", "bgp-up"); v != 0 {
		t.Errorf("start-up selection counted as a failover: none -> cgw-t1 = %v", v)
	}
	// Every path down, then one back: an outage's end is a failover.
	m.BGPState("dx1", false)
	m.BGPState("cgw-t1", false)
	waitFor(t, "all down", func() bool { return !fib.is("cgw-t1") && !fib.is("dx1") })
	m.BGPState("cgw-t1", true)
	waitFor(t, "recovery from none counted", func() bool {
		v, _ := failoverCount(t, m, "none", "cgw-t1", "bgp-up")
		return v == 1
	})
}

// The lab's tunnel-1 drop: BIRD's BFD tears its session down and the
// NOTIFICATION arrives before cgwd's BFD verdict; the daemon reports the
// session down and withdraws its routes at once, which moves traffic to
// tunnel 2 before failover handles the report. The move is still counted,
// from tunnel 1.
func TestFailoverCountedWhenWithdrawalMovesTrafficFirst(t *testing.T) {
	fib := &fakeFIB{order: []string{"dx1", "cgw-t1", "cgw-t2"}, usable: map[string]bool{}}
	bgp := &fakeBGP{}
	m := New(Config{Paths: []PathConfig{
		{Name: "dx1", Kind: "dx", ResetBGPOnDown: true},
		{Name: "cgw-t1", Kind: "tunnel", VPN: "vpn1"},
		{Name: "cgw-t2", Kind: "tunnel", VPN: "vpn1"},
	}})
	ctx, cancel := context.WithCancel(context.Background())
	err := m.Start(ctx, fib, bgp)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); <-m.Done() }()
	for _, p := range []string{"dx1", "cgw-t1", "cgw-t2"} {
		m.BGPState(p, true)
		waitFor(t, p+" usable", func() bool { return fib.is(p) })
	}
	// DX goes down by BFD; failover's loop then stays busy tearing the DX
	// session down while tunnel 1's session goes down and is withdrawn.
	bgp.mu.Lock()
	bgp.hold = make(chan struct{})
	bgp.mu.Unlock()
	down := false
	m.send(event{path: "dx1", health: &down, at: time.Now(), reason: "bfd-Down"})
	waitFor(t, "DX session being reset", func() bool { return bgp.resets() == 1 })
	m.BGPState("cgw-t1", false)
	fib.removePath("cgw-t1")
	close(bgp.hold)
	waitFor(t, "failover cgw-t1 -> cgw-t2 by bgp-down counted (traffic moved by the withdrawal before failover looked)", func() bool {
		v, _ := failoverCount(t, m, "cgw-t1", "cgw-t2", "bgp-down")
		return v == 1
	})
	if v, _ := failoverCount(t, m, "dx1", "cgw-t1", "bfd-Down"); v != 1 {
		t.Errorf("dx1 -> cgw-t1 by bfd-Down = %v, want 1", v)
	}
}
