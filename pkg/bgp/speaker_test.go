package bgp

import (
	"net/netip"
	"testing"

	api "github.com/osrg/gobgp/v3/api"
	apb "google.golang.org/protobuf/types/known/anypb"
)

func testPath(t *testing.T, neighbor, prefix string, bits uint32, nexthop string, withdraw bool) *api.Path {
	t.Helper()
	nlri, err := apb.New(&api.IPAddressPrefix{Prefix: prefix, PrefixLen: bits})
	if err != nil {
		t.Fatal(err)
	}
	origin, _ := apb.New(&api.OriginAttribute{Origin: 0})
	attrs := []*apb.Any{origin}
	if nexthop != "" {
		nh, _ := apb.New(&api.NextHopAttribute{NextHop: nexthop})
		attrs = append(attrs, nh)
	}
	return &api.Path{
		Family:     &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST},
		Nlri:       nlri,
		Pattrs:     attrs,
		NeighborIp: neighbor,
		IsWithdraw: withdraw,
	}
}

func TestRouteEventDecodesPrefixAndNexthop(t *testing.T) {
	s := New(Config{Peers: []PeerConfig{{Name: "dx1", Address: netip.MustParseAddr("169.254.255.1")}}})
	ev, ok, err := s.routeEvent(testPath(t, "169.254.255.1", "10.200.0.0", 16, "169.254.255.1", false))
	if err != nil || !ok {
		t.Fatalf("ok=%v err=%v", ok, err)
	}
	want := RouteEvent{Peer: "dx1", Prefix: netip.MustParsePrefix("10.200.0.0/16"), Nexthop: netip.MustParseAddr("169.254.255.1")}
	if ev != want {
		t.Errorf("event %+v, want %+v", ev, want)
	}

	ev, ok, err = s.routeEvent(testPath(t, "169.254.255.1", "10.200.0.0", 16, "", true))
	if err != nil || !ok || !ev.Withdraw || ev.Nexthop.IsValid() {
		t.Errorf("withdraw: %+v ok=%v err=%v", ev, ok, err)
	}
	if _, ok, _ := s.routeEvent(testPath(t, "192.0.2.9", "10.200.0.0", 16, "192.0.2.9", false)); ok {
		t.Error("path from an unknown neighbor (our own advertisement) reported")
	}
	if _, _, err := s.routeEvent(testPath(t, "169.254.255.1", "10.200.0.0", 16, "", false)); err == nil {
		t.Error("a path without next hop was accepted")
	}
	if _, _, err := s.routeEvent(testPath(t, "169.254.255.1", "10.200.0.0", 40, "169.254.255.1", false)); err == nil {
		t.Error("a /40 IPv4 prefix was accepted")
	}
}

func TestRouteEventAppliesImportPolicy(t *testing.T) {
	s := New(Config{
		Deny: []netip.Prefix{netip.MustParsePrefix("10.10.0.0/16"), netip.MustParsePrefix("169.254.0.0/16")},
		Peers: []PeerConfig{
			{Name: "dx1", Address: netip.MustParseAddr("169.254.255.1")},
			{Name: "cgw-t1", Address: netip.MustParseAddr("169.254.10.1"), Allow: []netip.Prefix{netip.MustParsePrefix("10.200.0.0/16")}},
		},
	})
	cases := []struct {
		peer, prefix string
		bits         uint32
		want         bool
	}{
		{"169.254.255.1", "10.200.0.0", 16, true},
		{"169.254.255.1", "10.10.0.0", 16, false},    // on-prem
		{"169.254.255.1", "10.10.5.0", 24, false},    // more specific of on-prem
		{"169.254.255.1", "10.0.0.0", 8, true},       // less specific: allowed
		{"169.254.255.1", "169.254.10.0", 30, false}, // link-local
		{"169.254.10.1", "10.200.1.0", 24, true},     // inside the allow list
		{"169.254.10.1", "10.201.0.0", 16, false},    // outside it
	}
	for _, c := range cases {
		_, ok, err := s.routeEvent(testPath(t, c.peer, c.prefix, c.bits, c.peer, false))
		if err != nil || ok != c.want {
			t.Errorf("%s/%d from %s: accepted=%v err=%v, want %v", c.prefix, c.bits, c.peer, ok, err, c.want)
		}
	}
	// Withdrawals always pass: a prefix can only be withdrawn if it was accepted.
	if _, ok, _ := s.routeEvent(testPath(t, "169.254.10.1", "10.201.0.0", 16, "", true)); !ok {
		t.Error("withdrawal filtered")
	}
}
