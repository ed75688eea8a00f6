package bgp

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
	apb "google.golang.org/protobuf/types/known/anypb"
)

// awsSide is a gobgp speaker playing one AWS session (ASN 64512) from a
// loopback address of its own; it connects to cgwd's speaker.
type awsSide struct {
	srv  *server.BgpServer
	addr string
}

func startAWSSide(t *testing.T, ctx context.Context, addr string, port int) *awsSide {
	t.Helper()
	srv := server.NewBgpServer(server.LoggerOption(&logAdapter{log: slog.New(slog.DiscardHandler)}))
	go srv.Serve()
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: 64512, RouterId: addr, ListenPort: -1}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.StopBgp(context.Background(), &api.StopBgpRequest{}) })
	family := &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: "127.0.0.1", PeerAsn: 65000},
		Transport: &api.Transport{LocalAddress: addr, RemotePort: uint32(port)},
		AfiSafis:  []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: family, Enabled: true}}},
	}}); err != nil {
		t.Fatal(err)
	}
	return &awsSide{srv: srv, addr: addr}
}

// announce sends the VPC prefix with an AS path of extra ASes before 64512
// (which gobgp adds on export) and a MED; withdraw takes it back.
func (a *awsSide) announce(t *testing.T, extra int, med uint32, withdraw bool) {
	t.Helper()
	nlri, _ := apb.New(&api.IPAddressPrefix{Prefix: "10.200.0.0", PrefixLen: 16})
	origin, _ := apb.New(&api.OriginAttribute{Origin: 0})
	nh, _ := apb.New(&api.NextHopAttribute{NextHop: a.addr})
	m, _ := apb.New(&api.MultiExitDiscAttribute{Med: med})
	attrs := []*apb.Any{origin, nh, m}
	if extra > 0 {
		seg := &api.AsSegment{Type: segSequence}
		for range extra {
			seg.Numbers = append(seg.Numbers, 64512)
		}
		p, _ := apb.New(&api.AsPathAttribute{Segments: []*api.AsSegment{seg}})
		attrs = append(attrs, p)
	}
	path := &api.Path{Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}, Nlri: nlri, Pattrs: attrs}
	var err error
	if withdraw {
		err = a.srv.DeletePath(context.Background(), &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Path: path})
	} else {
		_, err = a.srv.AddPath(context.Background(), &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: path})
	}
	if err != nil {
		t.Fatal(err)
	}
}

// bestNeighbor is the neighbor of gobgp's best path to the VPC prefix with
// the number of paths it knows.
func bestNeighbor(s *Speaker) (string, int) {
	best, n := "", 0
	_ = s.srv.ListPath(context.Background(), &api.ListPathRequest{
		TableType: api.TableType_GLOBAL, Family: ipv4Unicast,
		Prefixes: []*api.TableLookupPrefix{{Prefix: "10.200.0.0/16"}},
	}, func(d *api.Destination) {
		for _, p := range d.Paths {
			n++
			if p.Best {
				best = p.NeighborIp
			}
		}
	})
	return best, n
}

// gobgp's best path, with the local preference cgwd's import sets from each
// path's preference, is the path the FIB selects in the same situations
// (pkg/fib's TestPreferenceBeforeAttributes and
// TestAttributesRankTunnelsBeforeTheirRank): DX whatever its attributes,
// then between tunnels the shorter AS path, then the lower MED. Real gobgp
// sessions over loopback addresses.
func TestGobgpBestPathFollowsPreferenceThenAttributes(t *testing.T) {
	if raceDetector {
		// gobgp keeps its route selection options in package variables
		// that every server's StartBgp writes and every server reads: four
		// servers in one process race by design. make unit runs this test
		// again without -race.
		t.Skip("four gobgp servers in one process race on gobgp's package variables")
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	for _, a := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		c, err := net.Listen("tcp4", a+":0")
		if err != nil {
			t.Skipf("loopback address %s: %v", a, err)
		}
		c.Close()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	peer := func(name, addr string, pref uint32) PeerConfig {
		return PeerConfig{Name: name, Address: netip.MustParseAddr(addr), LocalAddress: netip.MustParseAddr("127.0.0.1"),
			PeerASN: 64512, HoldTime: 30 * time.Second, Keepalive: 10 * time.Second, LocalPref: pref}
	}
	s := New(Config{ASN: 65000, RouterID: netip.MustParseAddr("127.0.0.1"), ListenPort: int32(port),
		Logger: slog.New(slog.DiscardHandler),
		Peers:  []PeerConfig{peer("t1", "127.0.0.2", 100), peer("t2", "127.0.0.3", 100), peer("dx", "127.0.0.4", 300)}})
	up := make(chan string, 8)
	if err := s.Start(ctx, func(RouteEvent) {}, func(name string, ok bool) {
		if ok {
			up <- name
		}
	}); err != nil {
		t.Fatal(err)
	}
	t1 := startAWSSide(t, ctx, "127.0.0.2", port)
	t2 := startAWSSide(t, ctx, "127.0.0.3", port)
	dx := startAWSSide(t, ctx, "127.0.0.4", port)
	deadline := time.After(60 * time.Second)
	for n := 0; n < 3; n++ {
		select {
		case <-up:
		case <-deadline:
			t.Fatal("sessions not Established within 60 s")
		}
	}
	waitBest := func(want string, paths int) {
		t.Helper()
		end := time.Now().Add(10 * time.Second)
		for {
			got, n := bestNeighbor(s)
			if got == want && n == paths {
				return
			}
			if time.Now().After(end) {
				t.Fatalf("gobgp best via %q of %d paths, want %q of %d", got, n, want, paths)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t1.announce(t, 0, 100, false)
	t2.announce(t, 0, 100, false)
	dx.announce(t, 3, 500, false) // a longer AS path and a worse MED: DX still, by preference
	waitBest("127.0.0.4", 3)
	dx.announce(t, 3, 500, true)
	t2.announce(t, 0, 50, false) // AWS prefers tunnel 2 by MED
	waitBest("127.0.0.3", 2)
	t2.announce(t, 1, 0, false) // a longer AS path loses whatever its MED
	waitBest("127.0.0.2", 2)
}
