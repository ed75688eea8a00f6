package failover

import (
	"testing"
	"time"
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
