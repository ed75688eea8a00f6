package fib

import (
	"net/netip"
	"testing"
)

// groupsConsistent fails if a nexthop group names a nexthop object the
// kernel does not have (the real kernel would have dropped it from the group).
func groupsConsistent(t *testing.T, k *fakeKernel) {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	for id, ms := range k.members {
		for _, m := range ms {
			if _, ok := k.nexthops[m]; !ok {
				t.Errorf("group %#x uses deleted nexthop %#x", id, m)
			}
		}
	}
}

func TestSetPathsKeepsUnchangedMovesRemovedAndAddsNew(t *testing.T) {
	for _, groups := range []bool{true, false} {
		name := "per-route"
		if groups {
			name = "groups"
		}
		t.Run(name, func(t *testing.T) {
			k := newFakeKernel()
			k.groups = groups
			f, cancel, done := start(t, k, 0)
			defer func() { cancel(); <-done }()
			for _, path := range []string{"dx1", "cgw-t1", "cgw-t2"} {
				f.Add(vpc, path, netip.Addr{})
			}
			waitRoute(t, k, vpc, Route{Prefix: vpc, Link: "dx0", Gateway: dxGw}, true)
			f.reconcile()

			// The same paths again: nothing is written to the kernel.
			k.mu.Lock()
			replaces := k.replaces
			k.mu.Unlock()
			ops := f.Counters.Programmed.Load()
			ch, err := f.SetPaths(paths)
			if err != nil || len(ch.Added)+len(ch.Removed)+len(ch.Changed) != 0 {
				t.Fatalf("unchanged paths: %+v, %v", ch, err)
			}
			k.mu.Lock()
			if k.replaces != replaces {
				t.Errorf("unchanged paths replaced %d groups", k.replaces-replaces)
			}
			k.mu.Unlock()
			if got := f.Counters.Programmed.Load() - ops; got != 0 {
				t.Errorf("unchanged paths rewrote %d routes", got)
			}

			// DX removed: its prefixes move to tunnel 1 and its nexthop goes.
			ch, err = f.SetPaths(paths[1:])
			if err != nil || len(ch.Removed) != 1 || ch.Removed[0] != "dx1" {
				t.Fatalf("remove dx1: %+v, %v", ch, err)
			}
			waitRoute(t, k, vpc, Route{Prefix: vpc, Link: "cgw-t1", Gateway: t1Gw}, true)
			f.reconcile()
			groupsConsistent(t, k)
			if groups {
				k.mu.Lock()
				_, still := k.nexthops[nhPathBase]
				k.mu.Unlock()
				if still {
					t.Error("the removed path's nexthop object is still in the kernel")
				}
			}
			f.Add(netip.MustParsePrefix("10.201.0.0/16"), "dx1", netip.Addr{})
			if _, ok := f.Installed()["dx1"]; ok {
				t.Error("a removed path still counts")
			}

			// A new DX link: unusable until failover says so, then preferred.
			dx2Gw := netip.MustParseAddr("169.254.254.1")
			dx2 := Path{Name: "dx2", Link: "dx1", Gateway: dx2Gw, Rank: 0}
			ch, err = f.SetPaths(append([]Path{dx2}, paths[1:]...))
			if err != nil || len(ch.Added) != 1 || ch.Added[0] != "dx2" {
				t.Fatalf("add dx2: %+v, %v", ch, err)
			}
			f.Add(vpc, "dx2", netip.Addr{})
			f.flush()
			if r, _ := k.get(vpc); r.Link != "cgw-t1" {
				t.Errorf("a new path carried traffic before it was usable: via %s", r.Link)
			}
			f.SetUsable("dx2", true)
			waitRoute(t, k, vpc, Route{Prefix: vpc, Link: "dx1", Gateway: dx2Gw}, true)
			groupsConsistent(t, k)

			// Tunnel 1 takes a new gateway while DX carries the traffic; then DX goes.
			t1 := paths[1]
			t1.Gateway = netip.MustParseAddr("169.254.12.1")
			ch, err = f.SetPaths([]Path{dx2, t1, paths[2]})
			if err != nil || len(ch.Changed) != 1 || ch.Changed[0] != "cgw-t1" {
				t.Fatalf("change cgw-t1: %+v, %v", ch, err)
			}
			f.SetUsable("dx2", false)
			waitRoute(t, k, vpc, Route{Prefix: vpc, Link: "cgw-t1", Gateway: t1.Gateway}, true)
			if got := f.Paths(); len(got) != 3 || got[0].Name != "dx2" {
				t.Errorf("paths %+v", got)
			}
		})
	}
}

func TestSetPathsRefusesBadLists(t *testing.T) {
	f, cancel, done := start(t, newFakeKernel(), 0)
	defer func() { cancel(); <-done }()
	if _, err := f.SetPaths([]Path{paths[0], paths[0]}); err == nil {
		t.Error("a path given twice was accepted")
	}
	if _, err := f.SetPaths([]Path{{Link: "x"}}); err == nil {
		t.Error("a path with no name was accepted")
	}
	var many []Path
	for i := 0; i < 70; i++ {
		many = append(many, Path{Name: "p" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Link: "x", Rank: 1})
	}
	if _, err := f.SetPaths(many); err == nil {
		t.Error("70 paths accepted")
	}
	if got := len(f.Paths()); got != 3 {
		t.Errorf("a refused change left %d paths, want the 3 it had", got)
	}
}
