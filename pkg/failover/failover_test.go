package failover

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeFIB records usable paths; the active path is the first usable in order.
type fakeFIB struct {
	mu     sync.Mutex
	order  []string
	usable map[string]bool
	calls  int
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
		if f.usable[p] {
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
}

func (b *fakeBGP) ShutdownPeer(_ context.Context, name, _ string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reset = append(b.reset, name)
	return nil
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
	done, err := m.Start(ctx, fib, bgp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-done })
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
