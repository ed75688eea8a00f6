package bgp

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	api "github.com/osrg/gobgp/v3/api"
)

func exportOf(t *testing.T, pols []*api.Policy, peer string) *api.Statement {
	t.Helper()
	for _, p := range pols {
		for _, st := range p.Statements {
			if st.Name == "cgwd-export-"+peer {
				return st
			}
		}
	}
	t.Fatalf("no export statement for %s", peer)
	return nil
}

func setOf(sets []*api.DefinedSet, name string) []string {
	for _, s := range sets {
		if s.Name == name {
			var out []string
			for _, p := range s.Prefixes {
				out = append(out, p.IpPrefix)
			}
			return out
		}
	}
	return nil
}

// A session with an advertise limit exports only the first AdvertiseLimit
// on-prem prefixes; one without, or within it, exports them all.
func TestExportHoldsBackOverAdvertiseLimit(t *testing.T) {
	var ps []netip.Prefix
	for i := range 150 {
		ps = append(ps, netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/24", 10+i/256, i%256)))
	}
	cfg := Config{ASN: 65000, Prefixes: ps, Peers: []PeerConfig{
		{Name: "t1", Address: netip.MustParseAddr("169.254.10.1"), AdvertiseLimit: 100},
		{Name: "t2", Address: netip.MustParseAddr("169.254.11.1"), AdvertiseLimit: 1000},
		{Name: "dx", Address: netip.MustParseAddr("169.254.255.1")},
	}}
	sets, pols := policies(cfg)
	st := exportOf(t, pols, "t1")
	if st.Conditions.PrefixSet.Name != exportSet("t1") {
		t.Fatalf("t1 exports %s", st.Conditions.PrefixSet.Name)
	}
	got := setOf(sets, exportSet("t1"))
	var want []string
	for _, p := range ps[:100] {
		want = append(want, p.String())
	}
	if !slices.Equal(got, want) {
		t.Errorf("t1 sends %d prefixes %v..., want the first 100", len(got), got[:min(3, len(got))])
	}
	for _, peer := range []string{"t2", "dx"} {
		if n := exportOf(t, pols, peer).Conditions.PrefixSet.Name; n != setOnPrem {
			t.Errorf("%s exports %s, want %s", peer, n, setOnPrem)
		}
	}
	if n := len(heldBack(cfg.Prefixes, cfg.Peers[0])); n != 50 {
		t.Errorf("t1 holds back %d, want 50", n)
	}
}

// Equal prepends (ECMP) give both tunnels the same export actions, so AWS
// sees the same AS path on each; 1x/2x differ.
func TestExportPrependsPerPeer(t *testing.T) {
	cfg := Config{ASN: 65000, Prefixes: []netip.Prefix{netip.MustParsePrefix("10.10.0.0/16")}, Peers: []PeerConfig{
		{Name: "t1", Address: netip.MustParseAddr("169.254.10.1")},
		{Name: "t2", Address: netip.MustParseAddr("169.254.11.1")},
	}}
	_, pols := policies(cfg)
	if a, b := exportOf(t, pols, "t1").Actions.AsPrepend, exportOf(t, pols, "t2").Actions.AsPrepend; a != nil || b != nil {
		t.Errorf("prepend 0 exports prepends %v %v", a, b)
	}
	cfg.Peers[0].Prepend, cfg.Peers[1].Prepend = 1, 2
	_, pols = policies(cfg)
	if a, b := exportOf(t, pols, "t1").Actions.AsPrepend, exportOf(t, pols, "t2").Actions.AsPrepend; a.GetRepeat() != 1 || b.GetRepeat() != 2 {
		t.Errorf("prepends %v %v, want 1 and 2", a, b)
	}
}
