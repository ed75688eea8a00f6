package bfd

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

// Loopback addresses unlikely to be used by anything else on the machine.
var (
	loA = netip.MustParseAddr("127.77.0.1")
	loB = netip.MustParseAddr("127.77.0.2")
)

func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %v", what, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func startSession(t *testing.T, ctx context.Context, local, peer netip.Addr, changes chan Change) *Session {
	t.Helper()
	s, err := New(Config{Interface: "lo", Local: local, Peer: peer, Timers: fast,
		OnChange: func(c Change) {
			if changes != nil {
				changes <- c
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Skipf("cannot open BFD sockets on lo here: %v", err)
	}
	return s
}

func waitState(t *testing.T, s *Session, want State) {
	t.Helper()
	eventually(t, 10*time.Second, fmt.Sprintf("session to %s %s", s.cfg.Peer, want), func() error {
		if st := s.Status(); st.State != want {
			return fmt.Errorf("state %s", st.State)
		}
		return nil
	})
}

// waitChange reads changes until one goes to state to; the callback runs
// just after Status is updated, so it may arrive a little later.
func waitChange(t *testing.T, changes <-chan Change, to State) Change {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case c := <-changes:
			if c.To == to {
				return c
			}
		case <-deadline:
			t.Fatalf("no change to %s", to)
		}
	}
}

func TestSessionsOnLoopback(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := make(chan Change, 64)
	a := startSession(t, ctx, loA, loB, changes)
	ctxB, cancelB := context.WithCancel(ctx)
	b := startSession(t, ctxB, loB, loA, nil)
	waitState(t, a, StateUp)
	waitState(t, b, StateUp)
	st := a.Status()
	if st.RemoteDiscr != b.Status().LocalDiscr || st.PacketsIn == 0 || st.PacketsOut == 0 {
		t.Fatalf("status after Up: %+v", st)
	}
	// Both sides negotiate the fast timers once Up (poll sequence done).
	eventually(t, 5*time.Second, "fast timers", func() error {
		st := a.Status()
		if st.TxInterval != 50*ms || st.DetectionTime != 150*ms || st.Polling {
			return fmt.Errorf("tx %v detect %v polling %v", st.TxInterval, st.DetectionTime, st.Polling)
		}
		return nil
	})
	// B vanishes without a word: A detects it.
	cancelB()
	<-b.Done()
	waitState(t, a, StateDown)
	last := waitChange(t, changes, StateDown)
	if last.From != StateUp || last.To != StateDown || last.Diag != DiagControlDetectExpired || last.Peer != loB {
		t.Fatalf("last change %+v, want Up -> Down (control detection time expired)", last)
	}
	if got := a.Status(); got.Downs != 1 || got.Diag != DiagControlDetectExpired {
		t.Fatalf("downs %d diag %s", got.Downs, got.Diag)
	}
	cancel()
	select {
	case <-a.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("session did not stop after its context ended")
	}
}

func TestSessionAdminDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := make(chan Change, 64)
	a := startSession(t, ctx, loA, loB, nil)
	b := startSession(t, ctx, loB, loA, changes)
	waitState(t, a, StateUp)
	waitState(t, b, StateUp)
	if err := a.SetAdminDown(ctx, true); err != nil {
		t.Fatal(err)
	}
	waitState(t, a, StateAdminDown)
	waitState(t, b, StateDown)
	last := waitChange(t, changes, StateDown)
	if last.To != StateDown || last.Diag != DiagNeighborDown {
		t.Fatalf("peer's change %+v, want Down with %q", last, DiagNeighborDown)
	}
	if st := b.Status(); st.RemoteState != StateAdminDown || st.RemoteDiag != DiagAdminDown {
		t.Fatalf("peer sees remote state %s diag %q", st.RemoteState, st.RemoteDiag)
	}
	if err := a.SetAdminDown(ctx, false); err != nil {
		t.Fatal(err)
	}
	waitState(t, a, StateUp)
	waitState(t, b, StateUp)
	// Slower timers are negotiated by a poll sequence while Up.
	if err := a.SetTimers(ctx, Timers{DesiredMinTx: 200 * ms, RequiredMinRx: 100 * ms, DetectMult: 4}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "new timers in force", func() error {
		sa, sb := a.Status(), b.Status()
		if sa.Polling || sa.TxInterval != 200*ms || sa.DetectionTime != 300*ms || sb.DetectionTime != 800*ms || sb.TxInterval != 100*ms {
			return fmt.Errorf("a: tx %v detect %v polling %v; b: tx %v detect %v", sa.TxInterval, sa.DetectionTime, sa.Polling, sb.TxInterval, sb.DetectionTime)
		}
		return nil
	})
	if err := a.SetTimers(ctx, Timers{DesiredMinTx: time.Millisecond, RequiredMinRx: 100 * ms, DetectMult: 4}); err == nil {
		t.Fatal("1 ms accepted")
	}
	if a.Status().State != StateUp || b.Status().Downs != 1 {
		t.Fatalf("timer change disturbed the session: %s, downs %d", a.Status().State, b.Status().Downs)
	}
}

func TestSessionChecksTTLAndSource(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := startSession(t, ctx, loA, loB, nil)
	pkt := Packet{State: StateDown, DetectMult: 3, MyDiscr: 42, DesiredMinTx: time.Second, RequiredMinRx: time.Second}
	b, _ := pkt.Append(nil)
	send := func(src netip.Addr, ttl int) {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := ipv4.NewConn(c).SetTTL(ttl); err != nil {
			t.Fatal(err)
		}
		if _, err := c.WriteToUDP(b, net.UDPAddrFromAddrPort(netip.AddrPortFrom(loA, Port))); err != nil {
			t.Fatal(err)
		}
	}
	send(loB, 254)
	send(netip.MustParseAddr("127.77.0.3"), 255)
	eventually(t, 5*time.Second, "two drops", func() error {
		if st := a.Status(); st.Dropped != 2 || st.PacketsIn != 0 {
			return fmt.Errorf("dropped %d in %d", st.Dropped, st.PacketsIn)
		}
		return nil
	})
	send(loB, 255)
	eventually(t, 5*time.Second, "packet accepted", func() error {
		if st := a.Status(); st.PacketsIn != 1 || st.State != StateInit || st.RemoteDiscr != 42 {
			return fmt.Errorf("in %d state %s remote %#x", st.PacketsIn, st.State, st.RemoteDiscr)
		}
		return nil
	})
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, c := range []Config{
		{Local: loA, Peer: loB},
		{Interface: "lo", Local: netip.MustParseAddr("::1"), Peer: loB},
		{Interface: "lo", Local: loA, Peer: loB, Timers: Timers{DesiredMinTx: 10 * ms, RequiredMinRx: 50 * ms, DetectMult: 3}},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}
