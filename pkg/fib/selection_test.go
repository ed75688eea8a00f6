package fib

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

// via returns the links of the group (or single route) prefix uses now.
func (k *fakeKernel) via(p netip.Prefix) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	r, ok := k.routes[p]
	if !ok {
		return nil
	}
	if r.NexthopID == 0 {
		return []string{r.Link}
	}
	var out []string
	for _, m := range k.members[r.NexthopID] {
		out = append(out, k.nexthops[m].Link)
	}
	return out
}

func waitVia(t *testing.T, k *fakeKernel, p netip.Prefix, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := k.via(p)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s via %v, want %v", p, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// awsPaths are the lab's paths as the daemon configures them: DX first by
// preference, the tunnels of an active-standby connection by rank.
var awsPaths = []Path{
	{Name: "dx1", Link: "dx0", Gateway: dxGw, Preference: 300, Rank: 0},
	{Name: "cgw-t1", Link: "cgw-t1", Gateway: t1Gw, Preference: 100, Rank: 1},
	{Name: "cgw-t2", Link: "cgw-t2", Gateway: t2Gw, Preference: 100, Rank: 2},
}

func TestAttributesRankTunnelsBeforeTheirRank(t *testing.T) {
	for _, groups := range []bool{false, true} {
		k := newFakeKernel()
		k.groups = groups
		f, cancel, done := startWith(t, Config{Table: 254, Protocol: 200, ReconcileInterval: time.Hour, Paths: awsPaths, Kernel: k})
		aws := Attrs{ASPathLen: 1, MED: 100}
		f.AddWithAttrs(vpc, "cgw-t1", t1Gw, aws)
		f.AddWithAttrs(vpc, "cgw-t2", t2Gw, aws)
		waitVia(t, k, vpc, "cgw-t1") // a tie: the rank decides

		f.AddWithAttrs(vpc, "cgw-t1", t1Gw, Attrs{ASPathLen: 1, MED: 200}) // AWS raises tunnel 1's MED
		waitVia(t, k, vpc, "cgw-t2")
		f.AddWithAttrs(vpc, "cgw-t2", t2Gw, Attrs{ASPathLen: 3, MED: 0}) // the AS path comes before the MED
		waitVia(t, k, vpc, "cgw-t1")
		f.AddWithAttrs(vpc, "cgw-t2", t2Gw, Attrs{ASPathLen: 1, Origin: 2}) // and the origin too
		waitVia(t, k, vpc, "cgw-t1")
		f.AddWithAttrs(vpc, "cgw-t2", t2Gw, aws)
		waitVia(t, k, vpc, "cgw-t2")

		// Another prefix with tied attributes keeps the rank order: the
		// attributes are per prefix.
		other := netip.MustParsePrefix("10.201.0.0/16")
		f.AddWithAttrs(other, "cgw-t1", t1Gw, aws)
		f.AddWithAttrs(other, "cgw-t2", t2Gw, aws)
		waitVia(t, k, other, "cgw-t1")
		waitVia(t, k, vpc, "cgw-t2")

		// The preferred tunnel fails: the other one, whatever its MED.
		f.SetUsable("cgw-t2", false)
		waitVia(t, k, vpc, "cgw-t1")
		f.SetUsable("cgw-t2", true)
		waitVia(t, k, vpc, "cgw-t2")

		// Withdrawn and offered again without attributes (a static route):
		// tunnel 1's worse MED still ranks it below.
		f.Remove(vpc, "cgw-t2")
		waitVia(t, k, vpc, "cgw-t1")
		f.Add(vpc, "cgw-t2", t2Gw)
		waitVia(t, k, vpc, "cgw-t2")
		cancel()
		<-done
	}
}

func TestPreferenceBeforeAttributes(t *testing.T) {
	k := newFakeKernel()
	k.groups = true
	f, cancel, done := startWith(t, Config{Table: 254, Protocol: 200, ReconcileInterval: time.Hour, Paths: awsPaths, Kernel: k})
	defer func() { cancel(); <-done }()
	f.AddWithAttrs(vpc, "cgw-t1", t1Gw, Attrs{ASPathLen: 1})
	f.AddWithAttrs(vpc, "dx1", dxGw, Attrs{ASPathLen: 4, MED: 500}) // DX wins by preference
	waitVia(t, k, vpc, "dx0")

	// A Private IP VPN over DX preferred over DX itself: the operator's
	// preference for the tunnel beats DX's.
	over := append([]Path(nil), awsPaths...)
	over[1].Preference = 400
	if _, err := f.SetPaths(over); err != nil {
		t.Fatal(err)
	}
	waitVia(t, k, vpc, "cgw-t1")
	if act := f.Active(); !act["cgw-t1"] || act["dx1"] {
		t.Errorf("active = %v, want cgw-t1 only", act)
	}
}

func TestEqualAttributesAndRankShareThePrefix(t *testing.T) {
	k := newFakeKernel()
	k.groups = true
	ecmp := []Path{{Name: "cgw-t1", Link: "cgw-t1", Gateway: t1Gw, Preference: 100, Rank: 1}, {Name: "cgw-t2", Link: "cgw-t2", Gateway: t2Gw, Preference: 100, Rank: 1}}
	f, cancel, done := startWith(t, Config{Table: 254, Protocol: 200, ReconcileInterval: time.Hour, Paths: ecmp, Kernel: k})
	defer func() { cancel(); <-done }()
	f.AddWithAttrs(vpc, "cgw-t1", t1Gw, Attrs{ASPathLen: 1, MED: 100})
	f.AddWithAttrs(vpc, "cgw-t2", t2Gw, Attrs{ASPathLen: 1, MED: 100})
	waitVia(t, k, vpc, "cgw-t1", "cgw-t2")
	f.AddWithAttrs(vpc, "cgw-t2", t2Gw, Attrs{ASPathLen: 1, MED: 150}) // AWS prefers tunnel 1 now
	waitVia(t, k, vpc, "cgw-t1")
	f.AddWithAttrs(vpc, "cgw-t2", t2Gw, Attrs{ASPathLen: 1, MED: 100})
	waitVia(t, k, vpc, "cgw-t1", "cgw-t2")
	f.reconcile()
	f.state.Lock()
	n := len(f.state.profiles.attrs)
	f.state.Unlock()
	if n != 1 {
		t.Errorf("%d attribute profiles kept, want 1 (the one in use)", n)
	}
}

func TestFollowAWSBreaksTiesOnly(t *testing.T) {
	k := newFakeKernel()
	k.groups = true
	follow := append([]Path(nil), awsPaths[1:]...)
	for i := range follow {
		follow[i].FollowAWS = true
	}
	f, cancel, done := startWith(t, Config{Table: 254, Protocol: 200, ReconcileInterval: time.Hour, Paths: follow, Kernel: k})
	defer func() { cancel(); <-done }()
	aws := Attrs{ASPathLen: 1, MED: 100}
	f.AddWithAttrs(vpc, "cgw-t1", t1Gw, aws)
	f.AddWithAttrs(vpc, "cgw-t2", t2Gw, aws)
	waitVia(t, k, vpc, "cgw-t1")
	f.SetAWSSends("cgw-t2", true) // AWS sends on tunnel 2 only
	waitVia(t, k, vpc, "cgw-t2")
	f.SetAWSSends("cgw-t1", true) // on both: the rank again
	waitVia(t, k, vpc, "cgw-t1")
	f.SetAWSSends("cgw-t1", false)
	waitVia(t, k, vpc, "cgw-t2")
	f.AddWithAttrs(vpc, "cgw-t2", t2Gw, Attrs{ASPathLen: 1, MED: 200}) // attributes come first
	waitVia(t, k, vpc, "cgw-t1")
}
