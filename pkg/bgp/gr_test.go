package bgp

import (
	"context"
	"net/netip"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
)

func TestGracefulRestartCapability(t *testing.T) {
	p := PeerConfig{Name: "dx1", GracefulRestart: GracefulRestart{Enabled: true, RestartTime: 120 * time.Second}}
	ap := apiPeer(p, 0)
	gr := ap.GetGracefulRestart()
	if !gr.GetEnabled() || gr.GetRestartTime() != 120 || gr.GetLocalRestarting() {
		t.Fatalf("graceful restart = %+v, want enabled, 120 s, not restarting", gr)
	}
	for _, af := range ap.GetAfiSafis() {
		if !af.GetMpGracefulRestart().GetConfig().GetEnabled() {
			t.Errorf("family %v without graceful restart: no forwarding state bit can be sent", af.GetConfig().GetFamily())
		}
	}
	// Routes kept in the kernel from the previous run: Restart State and
	// Forwarding State bits (gobgp sets both from LocalRestarting).
	if !restarted(ap, true).GetGracefulRestart().GetLocalRestarting() {
		t.Error("a restart with the forwarding state kept is not announced")
	}

	off := apiPeer(PeerConfig{Name: "cgw-t1"}, 0)
	if off.GracefulRestart != nil || restarted(off, true).GracefulRestart != nil {
		t.Errorf("graceful restart off, yet gobgp gets %+v", off.GracefulRestart)
	}
	for _, af := range off.GetAfiSafis() {
		if af.MpGracefulRestart != nil {
			t.Error("graceful restart off, yet the family has it")
		}
	}
}

func TestEndOfRIBIsRecognisedAndReported(t *testing.T) {
	s := New(Config{Peers: []PeerConfig{{Name: "dx1", Address: netip.MustParseAddr("169.254.255.1")}}})
	var got []string
	s.OnEndOfRIB(func(peer string) { got = append(got, peer) })
	v := s.v.Load()
	eor := &api.Path{Family: ipv4Unicast, NeighborIp: "169.254.255.1"}
	if !s.endOfRIB(context.Background(), v, eor) {
		t.Fatal("an End-of-RIB marker was taken for a route")
	}
	if len(got) != 1 || got[0] != "dx1" {
		t.Fatalf("reported %v, want [dx1]", got)
	}
	route := testPath(t, "169.254.255.1", "10.200.0.0", 16, "169.254.255.1", false)
	if s.endOfRIB(context.Background(), v, route) {
		t.Fatal("a route was taken for End-of-RIB")
	}
	// Another family's marker, or one from an unknown neighbour, is no
	// IPv4 End-of-RIB of a peer.
	if !s.endOfRIB(context.Background(), v, &api.Path{Family: &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}, NeighborIp: "169.254.255.1"}) ||
		!s.endOfRIB(context.Background(), v, &api.Path{Family: ipv4Unicast, NeighborIp: "192.0.2.1"}) || len(got) != 1 {
		t.Fatalf("reported %v, want only dx1's IPv4 marker", got)
	}
}
