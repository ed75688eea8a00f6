package bgp

import (
	"net/netip"
	"testing"

	api "github.com/osrg/gobgp/v3/api"
	apb "google.golang.org/protobuf/types/known/anypb"
)

func TestRouteEventCarriesRankingAttributes(t *testing.T) {
	s := New(Config{Peers: []PeerConfig{{Name: "t2", Address: netip.MustParseAddr("169.254.11.1")}}})
	p := testPath(t, "169.254.11.1", "10.200.0.0", 16, "169.254.11.1", false)
	origin, _ := apb.New(&api.OriginAttribute{Origin: 2})
	med, _ := apb.New(&api.MultiExitDiscAttribute{Med: 200})
	path, _ := apb.New(&api.AsPathAttribute{Segments: []*api.AsSegment{
		{Type: segSequence, Numbers: []uint32{64512, 64512}},
		{Type: segSet, Numbers: []uint32{7224, 7225, 7226}}, // a set counts 1
		{Type: 3, Numbers: []uint32{65001}},                 // a confederation sequence counts nothing
	}})
	p.Pattrs = append([]*apb.Any{origin, med, path}, p.Pattrs[1:]...)
	ev, ok, err := s.routeEvent(p)
	if err != nil || !ok {
		t.Fatalf("ok=%v err=%v", ok, err)
	}
	if ev.ASPathLen != 3 || ev.Origin != 2 || ev.MED != 200 {
		t.Errorf("attributes %d/%d/%d, want AS path 3, origin 2, MED 200", ev.ASPathLen, ev.Origin, ev.MED)
	}
	bad, _ := apb.New(&api.OriginAttribute{Origin: 7})
	p.Pattrs[0] = bad
	if _, _, err := s.routeEvent(p); err == nil {
		t.Error("origin 7 accepted")
	}
}

// Every accepted route gets its path's preference as local preference, after
// the rejects, so that gobgp's best path is the FIB's.
func TestImportSetsLocalPreferenceAfterRejects(t *testing.T) {
	cfg := Config{ASN: 65000, Deny: []netip.Prefix{netip.MustParsePrefix("10.10.0.0/16")}, Peers: []PeerConfig{
		{Name: "t1", Address: netip.MustParseAddr("169.254.10.1"), LocalPref: 100, Allow: []netip.Prefix{netip.MustParsePrefix("10.200.0.0/16")}},
		{Name: "dx", Address: netip.MustParseAddr("169.254.255.1"), LocalPref: 300},
		{Name: "none", Address: netip.MustParseAddr("169.254.12.1")},
	}}
	_, pols := policies(cfg)
	imp := pols[0]
	var names []string
	for _, st := range imp.Statements {
		names = append(names, st.Name)
	}
	want := []string{"cgwd-import-deny", "cgwd-import-allow-t1", "cgwd-import-pref-t1", "cgwd-import-pref-dx"}
	if len(names) != len(want) {
		t.Fatalf("import statements %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("import statements %v, want %v", names, want)
		}
	}
	for i, lp := range map[int]uint32{2: 100, 3: 300} {
		st := imp.Statements[i]
		if st.Actions.GetLocalPref().GetValue() != lp || st.Actions.RouteAction != api.RouteAction_ACCEPT {
			t.Errorf("%s: actions %v, want accept with local preference %d", st.Name, st.Actions, lp)
		}
	}
}
