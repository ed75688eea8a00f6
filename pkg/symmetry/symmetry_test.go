package symmetry

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type fakeFIB struct {
	mu     sync.Mutex
	active map[string]bool
	aws    map[string]bool
}

func (f *fakeFIB) Active() map[string]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return map[string]bool{"cgw-t1": f.active["cgw-t1"], "cgw-t2": f.active["cgw-t2"]}
}

func (f *fakeFIB) SetAWSSends(path string, sends bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.aws[path] = sends
}

type counters struct {
	mu sync.Mutex
	rx map[string]uint64
}

func (c *counters) read(link string) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.rx[link]
	if !ok {
		return 0, errors.New("no such link")
	}
	return v, nil
}

func (c *counters) add(link string, n uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rx[link] += n
}

func TestAWSSendingOnAPathCgwdDoesNotUseIsAsymmetric(t *testing.T) {
	rx := &counters{rx: map[string]uint64{"cgw-t1": 0, "cgw-t2": 0}}
	fib := &fakeFIB{active: map[string]bool{"cgw-t1": true}, aws: map[string]bool{}}
	g := New(Config{
		Paths:    []Path{{Name: "cgw-t1", VPN: "vpn1", Link: "cgw-t1"}, {Name: "cgw-t2", VPN: "vpn1", Link: "cgw-t2"}},
		Interval: 5 * time.Second, MinPPS: 25, RxPackets: rx.read,
	})
	t0 := time.Unix(1000, 0)
	g.Sample(fib, t0)
	// Control traffic only (BFD every 300 ms, a keepalive): below the threshold.
	rx.add("cgw-t1", 20)
	rx.add("cgw-t2", 20)
	g.Sample(fib, t0.Add(5*time.Second))
	if st := g.States(); st["cgw-t1"].AWSSends || st["cgw-t2"].AWSSends {
		t.Fatalf("control traffic counted as AWS sending: %+v", st)
	}
	// AWS sends 100 packets/s on tunnel 2, cgwd on tunnel 1.
	rx.add("cgw-t2", 500)
	g.Sample(fib, t0.Add(10*time.Second))
	st := g.States()
	if !st["cgw-t2"].AWSSends || !st["cgw-t2"].Asymmetric() || st["cgw-t1"].Asymmetric() {
		t.Fatalf("states %+v, want tunnel 2 asymmetric", st)
	}
	if !fib.aws["cgw-t2"] || fib.aws["cgw-t1"] {
		t.Errorf("FIB told %v, want AWS on cgw-t2 only", fib.aws)
	}
	want := `
# HELP cgwd_path_asymmetric Whether AWS sends traffic on the path while cgwd does not use it (1): flows through a stateful firewall break.
# TYPE cgwd_path_asymmetric gauge
cgwd_path_asymmetric{path="cgw-t1",vpn="vpn1"} 0
cgwd_path_asymmetric{path="cgw-t2",vpn="vpn1"} 1
`
	if err := testutil.CollectAndCompare(g.asymmetric, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	// cgwd moves to tunnel 2 (follow_aws): symmetric again.
	fib.active = map[string]bool{"cgw-t2": true}
	rx.add("cgw-t2", 500)
	g.Sample(fib, t0.Add(15*time.Second))
	if st := g.States(); st["cgw-t2"].Asymmetric() || !st["cgw-t2"].CgwdSends {
		t.Errorf("states %+v, want symmetric", st)
	}
	// A sample closer than half an interval to the last is skipped.
	rx.add("cgw-t2", 1)
	g.Sample(fib, t0.Add(16*time.Second))
	if pps := g.States()["cgw-t2"].RxPPS; pps != 100 {
		t.Errorf("rate %v after a too-early sample, want 100 kept", pps)
	}
	// A removed path's series go.
	g.SetPaths([]Path{{Name: "cgw-t2", VPN: "vpn1", Link: "cgw-t2"}})
	if n := testutil.CollectAndCount(g.asymmetric); n != 1 {
		t.Errorf("%d series after removing tunnel 1, want 1", n)
	}
}

func TestGuardStopsWithContext(t *testing.T) {
	rx := &counters{rx: map[string]uint64{}}
	g := New(Config{Paths: []Path{{Name: "cgw-t1", Link: "cgw-t1"}}, Interval: time.Millisecond, MinPPS: 1, RxPackets: rx.read})
	ctx, cancel := context.WithCancel(context.Background())
	if err := g.Start(ctx, &fakeFIB{aws: map[string]bool{}}); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-g.Done()
	reg := prometheus.NewRegistry()
	for _, c := range g.Collectors() {
		reg.MustRegister(c)
	}
}

func TestSysfsRefusesPathsOutsideNetdevs(t *testing.T) {
	for _, bad := range []string{"", "..", "../../etc", "a/b"} {
		if _, err := sysfsRxPackets(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
