package fib

import (
	"net/netip"
	"testing"
	"time"
)

// Carried follows path selection, in both kernel modes: the path that
// carries each prefix now, none for a prefix with no usable path; every
// change is announced by OnChange, so that the LAN export follows at once.
func TestCarriedFollowsSelection(t *testing.T) {
	for _, groups := range []bool{false, true} {
		k := newFakeKernel()
		k.groups = groups
		changes := make(chan struct{}, 100)
		f, cancel, done := startWith(t, Config{Table: 254, Protocol: 200, ReconcileInterval: time.Hour, Paths: paths, Kernel: k,
			OnChange: func() { changes <- struct{}{} }})
		other := netip.MustParsePrefix("10.201.0.0/16")
		f.Add(vpc, "dx1", dxGw)
		f.Add(vpc, "cgw-t1", t1Gw)
		f.Add(other, "cgw-t2", t2Gw)
		waitCarried := func(want map[netip.Prefix]string) {
			t.Helper()
			deadline := time.Now().Add(5 * time.Second)
			for {
				got := f.Carried()
				if len(got) == len(want) && got[vpc] == want[vpc] && got[other] == want[other] {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("groups %v: carried %v, want %v", groups, got, want)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		waitCarried(map[netip.Prefix]string{vpc: "dx1", other: "cgw-t2"})
		for len(changes) > 0 {
			<-changes
		}
		f.SetUsable("dx1", false) // returns once the kernel follows
		if len(changes) == 0 {
			t.Errorf("groups %v: DX unusable, no OnChange", groups)
		}
		waitCarried(map[netip.Prefix]string{vpc: "cgw-t1", other: "cgw-t2"})
		f.SetUsable("cgw-t1", false)
		f.SetUsable("cgw-t2", false)
		waitCarried(map[netip.Prefix]string{}) // offered, but no usable path: not carried
		cancel()
		<-done
	}
}
