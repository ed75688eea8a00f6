package failover

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cgwd/cgwd/pkg/bfd"
)

func TestReconfigureAddsAndRemovesPathsLeavingOthersAlone(t *testing.T) {
	m, fib, _ := start(t, 0)
	m.BGPState("dx1", true)
	m.BGPState("cgw-t1", true)
	waitFor(t, "both paths usable", func() bool { return fib.is("dx1") && fib.is("cgw-t1") })
	fib.mu.Lock()
	fib.order = []string{"cgw-t1", "cgw-t2"}
	calls := fib.calls
	fib.mu.Unlock()

	ch, err := m.Reconfigure(Config{Paths: []PathConfig{
		{Name: "cgw-t1", Kind: "tunnel", VPN: "vpn1"},
		{Name: "cgw-t2", Kind: "tunnel", VPN: "vpn1"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Added) != 1 || ch.Added[0] != "cgw-t2" || len(ch.Removed) != 1 || ch.Removed[0] != "dx1" || len(ch.Restarted)+len(ch.Retimed) != 0 {
		t.Fatalf("changes %+v", ch)
	}
	fib.mu.Lock()
	if fib.calls != calls+1 || fib.usable["cgw-t2"] {
		t.Errorf("FIB calls %d (want only cgw-t2 marked unusable), cgw-t2 usable %v", fib.calls-calls, fib.usable["cgw-t2"])
	}
	fib.mu.Unlock()
	if !fib.is("cgw-t1") {
		t.Error("the unchanged path lost its usable state")
	}
	m.BGPState("dx1", false) // the removed path's last BGP word is ignored
	m.BGPState("cgw-t2", true)
	waitFor(t, "the added path usable once BGP is up", func() bool { return fib.is("cgw-t2") })
	st := m.Status()
	if len(st) != 2 || st[0].Name != "cgw-t1" || st[1].Name != "cgw-t2" {
		t.Errorf("status %+v", st)
	}
	if n := testutil.CollectAndCount(m.active); n != 2 {
		t.Errorf("%d cgwd_path_active series, want 2 (the removed path's gone)", n)
	}
}

func TestReconfigureRetimesOrReplacesBFD(t *testing.T) {
	a, b := netip.MustParseAddr("127.0.0.61"), netip.MustParseAddr("127.0.0.62")
	timers := bfd.Timers{DesiredMinTx: 50 * time.Millisecond, RequiredMinRx: 50 * time.Millisecond, DetectMult: 3}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	peer := loPeer(t, ctx, b, a, timers)
	path := func(peerAddr netip.Addr, tm bfd.Timers) PathConfig {
		return PathConfig{Name: "dx1", Kind: "dx", BFD: &bfd.Config{Interface: "lo", Local: a, Peer: peerAddr, Timers: tm}}
	}
	fib := &fakeFIB{order: []string{"dx1"}, usable: map[string]bool{}}
	m := New(Config{Paths: []PathConfig{path(b, timers)}})
	err := m.Start(ctx, fib, &fakeBGP{})
	if err != nil {
		t.Skipf("cannot open BFD sockets on lo here: %v", err)
	}
	defer func() { cancel(); <-m.Done() }()
	m.BGPState("dx1", true)
	waitFor(t, "DX usable once BFD is up", func() bool { return fib.is("dx1") })
	session := m.path("dx1").session

	slower := timers
	slower.DetectMult = 5
	ch, err := m.Reconfigure(Config{Paths: []PathConfig{path(b, slower)}})
	if err != nil || len(ch.Retimed) != 1 || len(ch.Restarted) != 0 {
		t.Fatalf("timers only: %+v, %v", ch, err)
	}
	if m.path("dx1").session != session || !fib.is("dx1") {
		t.Error("a timer change replaced the BFD session or made the path unusable")
	}
	waitFor(t, "the peer sees the new multiplier", func() bool { return peer.Status().RemoteDetectMult == 5 })

	// The same checks on a netdev that was deleted and made again (a
	// reload re-created the tunnel): the old socket is bound to the gone
	// device, so the session is replaced and comes up again.
	ch, err = m.Reconfigure(Config{Paths: []PathConfig{path(b, slower)}, Recreated: []string{"dx1"}})
	if err != nil || len(ch.Restarted) != 1 || len(ch.Retimed) != 0 {
		t.Fatalf("recreated netdev: %+v, %v", ch, err)
	}
	select {
	case <-session.Done():
	case <-time.After(5 * time.Second):
		t.Error("the BFD session on the re-created netdev was not replaced")
	}
	session = m.path("dx1").session
	waitFor(t, "DX usable again once the new BFD session is up", func() bool { return fib.is("dx1") })

	other := netip.MustParseAddr("127.0.0.63") // nobody answers there
	ch, err = m.Reconfigure(Config{Paths: []PathConfig{path(other, slower)}})
	if err != nil || len(ch.Restarted) != 1 {
		t.Fatalf("new peer: %+v, %v", ch, err)
	}
	select {
	case <-session.Done():
	default:
		t.Error("the replaced BFD session still runs")
	}
	if fib.is("dx1") {
		t.Error("a path with a new, not yet up, BFD session is still usable")
	}
	if st := m.Status()[0]; st.Peer != other.String() || !st.BGPUp {
		t.Errorf("status after the change: %+v", st)
	}
}
