package drain

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

var (
	t0   = time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC)
	set  = Settings{QuietPeriod: 3 * time.Second, QuietPPS: 10, Timeout: time.Minute}
	dx   = Path{Name: "dx1", Kind: "dx", Link: "dx0", OwnPPS: 4}
	tun  = Path{Name: "cgw-t1", Kind: "tunnel", Link: "cgw-t1", OwnPPS: 2}
	both = []Path{dx, tun}
)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

func TestLimitAllowsOwnPackets(t *testing.T) {
	if got := set.Limit(dx); got != 16 {
		t.Errorf("limit for a path with 4 own packets/s = %v, want 10 + 1.5*4 = 16", got)
	}
}

// A path is quiet once it stays at or below its limit both ways; the drain
// is done when every path has been quiet for the quiet period.
func TestTrackerQuietAfterPeriod(t *testing.T) {
	c := map[string]Counters{"dx1": {1000, 1000}, "cgw-t1": {0, 0}}
	tr := NewTracker(set, both, at(0), c, nil)
	step := func(s int, dxRx, dxTx, tRx, tTx uint64) bool {
		t.Helper()
		c = map[string]Counters{"dx1": {c["dx1"].Rx + dxRx, c["dx1"].Tx + dxTx}, "cgw-t1": {c["cgw-t1"].Rx + tRx, c["cgw-t1"].Tx + tTx}}
		return tr.Observe(at(s), c, nil)
	}
	if step(1, 1000, 1000, 3, 3) {
		t.Fatal("done while dx1 carries 1000 packets/s")
	}
	if step(2, 5, 16, 3, 3) { // dx1 exactly at its limit one way: quiet
		t.Fatal("done before the quiet period")
	}
	if step(3, 5, 5, 3, 3) {
		t.Fatal("done before dx1 was quiet for 3s")
	}
	if !step(4, 5, 5, 3, 3) {
		t.Fatalf("not done after dx1 was quiet from 1s to 4s: %+v", tr.Paths())
	}
	ps := tr.Paths()
	if ps[0].RxPackets != 1015 || ps[0].TxPackets != 1026 || ps[0].QuietSince != at(1) || ps[1].QuietSince != at(0) {
		t.Errorf("dx1 = %+v, cgw-t1 = %+v", ps[0], ps[1])
	}
}

// Traffic coming back restarts a path's quiet period.
func TestTrackerTrafficRestartsQuiet(t *testing.T) {
	tr := NewTracker(set, []Path{tun}, at(0), map[string]Counters{"cgw-t1": {}}, nil)
	n := uint64(0)
	for s := 1; s <= 2; s++ {
		if tr.Observe(at(s), map[string]Counters{"cgw-t1": {n, n}}, nil) {
			t.Fatal("done early")
		}
	}
	n += 500 // one burst, one way
	if tr.Observe(at(3), map[string]Counters{"cgw-t1": {n, 0}}, nil) {
		t.Fatal("done although the path carried 500 packets/s")
	}
	if !tr.Paths()[0].QuietSince.IsZero() {
		t.Fatal("still quiet after a burst")
	}
	for s := 4; s <= 5; s++ {
		if tr.Observe(at(s), map[string]Counters{"cgw-t1": {n, 0}}, nil) {
			t.Fatalf("done at %ds, 2s after the burst", s)
		}
	}
	if !tr.Observe(at(6), map[string]Counters{"cgw-t1": {n, 0}}, nil) {
		t.Fatal("not done 3s after the burst")
	}
}

// A path whose netdev is gone is quiet; when it comes back its counters
// start from zero and count again.
func TestTrackerNetdevGoneAndBack(t *testing.T) {
	gone := map[string]error{"cgw-t1": errors.New("link not found")}
	tr := NewTracker(set, []Path{tun}, at(0), nil, gone)
	if tr.Observe(at(2), nil, gone) {
		t.Fatal("done before the quiet period")
	}
	if !tr.Observe(at(3), nil, gone) {
		t.Fatal("a missing netdev is not quiet")
	}
	if tr.Observe(at(4), map[string]Counters{"cgw-t1": {900, 900}}, nil) {
		t.Fatal("done although the re-made netdev carried 900 packets/s")
	}
	ps := tr.Paths()[0]
	if ps.RxPackets != 900 || ps.Error != "" || !ps.QuietSince.IsZero() {
		t.Errorf("after coming back: %+v", ps)
	}
	// A counter that goes back (netdev made again between samples) counts from zero.
	tr.Observe(at(5), map[string]Counters{"cgw-t1": {5, 5}}, nil)
	if ps := tr.Paths()[0]; ps.RxPackets != 905 || ps.RxPPS != 5 {
		t.Errorf("after a counter reset: %+v", ps)
	}
}

func TestTrackerTimedOut(t *testing.T) {
	tr := NewTracker(set, both, at(0), nil, nil)
	if tr.TimedOut(at(59)) || !tr.TimedOut(at(60)) {
		t.Error("timeout is not at one minute")
	}
	if tr.Observe(at(0), nil, nil) {
		t.Error("a sample at the start time ends the wait")
	}
}

// fakeCounters is a sampler whose counters the test moves.
type fakeCounters struct {
	mu sync.Mutex
	c  map[string]Counters
	on bool // traffic flows: every sample adds 1000 packets each way
}

func (f *fakeCounters) sample(paths []Path) (map[string]Counters, map[string]error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]Counters{}
	for _, p := range paths {
		c := f.c[p.Name]
		if f.on {
			c.Rx += 1000
			c.Tx += 1000
		}
		f.c[p.Name] = c
		out[p.Name] = c
	}
	return out, nil
}

func (f *fakeCounters) traffic(on bool) {
	f.mu.Lock()
	f.on = on
	f.mu.Unlock()
}

// clock advances one second each time it is read.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Second)
	return c.now
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// The state machine: active, draining while traffic flows, drained once it
// stops; undrain goes back to active; drain again restarts.
func TestControllerDrainUndrain(t *testing.T) {
	defer goleak.VerifyNone(t)
	f := &fakeCounters{c: map[string]Counters{}, on: true}
	c := NewController()
	c.Interval, c.Now = time.Millisecond, (&clock{now: t0}).Now
	if c.Drained() || c.Status().State != Active {
		t.Fatal("a new controller is not active")
	}
	st := c.Begin(context.Background(), set, both, f.sample, []string{"AWS: prepend"})
	if st.State != Draining || !c.Drained() || st.Changes[0] != "AWS: prepend" || len(st.Paths) != 2 {
		t.Fatalf("after Begin: %+v", st)
	}
	waitFor(t, "traffic seen", func() bool { return c.Status().Paths[0].RxPackets >= 2000 })
	if c.Status().State != Draining {
		t.Fatal("drained while traffic flows")
	}
	f.traffic(false)
	waitFor(t, "drained", func() bool { return c.Status().State == Drained })
	st = c.Status()
	if st.TimedOut || st.Done.IsZero() || st.Paths[0].QuietSince.IsZero() || !st.Drained() {
		t.Fatalf("drained: %+v", st)
	}
	// Draining a drained box changes nothing.
	if again := c.Begin(context.Background(), set, both, f.sample, nil); again.Done != st.Done || again.State != Drained {
		t.Fatalf("drain again: %+v", again)
	}
	c.Undrain()
	if st := c.Status(); st.State != Active || st.Drained() || !st.Since.IsZero() || len(st.Paths) != 0 {
		t.Fatalf("after undrain: %+v", st)
	}
	c.Close()
}

// A wait that times out leaves the box drained with TimedOut; draining
// again waits again; undrain during a wait ends it.
func TestControllerTimeoutAndUndrainDuringWait(t *testing.T) {
	defer goleak.VerifyNone(t)
	f := &fakeCounters{c: map[string]Counters{}, on: true}
	c := NewController()
	c.Interval, c.Now = time.Millisecond, (&clock{now: t0}).Now
	short := set
	short.Timeout = 5 * time.Second
	since := c.Begin(context.Background(), short, both, f.sample, nil).Since
	waitFor(t, "timed out", func() bool { return c.Status().State == Drained })
	if st := c.Status(); !st.TimedOut || st.Paths[0].RxPPS == 0 || !st.Drained() {
		t.Fatalf("after the timeout: %+v", st)
	}
	st := c.Begin(context.Background(), short, both, f.sample, nil)
	if st.State != Draining || st.TimedOut || !st.Since.Equal(since) {
		t.Fatalf("drain after a timeout: %+v (first drained at %v)", st, since)
	}
	c.Undrain()
	if c.Drained() {
		t.Fatal("drained after undrain")
	}
}

// A box that starts drained is drained at once, with no wait; a context
// that ends stops the wait.
func TestControllerStartDrainedAndContext(t *testing.T) {
	defer goleak.VerifyNone(t)
	c := NewController()
	c.SetDrained([]string{"started drained"})
	if st := c.Status(); st.State != Drained || st.Done.IsZero() || st.TimedOut {
		t.Fatalf("start drained: %+v", st)
	}
	c.Undrain()
	ctx, cancel := context.WithCancel(context.Background())
	f := &fakeCounters{c: map[string]Counters{}, on: true}
	c.Interval = time.Millisecond
	c.Begin(ctx, set, both, f.sample, nil)
	cancel()
	c.Close() // returns once the wait has ended
	if st := c.Status(); st.State != Draining {
		t.Fatalf("state changed by the end of the context: %+v", st)
	}
}
