package ike

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/ike/wire"
)

// onLoop runs f on s's Run goroutine and waits for it.
func onLoop(t *testing.T, s *Session, f func()) { t.Helper(); runOn(t, s.ctl, f) }

// runOn runs f on the goroutine that reads ctl (a session's Run loop)
// and waits for it.
func runOn(t *testing.T, ctl chan<- func(), f func()) {
	t.Helper()
	done := make(chan struct{})
	select {
	case ctl <- func() { f(); close(done) }:
	case <-time.After(5 * time.Second):
		t.Fatal("session loop not answering")
	}
	<-done
}

// snapshot is what a test compares between the two ends; read on the loop.
type snapshot struct {
	spiI, spiR        uint64
	ikeOurs           bool // we initiated the exchange that made the IKE SA
	nextID, peerID    uint32
	busy              bool // a request of ours is outstanding on the IKE SA
	childIn, childOut uint32
	childOurs         bool
	retired           int
	pending           bool // a collision, old or spare SA not settled yet
}

func snap(t *testing.T, s *Session) (v snapshot) {
	t.Helper()
	onLoop(t, s, func() {
		if sa := s.sas.ike; sa != nil {
			v.spiI, v.spiR, v.ikeOurs, v.nextID, v.peerID, v.busy = sa.spiI, sa.spiR, sa.initiator, sa.nextID, sa.peerID, sa.req != nil
		}
		if c := s.sas.child; c != nil {
			v.childIn, v.childOut, v.childOurs = c.sa.InSPI, c.sa.OutSPI, c.ours
		}
		v.retired = len(s.sas.retired)
		v.pending = s.sas.rival != nil || s.sas.ikeRival != nil || s.sas.old != nil || s.sas.spare != nil
	})
	return v
}

// settled reports whether both ends agree on one IKE SA and one Child SA,
// with nothing left over from a rekey and the message IDs in step.
func settled(t *testing.T, a, b side) bool {
	sa, sb := snap(t, a.s), snap(t, b.s)
	if sa.busy || sb.busy || sa.pending || sb.pending || sa.retired != 0 || sb.retired != 0 {
		return false
	}
	a.dp.mu.Lock()
	na := len(a.dp.in)
	a.dp.mu.Unlock()
	b.dp.mu.Lock()
	nb := len(b.dp.in)
	b.dp.mu.Unlock()
	return sa.spiI == sb.spiI && sa.spiR == sb.spiR && sa.nextID == sb.peerID && sb.nextID == sa.peerID &&
		sa.childIn == sb.childOut && sa.childOut == sb.childIn && sa.childIn != 0 && na == 1 && nb == 1 && up(a, b)
}

// collisionCfg keeps DPD out of the way, so that the only requests are the
// rekeys the test starts.
func collisionCfg(local, remote string, initiate bool) Config {
	c := cfg(local, remote, "k", DefaultIKEProposal, DefaultESPProposal, initiate)
	c.DPDDelay, c.DPDTimeout = time.Minute, 20*time.Second
	return c
}

func collisionPair(t *testing.T) (a, b side) {
	t.Helper()
	ca, cb := collisionCfg("198.51.100.2", "203.0.113.10", true), collisionCfg("203.0.113.10", "198.51.100.2", false)
	la, lb := &syncBuf{}, &syncBuf{}
	ca.Logger, cb.Logger = slog.New(slog.NewTextHandler(la, nil)), slog.New(slog.NewTextHandler(lb, nil))
	a, b = pairUp(t, ca, cb, func(s *Session) { s.oldLinger = 50 * time.Millisecond })
	a.logs, b.logs = la, lb
	waitFor(t, 10*time.Second, "established", func() bool { return settled(t, a, b) })
	// The IKE_AUTH responder sends on the first Child SA once it has
	// answered, possibly before the initiator read the answer: there is no
	// older SA to break, so the checks start with the first rekey.
	for _, d := range []*fakeDP{a.dp, b.dp} {
		d.mu.Lock()
		d.violations = nil
		d.mu.Unlock()
	}
	return a, b
}

// collide makes both ends start a rekey (of the Child SA, or of the IKE SA
// with ike) before either sees the other's request, then lets the messages
// through: crossed makes each end see the peer's request before its own
// response (the textbook collision); otherwise both links open at once.
func collide(t *testing.T, a, b side, ike, crossed bool) {
	t.Helper()
	a.link.setHold(true)
	b.link.setHold(true)
	for _, x := range []side{a, b} {
		onLoop(t, x.s, func() {
			if ike {
				x.s.sas.ike.rekeyAt = time.Now()
			} else {
				x.s.sas.child.rekeyAt = time.Now()
			}
		})
	}
	waitFor(t, 5*time.Second, "both rekey requests sent", func() bool {
		return a.link.holds(wire.CreateChildSA, false) && b.link.holds(wire.CreateChildSA, false)
	})
	if !crossed {
		a.link.release(true)
		b.link.release(true)
		return
	}
	a.link.release(false) // A's request reaches B; B's answer stays held
	waitFor(t, 5*time.Second, "B answered A's request", func() bool { return b.link.holds(wire.CreateChildSA, true) })
	b.link.release(false) // B's request, then its answer, reach A
	waitFor(t, 5*time.Second, "A answered B's request", func() bool { return a.link.holds(wire.CreateChildSA, true) })
	a.link.release(true)
	b.link.release(true)
}

func dpState(d *fakeDP) (in []uint32, out *ChildSA, added, removed, violations []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for spi := range d.in {
		in = append(in, spi)
	}
	for _, s := range d.added {
		added = append(added, fmt.Sprintf("%08x", s))
	}
	for _, s := range d.removed {
		removed = append(removed, fmt.Sprintf("%08x", s))
	}
	return in, d.out, added, removed, append([]string(nil), d.violations...)
}

// checkChildOutcome asserts one surviving new Child SA on both ends, the
// outbound on it, every other SA ever installed removed, no
// make-before-break violation, and the counters.
func checkChildOutcome(t *testing.T, a, b side, before [2]snapshot, rekeysBefore [2]uint64, wantNew int) (aWon bool) {
	t.Helper()
	sa, sb := snap(t, a.s), snap(t, b.s)
	if sa.childIn == before[0].childIn || sb.childIn == before[1].childIn {
		t.Fatalf("Child SA not replaced: before %08x/%08x after %08x/%08x", before[0].childIn, before[1].childIn, sa.childIn, sb.childIn)
	}
	if sa.childOurs == sb.childOurs {
		t.Fatalf("both ends think the survivor was made by the same side (a ours=%v, b ours=%v)", sa.childOurs, sb.childOurs)
	}
	for i, x := range []side{a, b} {
		me := []snapshot{sa, sb}[i]
		in, out, added, removed, violations := dpState(x.dp)
		if len(violations) > 0 {
			t.Fatalf("side %d make-before-break violations: %v", i, violations)
		}
		if len(in) != 1 || in[0] != me.childIn {
			t.Fatalf("side %d inbound SAs %x, want only the survivor %08x", i, in, me.childIn)
		}
		if out == nil || out.InSPI != me.childIn {
			t.Fatalf("side %d outbound is %+v, want the survivor %08x", i, out, me.childIn)
		}
		// Everything installed but the survivor was removed: the old SA and,
		// after a full collision, the redundant one.
		if len(added) != 1+wantNew && wantNew > 0 {
			t.Fatalf("side %d installed %v, want the first SA and %d new ones", i, added, wantNew)
		}
		for _, s := range added {
			if s != fmt.Sprintf("%08x", me.childIn) && !slices.Contains(removed, s) {
				t.Fatalf("side %d: SA %s installed and never removed (removed %v)", i, s, removed)
			}
		}
		st := x.s.Status()
		if st.ChildRekeys != rekeysBefore[i]+1 {
			t.Fatalf("side %d ChildRekeys %d, want %d", i, st.ChildRekeys, rekeysBefore[i]+1)
		}
		if st.ChildInSPI != fmt.Sprintf("%08x", me.childIn) || st.ChildOutSPI != fmt.Sprintf("%08x", me.childOut) {
			t.Fatalf("side %d status SPIs %s/%s, want %08x/%08x", i, st.ChildInSPI, st.ChildOutSPI, me.childIn, me.childOut)
		}
		if st.Establishments != 1 || st.State != "established" {
			t.Fatalf("side %d re-established instead of rekeying: %+v", i, st)
		}
	}
	return sa.childOurs
}

// rekeyAgain proves the ends still work together after a collision: a
// plain Child SA rekey from A completes on both.
func rekeyAgain(t *testing.T, a, b side) {
	t.Helper()
	ra, rb := a.s.Status().ChildRekeys, b.s.Status().ChildRekeys
	onLoop(t, a.s, func() { a.s.sas.child.rekeyAt = time.Now() })
	waitFor(t, 10*time.Second, "a plain rekey after the collision", func() bool {
		return a.s.Status().ChildRekeys == ra+1 && b.s.Status().ChildRekeys == rb+1 && settled(t, a, b)
	})
	for i, d := range []*fakeDP{a.dp, b.dp} {
		if _, _, _, _, v := dpState(d); len(v) > 0 {
			t.Fatalf("side %d violations after the plain rekey: %v", i, v)
		}
	}
}

func TestSimultaneousChildRekey(t *testing.T) {
	var won, lost, crossedRuns atomic.Int32
	t.Run("runs", func(t *testing.T) {
		for i := range 24 {
			crossed := i%3 != 2 // two thirds textbook collisions, one third both links opened at once
			t.Run(fmt.Sprintf("%d-crossed=%v", i, crossed), func(t *testing.T) {
				t.Parallel()
				a, b := collisionPair(t)
				before := [2]snapshot{snap(t, a.s), snap(t, b.s)}
				rekeys := [2]uint64{a.s.Status().ChildRekeys, b.s.Status().ChildRekeys}
				collide(t, a, b, false, crossed)
				waitFor(t, 10*time.Second, "collision settled", func() bool { return settled(t, a, b) })
				wantNew := 0
				if crossed {
					wantNew = 2 // both exchanges completed: two new SAs, one redundant
					crossedRuns.Add(1)
				}
				if checkChildOutcome(t, a, b, before, rekeys, wantNew) {
					won.Add(1)
				} else {
					lost.Add(1)
				}
				rekeyAgain(t, a, b)
			})
		}
	})
	t.Logf("A's exchange survived %d times, B's %d times (%d textbook collisions)", won.Load(), lost.Load(), crossedRuns.Load())
	if !t.Failed() && (won.Load() == 0 || lost.Load() == 0) {
		t.Fatalf("random nonces should let each side win sometimes: A won %d, B won %d", won.Load(), lost.Load())
	}
}

func TestSimultaneousIKERekey(t *testing.T) {
	var won, lost atomic.Int32
	t.Run("runs", func(t *testing.T) {
		for i := range 16 {
			crossed := i%4 != 3
			t.Run(fmt.Sprintf("%d-crossed=%v", i, crossed), func(t *testing.T) {
				t.Parallel()
				a, b := collisionPair(t)
				before := snap(t, a.s)
				ike := [2]uint64{a.s.Status().IKERekeys, b.s.Status().IKERekeys}
				child := [2]uint64{a.s.Status().ChildRekeys, b.s.Status().ChildRekeys}
				collide(t, a, b, true, crossed)
				waitFor(t, 10*time.Second, "collision settled", func() bool { return settled(t, a, b) })
				sa, sb := snap(t, a.s), snap(t, b.s)
				if sa.spiI == before.spiI || sa.spiR == before.spiR {
					t.Fatalf("IKE SA not replaced: %016x/%016x", sa.spiI, sa.spiR)
				}
				if sa.ikeOurs == sb.ikeOurs {
					t.Fatalf("both ends think the surviving IKE SA was made by the same side")
				}
				if sa.childIn != before.childIn {
					t.Fatalf("Child SA changed by an IKE rekey: %08x -> %08x", before.childIn, sa.childIn)
				}
				for i, x := range []side{a, b} {
					st := x.s.Status()
					if st.IKERekeys != ike[i]+1 || st.ChildRekeys != child[i] || st.Establishments != 1 {
						t.Fatalf("side %d counters %+v, want IKE rekeys %d, Child rekeys %d", i, st, ike[i]+1, child[i])
					}
					if st.SPIi != fmt.Sprintf("%016x", sa.spiI) || st.SPIr != fmt.Sprintf("%016x", sa.spiR) {
						t.Fatalf("side %d status SPIs %s/%s, want %016x/%016x", i, st.SPIi, st.SPIr, sa.spiI, sa.spiR)
					}
					if _, _, _, _, v := dpState(x.dp); len(v) > 0 {
						t.Fatalf("side %d violations: %v", i, v)
					}
				}
				if crossed {
					// Both exchanges completed and each end settled it.
					winner, loser := a.logs.String(), b.logs.String()
					if !sa.ikeOurs {
						winner, loser = loser, winner
					}
					if !strings.Contains(winner, "IKE SA rekey collision won") || !strings.Contains(loser, "IKE SA rekey collision lost") {
						t.Fatalf("collision not settled by the nonces on both ends:\nwinner:\n%s\nloser:\n%s", winner, loser)
					}
					if sa.ikeOurs {
						won.Add(1)
					} else {
						lost.Add(1)
					}
				}
				// The Child SA moved to the surviving IKE SA: rekeying it
				// there (keys from the new SK_d) works on both ends.
				rekeyAgain(t, a, b)
			})
		}
	})
	t.Logf("A's new IKE SA survived %d times, B's %d times", won.Load(), lost.Load())
	if !t.Failed() && (won.Load() == 0 || lost.Load() == 0) {
		t.Fatalf("random nonces should let each side win sometimes: A won %d, B won %d", won.Load(), lost.Load())
	}
}

// Back to back: a Child SA collision right after an IKE SA collision.
func TestCollisionsBackToBack(t *testing.T) {
	a, b := collisionPair(t)
	for i := range 3 {
		collide(t, a, b, true, true)
		waitFor(t, 10*time.Second, fmt.Sprintf("IKE collision %d settled", i), func() bool { return settled(t, a, b) })
		collide(t, a, b, false, true)
		waitFor(t, 10*time.Second, fmt.Sprintf("Child collision %d settled", i), func() bool { return settled(t, a, b) })
	}
	for i, x := range []side{a, b} {
		st := x.s.Status()
		if st.IKERekeys != 3 || st.ChildRekeys != 3 || st.Establishments != 1 {
			t.Fatalf("side %d counters: %+v", i, st)
		}
		if _, _, _, _, v := dpState(x.dp); len(v) > 0 {
			t.Fatalf("side %d violations: %v", i, v)
		}
	}
}

func TestLostCollisionComparesOctets(t *testing.T) {
	for _, tc := range []struct {
		ni, nr, pi, pr string
		lost           bool
	}{
		{"\x01\xff", "\x09", "\x02", "\x03", true},  // ours holds 01ff, the lowest
		{"\x05", "\x04", "\x03\x00", "\x09", false}, // the peer's holds 0300
		{"\x02\x00", "\x09", "\x02", "\x09", false}, // 02 is a prefix of 0200: the peer's is lower
		{"\x02", "\x09", "\x02\x00", "\x09", true},
	} {
		if got := lostCollision([]byte(tc.ni), []byte(tc.nr), []byte(tc.pi), []byte(tc.pr)); got != tc.lost {
			t.Errorf("lostCollision(%x %x vs %x %x) = %v, want %v", tc.ni, tc.nr, tc.pi, tc.pr, got, tc.lost)
		}
		// The peer must come to the opposite conclusion.
		if got := lostCollision([]byte(tc.pi), []byte(tc.pr), []byte(tc.ni), []byte(tc.nr)); got == tc.lost {
			t.Errorf("both ends reach the same verdict for %x %x vs %x %x", tc.ni, tc.nr, tc.pi, tc.pr)
		}
	}
}

// syncBuf collects log output from the session goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// peerRequest makes B send A an encrypted request with payloads ps on the
// current IKE SA and returns A's answer.
func peerRequest(t *testing.T, b side, exch uint8, ps ...wire.Payload) *wire.Message {
	t.Helper()
	got := make(chan *wire.Message, 1)
	onLoop(t, b.s, func() {
		m := &wire.Message{Header: b.s.reqHeader(b.s.sas.ike, exch), Encrypted: true, Payloads: ps}
		b.s.request(b.s.sas.ike, m, "test request", func(r *wire.Message) { got <- r }, func() { close(got) })
	})
	select {
	case r, ok := <-got:
		if !ok {
			t.Fatal("no answer")
		}
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no answer")
	}
	return nil
}

func TestBadPeerRekeyAndDelete(t *testing.T) {
	var logs syncBuf
	ca := collisionCfg("198.51.100.2", "203.0.113.10", true)
	ca.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	a, b := pairUp(t, ca, collisionCfg("203.0.113.10", "198.51.100.2", false))
	waitFor(t, 10*time.Second, "established", func() bool { return settled(t, a, b) })
	spi := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

	// A delete for an SPI A never had: ignored, logged with the peer and SPI.
	r := peerRequest(t, b, wire.Informational, &wire.Delete{Protocol: wire.ProtoESP, SPIs: [][]byte{spi(0x1234abcd)}})
	if r.Get(wire.PayloadD) != nil {
		t.Fatalf("answer deletes something: %+v", r.Payloads)
	}
	if l := logs.String(); !strings.Contains(l, "peer deleted a Child SA we do not have") || !strings.Contains(l, "spi=1234abcd") ||
		!strings.Contains(l, "peer=203.0.113.10") {
		t.Fatalf("log lacks the unknown delete, its SPI or the peer:\n%s", l)
	}

	// A rekey of an SA A does not have: CHILD_SA_NOT_FOUND naming it.
	rekey := func(target uint32) *wire.Message {
		return peerRequest(t, b, wire.CreateChildSA, &wire.Notify{Protocol: wire.ProtoESP, SPI: spi(target), NotifyType: wire.NRekeySA},
			&wire.SA{Proposals: b.s.espOffer(0x4242, true)}, &wire.Nonce{Data: nonce()})
	}
	r = rekey(0x0badc0de)
	if n := r.Notify(wire.NChildSANotFound); n == nil || !bytes.Equal(n.SPI, spi(0x0badc0de)) {
		t.Fatalf("want CHILD_SA_NOT_FOUND for 0badc0de, got %+v", r.Payloads)
	}
	if l := logs.String(); !strings.Contains(l, "peer wants to rekey a Child SA we do not have") || !strings.Contains(l, "spi=0badc0de") {
		t.Fatalf("log lacks the unknown rekey:\n%s", l)
	}

	// A rekey of an SA A is deleting: TEMPORARY_FAILURE, logged.
	var dying uint32
	onLoop(t, a.s, func() {
		c := &child{sa: &ChildSA{InSPI: 0x5151, OutSPI: 0x6161, Suite: a.s.sas.child.sa.Suite, InKey: a.s.sas.child.sa.InKey,
			OutKey: a.s.sas.child.sa.OutKey}, expireAt: time.Now().Add(time.Minute), deleting: true}
		if err := a.s.addChild(c); err != nil {
			t.Error(err)
		}
		a.s.retire(c, time.Minute)
		dying = c.sa.OutSPI
	})
	r = rekey(dying)
	if r.Notify(wire.NTemporaryFailure) == nil {
		t.Fatalf("want TEMPORARY_FAILURE for a rekey of an SA being deleted, got %+v", r.Payloads)
	}
	if l := logs.String(); !strings.Contains(l, "already replaced or being deleted: TEMPORARY_FAILURE") || !strings.Contains(l, "spi=00006161") {
		t.Fatalf("log lacks the refused rekey:\n%s", l)
	}

	// A malformed REKEY_SA SPI and a malformed delete SPI inside SK: the
	// codec refuses them (TestPayloadRules), the session answers
	// INVALID_SYNTAX (RFC 7296 3.10.1), nothing panics.
	r = peerRequest(t, b, wire.CreateChildSA, &wire.Notify{Protocol: wire.ProtoESP, SPI: []byte{1, 2}, NotifyType: wire.NRekeySA},
		&wire.SA{Proposals: b.s.espOffer(0x4243, true)}, &wire.Nonce{Data: nonce()})
	if r.Notify(wire.NInvalidSyntax) == nil {
		t.Fatalf("want INVALID_SYNTAX, got %+v", r.Payloads)
	}
	if r = peerRequest(t, b, wire.Informational, &wire.Delete{Protocol: wire.ProtoESP, SPIs: [][]byte{{1, 2, 3}}}); r.Notify(wire.NInvalidSyntax) == nil {
		t.Fatalf("want INVALID_SYNTAX for a 3-byte delete SPI, got %+v", r.Payloads)
	}

	// Still one tunnel, message IDs in step, the real Child SA untouched.
	onLoop(t, a.s, func() { a.s.dropChild(a.s.sas.childByOutSPI(dying)) })
	waitFor(t, 5*time.Second, "still up", func() bool { return settled(t, a, b) })
	if st := a.s.Status(); st.State != "established" || st.Establishments != 1 {
		t.Fatalf("status after bad requests: %+v", st)
	}
}

// The peer wins a collision and deletes the old SA before our own
// response arrives; our response is late enough that the peer has rekeyed
// its SA again meanwhile. Our exchange's SA is still the redundant one: it
// must be deleted, not put in place of the newer SA.
func TestLateResponseAfterPeerWon(t *testing.T) {
	isResp := func(h wire.Header) bool { return h.Exchange == wire.CreateChildSA && h.IsResponse() }
	for attempt := 0; ; attempt++ {
		if attempt == 20 {
			t.Fatal("B never won in 20 collisions")
		}
		a, b := collisionPair(t)
		a.link.setHold(true)
		b.link.setHold(true)
		for _, x := range []side{a, b} {
			onLoop(t, x.s, func() { x.s.sas.child.rekeyAt = time.Now() })
		}
		waitFor(t, 5*time.Second, "both rekey requests sent", func() bool {
			return a.link.holds(wire.CreateChildSA, false) && b.link.holds(wire.CreateChildSA, false)
		})
		// B holds on to its answer to A's request from here on; all else flows.
		b.link.mu.Lock()
		b.link.only = isResp
		b.link.mu.Unlock()
		a.link.release(false)
		waitFor(t, 5*time.Second, "B answered A's request", func() bool { return b.link.holds(wire.CreateChildSA, true) })
		b.link.releaseIf(func(h wire.Header) bool { return !h.IsResponse() }) // B's request reaches A
		waitFor(t, 5*time.Second, "A answered B's request", func() bool { return a.link.holds(wire.CreateChildSA, true) })
		a.link.release(true) // B gets its answer and settles the collision
		var bWon bool
		waitFor(t, 5*time.Second, "B settled", func() bool {
			l := b.logs.String()
			bWon = strings.Contains(l, "collision won")
			return bWon || strings.Contains(l, "collision lost")
		})
		if !bWon {
			b.link.release(true)
			continue // A won: not the case under test
		}
		// B deleted the old SA, so A moved to B's new one; then B rekeys it.
		waitFor(t, 5*time.Second, "A on B's SA", func() bool { return snap(t, a.s).childIn == snap(t, b.s).childOut })
		rekeys := b.s.Status().ChildRekeys
		onLoop(t, b.s, func() { b.s.sas.child.rekeyAt = time.Now() })
		waitFor(t, 5*time.Second, "B's second rekey", func() bool {
			sa, sb := snap(t, a.s), snap(t, b.s)
			return b.s.Status().ChildRekeys == rekeys+1 && sa.childIn == sb.childOut && sa.retired == 0
		})
		current := snap(t, a.s).childIn
		b.link.release(true) // A's answer, at last
		waitFor(t, 10*time.Second, "settled", func() bool {
			return settled(t, a, b) && !a.link.holds(wire.CreateChildSA, true)
		})
		if got := snap(t, a.s).childIn; got != current {
			t.Fatalf("late answer replaced the current SA %08x with %08x", current, got)
		}
		if !strings.Contains(a.logs.String(), "collision lost") {
			t.Fatalf("A did not settle its late exchange as the loser:\n%s", a.logs.String())
		}
		for i, d := range []*fakeDP{a.dp, b.dp} {
			in, _, added, removed, v := dpState(d)
			if len(v) > 0 {
				t.Fatalf("side %d violations: %v", i, v)
			}
			for _, s := range added {
				if len(in) != 1 || (s != fmt.Sprintf("%08x", in[0]) && !slices.Contains(removed, s)) {
					t.Fatalf("side %d: SA %s left installed (in %x, removed %v)", i, s, in, removed)
				}
			}
		}
		rekeyAgain(t, a, b)
		return
	}
}
