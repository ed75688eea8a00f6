package failover

import (
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/bfd"
)

// Only a health check falling from up tears the BGP session down: BFD
// still coming up (Down, then Init, after a restart of cgwd, while BGP is
// already up again) must not end the peer's graceful restart with a Cease.
func TestBFDNotUpYetLeavesBGPAlone(t *testing.T) {
	m, fib, bgp := start(t, 0)
	m.BGPState("dx1", true)
	waitFor(t, "DX usable", func() bool { return fib.is("dx1") })
	down := false
	m.send(event{path: "dx1", health: &down, at: time.Now(), reason: "bfd-Down"})
	waitFor(t, "DX BGP reset once BFD fell", func() bool { return bgp.resets() == 1 })
	m.BGPState("dx1", true) // BGP back before BFD
	for _, reason := range []string{"bfd-Down", "bfd-Init"} {
		done := make(chan struct{})
		m.send(event{path: "dx1", health: &down, at: time.Now(), reason: reason, done: done})
		<-done
	}
	if got := bgp.resets(); got != 1 {
		t.Fatalf("%d resets, want 1: BFD that was never up again tore BGP down", got)
	}
}

// While a path's BGP peer restarts gracefully, a health check that is up
// keeps the path and its routes; a path with no check of its own is not
// helped (its session goes down as before).
func TestBGPRestartingHelpsOnlyCheckedPaths(t *testing.T) {
	m, fib, _ := start(t, 0)
	m.BGPState("dx1", true)
	m.BGPState("cgw-t1", true)
	waitFor(t, "both usable", func() bool { return fib.is("dx1") && fib.is("cgw-t1") })
	m.mu.Lock()
	m.paths["dx1"].cfg.BFD = &bfd.Config{} // as if BFD ran on DX, and is up
	m.mu.Unlock()
	if !m.BGPRestarting("dx1") {
		t.Error("DX, its BFD up, is not helped through its peer's restart")
	}
	if m.BGPRestarting("cgw-t1") {
		t.Error("the tunnel, with no health check, is helped through its peer's restart")
	}
	down := false
	m.send(event{path: "dx1", health: &down, at: time.Now(), reason: "bfd-Down"})
	waitFor(t, "DX unusable once BFD falls", func() bool { return !fib.is("dx1") })
	if m.BGPRestarting("dx1") {
		t.Error("DX, its BFD down, is helped through its peer's restart")
	}
}
