package bfd

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const (
	ms      = time.Millisecond
	ourDisc = 0x1111
	remDisc = 0x2222
)

var fast = Timers{DesiredMinTx: 50 * ms, RequiredMinRx: 50 * ms, DetectMult: 3}

func newTestMachine(t *testing.T) *Machine {
	t.Helper()
	m, err := NewMachine(MachineConfig{Timers: fast, LocalDiscr: ourDisc, Rand: func() float64 { return 0 }}, t0)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// peer builds a packet from the remote system.
func peer(state State, your uint32) *Packet {
	return &Packet{State: state, DetectMult: 3, MyDiscr: remDisc, YourDiscr: your,
		DesiredMinTx: 50 * ms, RequiredMinRx: 50 * ms}
}

func recv(t *testing.T, m *Machine, now time.Time, p *Packet) Output {
	t.Helper()
	out, err := m.Receive(now, p)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func wantTransition(t *testing.T, out Output, from, to State, diag Diag) {
	t.Helper()
	if !out.Changed || out.Transition != (Transition{from, to, diag}) {
		t.Fatalf("got changed=%v %+v, want %s -> %s (%s)", out.Changed, out.Transition, from, to, diag)
	}
	if !out.Send || out.Packet.State != to {
		t.Fatalf("state change must send a packet with the new state, got send=%v %v", out.Send, out.Packet)
	}
}

func wantNoChange(t *testing.T, m *Machine, out Output, state State) {
	t.Helper()
	if out.Changed || m.State() != state {
		t.Fatalf("unexpected change %+v, state %s, want %s", out.Transition, m.State(), state)
	}
}

// upMachine brings a machine Up through Down -> Init -> Up.
func upMachine(t *testing.T) (*Machine, time.Time) {
	m := newTestMachine(t)
	now := t0.Add(10 * ms)
	wantTransition(t, recv(t, m, now, peer(StateDown, 0)), StateDown, StateInit, DiagNone)
	now = now.Add(10 * ms)
	wantTransition(t, recv(t, m, now, peer(StateUp, ourDisc)), StateInit, StateUp, DiagNone)
	return m, now
}

func TestFirstPacketIsDownAtSlowRate(t *testing.T) {
	m := newTestMachine(t)
	out := m.Advance(t0)
	if !out.Send {
		t.Fatal("no first packet")
	}
	p := out.Packet
	if p.State != StateDown || p.MyDiscr != ourDisc || p.YourDiscr != 0 || p.DesiredMinTx != SlowTxInterval ||
		p.RequiredMinRx != 50*ms || p.DetectMult != 3 || p.Poll || p.Final {
		t.Fatalf("first packet %v", p)
	}
	if got := m.NextDeadline().Sub(t0); got != SlowTxInterval {
		t.Fatalf("next packet after %v, want %v (slow rate, zero jitter)", got, SlowTxInterval)
	}
	if out := m.Advance(t0.Add(SlowTxInterval - 1)); out.Send {
		t.Fatal("sent before the interval")
	}
	if out := m.Advance(t0.Add(SlowTxInterval)); !out.Send {
		t.Fatal("did not send at the interval")
	}
}

func TestRandomDiscriminatorNonZero(t *testing.T) {
	seen := map[uint32]bool{}
	for range 20 {
		m, err := NewMachine(MachineConfig{Timers: fast}, t0)
		if err != nil {
			t.Fatal(err)
		}
		if m.LocalDiscr() == 0 {
			t.Fatal("zero discriminator")
		}
		seen[m.LocalDiscr()] = true
	}
	if len(seen) < 15 {
		t.Fatalf("discriminators not random: %d distinct of 20", len(seen))
	}
}

// TestTransitions walks the state diagram of RFC 5880 6.2 and the
// reception rules of 6.8.6.
func TestTransitions(t *testing.T) {
	type step struct {
		rx       State
		want     State
		diag     Diag
		changing bool
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"Down+Down->Init, Init+Up->Up", []step{{StateDown, StateInit, DiagNone, true}, {StateUp, StateUp, DiagNone, true}}},
		{"Down+Init->Up", []step{{StateInit, StateUp, DiagNone, true}}},
		{"Init+Init->Up", []step{{StateDown, StateInit, DiagNone, true}, {StateInit, StateUp, DiagNone, true}}},
		{"Down+Up stays Down", []step{{StateUp, StateDown, DiagNone, false}}},
		{"Down+AdminDown stays Down", []step{{StateAdminDown, StateDown, DiagNone, false}}},
		{"Init+Down stays Init", []step{{StateDown, StateInit, DiagNone, true}, {StateDown, StateInit, DiagNone, false}}},
		{"Init+AdminDown->Down", []step{{StateDown, StateInit, DiagNone, true}, {StateAdminDown, StateDown, DiagNeighborDown, true}}},
		{"Up+Up stays Up", []step{{StateInit, StateUp, DiagNone, true}, {StateUp, StateUp, DiagNone, false}}},
		{"Up+Init stays Up", []step{{StateInit, StateUp, DiagNone, true}, {StateInit, StateUp, DiagNone, false}}},
		{"Up+Down->Down", []step{{StateInit, StateUp, DiagNone, true}, {StateDown, StateDown, DiagNeighborDown, true}}},
		{"Up+AdminDown->Down", []step{{StateInit, StateUp, DiagNone, true}, {StateAdminDown, StateDown, DiagNeighborDown, true}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newTestMachine(t)
			now := t0
			for _, s := range c.steps {
				now = now.Add(10 * ms)
				from := m.State()
				your := uint32(ourDisc)
				if s.rx == StateDown || s.rx == StateAdminDown {
					your = 0
				}
				out := recv(t, m, now, peer(s.rx, your))
				if s.changing {
					wantTransition(t, out, from, s.want, s.diag)
				} else {
					wantNoChange(t, m, out, s.want)
				}
				if m.Status().Diag != s.diag {
					t.Fatalf("local diag %q, want %q", m.Status().Diag, s.diag)
				}
			}
		})
	}
}

func TestWrongDiscriminatorIgnored(t *testing.T) {
	m, now := upMachine(t)
	if _, err := m.Receive(now, peer(StateDown, ourDisc+1)); err == nil {
		t.Fatal("packet for another discriminator accepted")
	}
	if m.State() != StateUp {
		t.Fatalf("state %s after foreign packet", m.State())
	}
}

func TestDetectionTimeExpiry(t *testing.T) {
	m := newTestMachine(t)
	now := t0.Add(10 * ms)
	p := peer(StateInit, 0)
	p.DetectMult, p.DesiredMinTx = 5, 100*ms // remote 100 ms x 5, our rx 50 ms
	wantTransition(t, recv(t, m, now, p), StateDown, StateUp, DiagNone)
	// Detection time = remote mult x max(our required min rx, remote desired min tx).
	if got, want := m.DetectionTime(), 500*ms; got != want {
		t.Fatalf("detection time %v, want %v", got, want)
	}
	deadline := now.Add(500 * ms)
	for at := now; at.Before(deadline); at = m.NextDeadline() {
		if out := m.Advance(at); out.Changed {
			t.Fatalf("went %s at %v, before the detection time", out.Transition.To, at.Sub(now))
		}
	}
	out := m.Advance(deadline)
	wantTransition(t, out, StateUp, StateDown, DiagControlDetectExpired)
	st := m.Status()
	if st.RemoteDiscr != 0 || out.Packet.YourDiscr != 0 || out.Packet.Diag != DiagControlDetectExpired {
		t.Fatalf("after expiry: remote discr %#x, packet %v", st.RemoteDiscr, out.Packet)
	}
	// A larger local required min rx dominates.
	m2 := newTestMachine(t)
	if _, err := m2.SetTimers(t0, Timers{DesiredMinTx: 50 * ms, RequiredMinRx: 300 * ms, DetectMult: 3}); err != nil {
		t.Fatal(err)
	}
	recv(t, m2, now, peer(StateDown, 0))
	if got := m2.DetectionTime(); got != 900*ms {
		t.Fatalf("detection time %v, want 900ms", got)
	}
}

func TestDetectionExpiryInInit(t *testing.T) {
	m := newTestMachine(t)
	recv(t, m, t0, peer(StateDown, 0))
	out := m.Advance(t0.Add(m.DetectionTime()))
	wantTransition(t, out, StateInit, StateDown, DiagControlDetectExpired)
}

func TestPacketsResetDetectionTimer(t *testing.T) {
	m, now := upMachine(t)
	for range 10 {
		now = now.Add(40 * ms)
		recv(t, m, now, peer(StateUp, ourDisc))
		if out := m.Advance(now.Add(100 * ms)); out.Changed {
			t.Fatal("went down although packets keep arriving")
		}
	}
}

func TestPollSequenceOnUp(t *testing.T) {
	m := newTestMachine(t)
	out := recv(t, m, t0, peer(StateInit, 0))
	// Up: fast timers are advertised with Poll until the peer answers Final.
	if !out.Packet.Poll || out.Packet.DesiredMinTx != 50*ms {
		t.Fatalf("first Up packet %v, want Poll and desired tx 50ms", out.Packet)
	}
	if m.TxInterval() != 50*ms {
		t.Fatalf("tx interval %v: a faster rate applies at once", m.TxInterval())
	}
	now := t0
	for range 3 {
		now = m.NextDeadline()
		if out := m.Advance(now); !out.Send || !out.Packet.Poll {
			t.Fatalf("periodic packet during poll: %v", out.Packet)
		}
		recv(t, m, now, peer(StateUp, ourDisc))
	}
	f := peer(StateUp, ourDisc)
	f.Final = true
	recv(t, m, now, f)
	if m.Status().Polling {
		t.Fatal("Final did not end the poll sequence")
	}
	if out := m.Advance(m.NextDeadline()); !out.Send || out.Packet.Poll {
		t.Fatalf("packet after Final still polls: %v", out.Packet)
	}
}

func TestAnswerPollWithFinal(t *testing.T) {
	m, now := upMachine(t)
	p := peer(StateUp, ourDisc)
	p.Poll, p.DesiredMinTx = true, 200*ms
	out := recv(t, m, now, p)
	if !out.Send || !out.Packet.Final || out.Packet.Poll {
		t.Fatalf("answer to Poll: send=%v %v, want Final without Poll", out.Send, out.Packet)
	}
	if got := m.DetectionTime(); got != 600*ms {
		t.Fatalf("detection time %v after the peer slowed to 200ms, want 600ms", got)
	}
}

func TestSetTimersWhileUp(t *testing.T) {
	m, now := upMachine(t)
	f := peer(StateUp, ourDisc)
	f.Final = true
	recv(t, m, now, f) // end the poll of coming Up
	// Slower TX and faster RX must wait for Final (RFC 5880 6.8.3).
	out, err := m.SetTimers(now, Timers{DesiredMinTx: 300 * ms, RequiredMinRx: 50 * ms, DetectMult: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !out.Send || !out.Packet.Poll || out.Packet.DesiredMinTx != 300*ms {
		t.Fatalf("timer change packet %v, want Poll with 300ms", out.Packet)
	}
	if m.TxInterval() != 50*ms {
		t.Fatalf("tx interval %v changed before Final", m.TxInterval())
	}
	recv(t, m, now, f)
	if m.TxInterval() != 300*ms || m.Status().Polling {
		t.Fatalf("after Final: tx %v polling %v", m.TxInterval(), m.Status().Polling)
	}
	// Faster RX: the detection time keeps the old RX until Final.
	if _, err := m.SetTimers(now, Timers{DesiredMinTx: 300 * ms, RequiredMinRx: 200 * ms, DetectMult: 3}); err != nil {
		t.Fatal(err)
	}
	recv(t, m, now, f)
	if _, err := m.SetTimers(now, Timers{DesiredMinTx: 300 * ms, RequiredMinRx: 100 * ms, DetectMult: 3}); err != nil {
		t.Fatal(err)
	}
	recv(t, m, now, peer(StateUp, ourDisc))
	if got := m.DetectionTime(); got != 600*ms {
		t.Fatalf("detection time %v before Final, want the old 600ms", got)
	}
	recv(t, m, now, f)
	if got := m.DetectionTime(); got != 300*ms {
		t.Fatalf("detection time %v after Final, want 300ms", got)
	}
	if _, err := m.SetTimers(now, Timers{DesiredMinTx: 10 * ms, RequiredMinRx: 50 * ms, DetectMult: 3}); err == nil {
		t.Fatal("10ms accepted")
	}
}

func TestBackToSlowWhenDown(t *testing.T) {
	m, now := upMachine(t)
	out := recv(t, m, now, peer(StateDown, 0))
	wantTransition(t, out, StateUp, StateDown, DiagNeighborDown)
	if out.Packet.DesiredMinTx != SlowTxInterval || out.Packet.Poll || m.TxInterval() != SlowTxInterval {
		t.Fatalf("down packet %v, tx interval %v: want the slow rate", out.Packet, m.TxInterval())
	}
}

func TestAdminDown(t *testing.T) {
	m, now := upMachine(t)
	out := m.SetAdminDown(now, true)
	wantTransition(t, out, StateUp, StateAdminDown, DiagAdminDown)
	if out.Packet.Diag != DiagAdminDown {
		t.Fatalf("packet %v", out.Packet)
	}
	// Packets are ignored in AdminDown, and nothing expires.
	wantNoChange(t, m, recv(t, m, now, peer(StateDown, 0)), StateAdminDown)
	if out := m.Advance(now.Add(time.Hour)); out.Changed {
		t.Fatal("AdminDown changed on a timer")
	}
	wantTransition(t, m.SetAdminDown(now, false), StateAdminDown, StateDown, DiagNone)
	wantTransition(t, recv(t, m, now, peer(StateDown, 0)), StateDown, StateInit, DiagNone)
}

func TestNoPeriodicWhenRemoteMinRxZero(t *testing.T) {
	m, now := upMachine(t)
	p := peer(StateUp, ourDisc)
	p.RequiredMinRx = 0
	recv(t, m, now, p)
	if m.TxInterval() != 0 {
		t.Fatalf("tx interval %v, want none", m.TxInterval())
	}
	if d := m.NextDeadline(); !d.Equal(now.Add(m.DetectionTime())) {
		t.Fatalf("next deadline %v is not the detection deadline", d.Sub(now))
	}
	if out := m.Advance(now.Add(time.Millisecond)); out.Send {
		t.Fatal("sent a periodic packet to a peer that wants none")
	}
}

func TestRemoteDemandStopsPeriodic(t *testing.T) {
	m, now := upMachine(t)
	p := peer(StateUp, ourDisc)
	p.Demand = true
	recv(t, m, now, p)
	if m.TxInterval() != 0 {
		t.Fatalf("tx interval %v with remote demand mode", m.TxInterval())
	}
}

func TestJitter(t *testing.T) {
	for _, c := range []struct {
		mult   uint8
		r      float64
		lo, hi time.Duration
	}{
		{3, 0, 50 * ms, 50 * ms},
		{3, 0.999999, 37500 * time.Microsecond, 37600 * time.Microsecond},
		{1, 0, 45 * ms, 45 * ms},
		{1, 0.999999, 37500 * time.Microsecond, 37600 * time.Microsecond},
	} {
		m, err := NewMachine(MachineConfig{Timers: Timers{DesiredMinTx: 50 * ms, RequiredMinRx: 50 * ms, DetectMult: c.mult},
			LocalDiscr: 1, Rand: func() float64 { return c.r }}, t0)
		if err != nil {
			t.Fatal(err)
		}
		p := peer(StateInit, 0)
		recv(t, m, t0, p) // Up, sends at once and schedules the next packet
		got := m.NextDeadline().Sub(t0)
		if got < c.lo || got > c.hi {
			t.Errorf("mult %d rand %v: interval %v, want %v..%v", c.mult, c.r, got, c.lo, c.hi)
		}
	}
}

func TestTimersValidate(t *testing.T) {
	for _, bad := range []Timers{
		{DesiredMinTx: 49 * ms, RequiredMinRx: 50 * ms, DetectMult: 3},
		{DesiredMinTx: 50 * ms, RequiredMinRx: 0, DetectMult: 3},
		{DesiredMinTx: 50 * ms, RequiredMinRx: 50 * ms},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
