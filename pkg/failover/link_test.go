package failover

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeLinks is a link watch whose changes the test sends.
type fakeLinks struct {
	onChange chan func(string, bool)
}

func (f *fakeLinks) Watch(ctx context.Context, onChange func(string, bool)) (<-chan struct{}, error) {
	f.onChange <- onChange
	done := make(chan struct{})
	go func() { <-ctx.Done(); close(done) }()
	return done, nil
}

// startLinks starts a manager with cfg and a fake link watch, whose
// callback it returns.
func startLinks(t *testing.T, cfg Config) (*Manager, *fakeFIB, func(string, bool)) {
	t.Helper()
	links := &fakeLinks{onChange: make(chan func(string, bool), 1)}
	fib := &fakeFIB{order: []string{"dx1", "cgw-t1"}, usable: map[string]bool{}}
	cfg.Links = links
	m := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	if err := m.Start(ctx, fib, &fakeBGP{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-m.Done() })
	return m, fib, <-links.onChange
}

// DX's link loses carrier while its BGP session (health from BGP alone,
// no BFD) still looks Established: the path is unusable at once, traffic
// moves to the tunnel and the failover is counted as link-down; carrier
// back, DX carries traffic again after the hold-down.
func TestLinkDownMakesPathUnusable(t *testing.T) {
	m, fib, link := startLinks(t, Config{HoldDown: 50 * time.Millisecond, Paths: []PathConfig{
		{Name: "dx1", Kind: "dx", Link: "dx0"},
		{Name: "cgw-t1", Kind: "tunnel", VPN: "vpn1"},
	}})
	link("dx0", true)
	link("cgw-t1", true)
	m.BGPState("dx1", true)
	m.BGPState("cgw-t1", true)
	waitFor(t, "DX carries traffic", func() bool { return fib.Active()["dx1"] })

	link("dx0", false)
	waitFor(t, "traffic on the tunnel after DX lost carrier", func() bool { return fib.Active()["cgw-t1"] })
	waitFor(t, "failover counted as link-down", func() bool {
		return testutil.ToFloat64(m.failovers.WithLabelValues("dx1", "cgw-t1", "link-down")) == 1
	})
	if st := m.Status()[0]; st.Usable {
		t.Errorf("dx1 usable with its link down: %+v", st)
	}

	link("dx0", true)
	waitFor(t, "traffic back on DX after carrier and the hold-down", func() bool { return fib.Active()["dx1"] })
	waitFor(t, "return counted as recovered", func() bool {
		return testutil.ToFloat64(m.failovers.WithLabelValues("cgw-t1", "dx1", "recovered")) == 1
	})
}

// A link already down when a path is added keeps the new path unusable.
func TestLinkDownBeforeReconfigure(t *testing.T) {
	m, fib, link := startLinks(t, Config{Paths: []PathConfig{{Name: "cgw-t1", Kind: "tunnel", VPN: "vpn1"}}})
	link("dx0", false)
	if _, err := m.Reconfigure(Config{Paths: []PathConfig{
		{Name: "dx1", Kind: "dx", Link: "dx0"}, {Name: "cgw-t1", Kind: "tunnel", VPN: "vpn1"},
	}}); err != nil {
		t.Fatal(err)
	}
	m.BGPState("cgw-t1", true)
	m.BGPState("dx1", true)
	waitFor(t, "tunnel carries traffic", func() bool { return fib.is("cgw-t1") })
	done := make(chan struct{})
	m.ev <- event{path: "dx1", done: done, at: time.Now(), reason: "sync"} // after the BGP events
	<-done
	if fib.is("dx1") {
		t.Error("dx1 usable although its link was down when it was added")
	}
}
