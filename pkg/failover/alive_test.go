package failover

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/bfd"
)

// TestPeerAlive: a path with BFD says whether BFD sees the peer; one
// without a liveness check, or an unknown name, says it does not know.
func TestPeerAlive(t *testing.T) {
	a, b := netip.MustParseAddr("127.0.0.71"), netip.MustParseAddr("127.0.0.72")
	timers := bfd.Timers{DesiredMinTx: 50 * time.Millisecond, RequiredMinRx: 50 * time.Millisecond, DetectMult: 3}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pctx, stopPeer := context.WithCancel(ctx)
	peer := loPeer(t, pctx, b, a, timers)
	fib := &fakeFIB{order: []string{"dx1", "cgw-t1"}, usable: map[string]bool{}}
	m := New(Config{Paths: []PathConfig{
		{Name: "dx1", Kind: "dx", BFD: &bfd.Config{Interface: "lo", Local: a, Peer: b, Timers: timers}},
		{Name: "cgw-t1", Kind: "tunnel"},
	}})
	if err := m.Start(ctx, fib, &fakeBGP{}); err != nil {
		t.Skipf("cannot open BFD sockets on lo here: %v", err)
	}
	defer func() { cancel(); <-m.Done() }()
	waitFor(t, "dx1's peer alive once BFD is up", func() bool { alive, known := m.PeerAlive("dx1"); return alive && known })
	stopPeer()
	<-peer.Done()
	waitFor(t, "dx1's peer known gone once BFD is down", func() bool { alive, known := m.PeerAlive("dx1"); return !alive && known })
	if alive, known := m.PeerAlive("cgw-t1"); alive || known {
		t.Errorf("a path without BFD or probes: alive %v known %v, want unknown", alive, known)
	}
	if _, known := m.PeerAlive("nope"); known {
		t.Error("an unknown path is known")
	}
}

// loPeer starts, until ctx ends, a BFD session on lo from local to peer:
// the other end of a path's session; the test is skipped where lo cannot
// have BFD sockets.
func loPeer(t *testing.T, ctx context.Context, local, peer netip.Addr, timers bfd.Timers) *bfd.Session {
	t.Helper()
	s, err := bfd.New(bfd.Config{Interface: "lo", Local: local, Peer: peer, Timers: timers})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Skipf("cannot open BFD sockets on lo here: %v", err)
	}
	return s
}
