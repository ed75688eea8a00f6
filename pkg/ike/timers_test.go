package ike

import (
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/ike/wire"
)

// armed reads which timers of s are set, and for when, on its loop.
func armed(t *testing.T, s *Session) (at [numTimers]time.Time, now time.Time, want [numTimers]time.Time) {
	t.Helper()
	onLoop(t, s, func() {
		now = time.Now()
		s.arm(now) // what the loop does after this function
		at = s.timers.at
		sa, c := s.sas.ike, s.sas.child
		if sa != nil && sa.req != nil {
			want[tRetransmit] = earliest(sa.req.next, sa.req.deadline)
		}
		if sa != nil && sa.req == nil && c != nil {
			want[tNext] = earliest(sa.lastRecv.Add(s.cfg.DPDDelay), earliest(sa.rekeyAt, earliest(c.rekeyAt, now.Add(seqCheckInterval))))
		}
		if sa != nil && c != nil {
			want[tExpiry] = earliest(sa.expireAt, c.expireAt)
		}
	})
	return at, now, want
}

// TestTimersFollowEvents: the timers are set from what the events left,
// not polled. Established and idle, the next request (a liveness check,
// a rekey or the outbound sequence check) and the lifetimes are armed and
// no retransmission is; a request arms its retransmission and holds the
// next one back until its answer.
func TestTimersFollowEvents(t *testing.T) {
	a, b := established(t)
	at, _, want := armed(t, a.s)
	for _, k := range []timerKind{tRetransmit, tHalfOpen, tInitErr, tRetry, tExpiry, tNext} {
		if !at[k].Equal(want[k]) {
			t.Errorf("established: timer %d armed for %v, want %v", k, at[k], want[k])
		}
	}
	if at[tNext].IsZero() || at[tExpiry].IsZero() {
		t.Fatal("established session without its next-request or lifetime timer")
	}
	// A request no one answers: the link drops, the retransmission is armed.
	b.link.mu.Lock()
	b.link.drop = true
	b.link.mu.Unlock()
	a.link.mu.Lock()
	a.link.drop = true
	a.link.mu.Unlock()
	onLoop(t, a.s, func() { a.s.dpd(a.s.sas.ike) })
	at, now, want2 := armed(t, a.s)
	if at[tRetransmit].IsZero() || !at[tRetransmit].Equal(want2[tRetransmit]) || !at[tRetransmit].After(now) {
		t.Errorf("request outstanding: retransmission armed for %v, want %v", at[tRetransmit], want2[tRetransmit])
	}
	if !at[tNext].IsZero() {
		t.Errorf("request outstanding: next request armed for %v, want none (window 1)", at[tNext])
	}
	// The responder's half-open SA arms its expiry.
	h := wire.Header{SPIi: 0x77}
	onLoop(t, b.s, func() { b.s.sas.addHalf(&ikeSA{spiI: h.SPIi, state: stRespInit, lastRecv: time.Now()}) })
	at, _, _ = armed(t, b.s)
	if at[tHalfOpen].IsZero() {
		t.Error("half-open SA without its expiry timer")
	}
}
