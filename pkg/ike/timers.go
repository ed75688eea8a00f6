package ike

import (
	mrand "math/rand/v2"
	"time"
)

// Timers work like wireguard-go's device/timers.go: each purpose has a
// timer of its own, and nothing polls. After every event the Run loop
// handles (a message, a timer, a test's function) arm sets each timer from
// the state that event left: when the next retransmission or request
// timeout is due, when a half-open SA expires, and so on. A handler checks
// the state again when its timer fires, so a timer that fires early or
// for nothing is harmless; none may fire late.

// timerKind names the purpose of one of a session's timers.
type timerKind int

const (
	tRetransmit timerKind = iota // our requests: retransmissions and timeouts
	tHalfOpen                    // half-open SAs whose IKE_AUTH did not come
	tInitErr                     // an unauthenticated error answer to our IKE_SA_INIT
	tRetry                       // the initiator's next attempt after a failure
	tExpiry                      // hard lifetimes of the IKE and Child SAs
	tNext                        // our next request: a delete, a rekey or a liveness check
	numTimers
)

// seqCheckInterval is how often the outbound ESP sequence number is
// compared with seqRekey: the data path counts without telling the
// session. 2^24 packets of headroom last 16 s at a million packets a
// second.
const seqCheckInterval = time.Second

// minRearm is the least time between two firings of one timer, so that a
// handler that cannot act (a request that fails to encode) does not spin.
const minRearm = 10 * time.Millisecond

// timers are a session's timers; only the Run goroutine touches them.
type timers struct {
	t     [numTimers]*time.Timer
	at    [numTimers]time.Time // when each fires; zero when stopped
	fired [numTimers]time.Time // when each last fired
	now   func() time.Time     // the session's clock
}

func newTimers(now func() time.Time) *timers {
	ts := timers{now: now}
	for k := range ts.t {
		ts.t[k] = time.NewTimer(time.Hour)
		ts.t[k].Stop()
	}
	return &ts
}

// set makes timer k fire at at, or never when at is zero.
func (ts *timers) set(k timerKind, at time.Time) {
	if at.IsZero() {
		if !ts.at[k].IsZero() {
			ts.t[k].Stop()
			ts.at[k] = time.Time{}
		}
		return
	}
	if earliest := ts.fired[k].Add(minRearm); at.Before(earliest) {
		at = earliest
	}
	if at.Equal(ts.at[k]) {
		return
	}
	ts.at[k] = at
	ts.t[k].Reset(max(at.Sub(ts.now()), 0))
}

// fire notes that timer k fired.
func (ts *timers) fire(k timerKind, now time.Time) {
	ts.at[k], ts.fired[k] = time.Time{}, now
}

func (ts *timers) stop() {
	for _, t := range ts.t {
		t.Stop()
	}
}

// earliest is the earlier of two deadlines, zero meaning none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

// arm sets every timer from the session's state.
func (s *Session) arm(now time.Time) {
	ts := s.timers
	var retransmit time.Time
	for _, sa := range [...]*ikeSA{s.sas.ike, s.sas.old, s.sas.spare} {
		if sa != nil && sa.req != nil {
			retransmit = earliest(retransmit, earliest(sa.req.next, sa.req.deadline))
		}
	}
	ts.set(tRetransmit, retransmit)
	var halfOpen time.Time
	for _, sa := range s.sas.halves {
		halfOpen = earliest(halfOpen, sa.lastRecv.Add(s.cfg.HalfOpenTimeout))
	}
	ts.set(tHalfOpen, halfOpen)
	var initErr, retry time.Time
	sa := s.sas.ike
	if sa != nil && sa.state == stInitSent && sa.initErr != nil {
		initErr = sa.initErr.at.Add(initErrGrace)
	}
	if sa == nil && s.cfg.Initiate {
		retry = s.retryAt
	}
	ts.set(tInitErr, initErr)
	ts.set(tRetry, retry)
	if sa == nil || sa.state != stEstablished {
		ts.set(tExpiry, time.Time{})
		ts.set(tNext, time.Time{})
		return
	}
	ts.set(tExpiry, s.expiryDue())
	ts.set(tNext, s.nextDue(now))
}

// expiryDue is when the first lifetime onExpiry enforces ends.
func (s *Session) expiryDue() time.Time {
	at := s.sas.ike.expireAt
	for _, c := range s.sas.retired {
		at = earliest(at, c.expireAt)
	}
	if o := s.sas.old; o != nil && o.state == stDeleting && o.req == nil {
		at = earliest(at, o.expireAt)
	}
	if o := s.sas.spare; o != nil && o.req == nil {
		at = earliest(at, o.expireAt)
	}
	if c := s.sas.child; c != nil {
		at = earliest(at, c.expireAt)
	}
	return at
}

// nextDue is when onNext has a request to send on the established IKE
// SA, which carries one request at a time; zero while one is under way.
func (s *Session) nextDue(now time.Time) time.Time {
	sa, c := s.sas.ike, s.sas.child
	switch o := s.sas.old; {
	case sa.req != nil:
		return time.Time{}
	case o != nil && o.req == nil && o.state == stEstablished, c == nil:
		return now
	}
	at := sa.lastRecv.Add(s.cfg.DPDDelay)
	if !sa.rekeying && s.sas.old == nil && s.sas.spare == nil && s.sas.ikeRival == nil {
		at = earliest(at, sa.rekeyAt)
	}
	if !c.rekeying && s.sas.rival == nil {
		at = earliest(at, earliest(c.rekeyAt, now.Add(seqCheckInterval)))
	}
	return at
}

// onTimer runs the handler of timer k.
func (s *Session) onTimer(k timerKind, now time.Time) {
	s.timers.fire(k, now)
	switch k {
	case tRetransmit:
		s.retransmit(now)
	case tHalfOpen:
		s.expireHalfOpen(now)
	case tInitErr:
		s.initErrExpired(now)
	case tRetry:
		if s.sas.ike == nil && s.cfg.Initiate && !s.retryAt.IsZero() && now.After(s.retryAt) {
			s.retryAt = time.Time{}
			s.initiate()
		}
	case tExpiry:
		s.expire(now)
	case tNext:
		s.next(now)
	}
}

// retransmit resends our outstanding requests whose wait is over, and
// gives up those whose deadline passed.
func (s *Session) retransmit(now time.Time) {
	for _, sa := range [...]*ikeSA{s.sas.ike, s.sas.old, s.sas.spare} {
		if sa == nil || sa.req == nil {
			continue
		}
		p := sa.req
		if now.After(p.deadline) {
			sa.req = nil
			if p.onFail != nil {
				p.onFail()
			}
			continue
		}
		if now.After(p.next) {
			p.wait *= 2
			if p.wait > 8*time.Second {
				p.wait = 8 * time.Second
			}
			p.next = now.Add(p.wait)
			s.sendAll(p.data, p.natt)
		}
	}
}

// expire enforces the lifetimes of the established IKE SA and its Child
// SAs, and forgets replaced IKE SAs whose delete is over.
func (s *Session) expire(now time.Time) {
	sa := s.sas.ike
	if sa == nil || sa.state != stEstablished {
		return
	}
	if now.After(sa.expireAt) {
		s.log.Warn("IKE SA lifetime expired before a rekey completed")
		s.restart("IKE SA expired")
		return
	}
	for _, c := range append([]*child(nil), s.sas.retired...) {
		if now.After(c.expireAt) {
			s.dropChild(c)
		}
	}
	if o := s.sas.old; o != nil && o.state == stDeleting && o.req == nil && now.After(o.expireAt) {
		s.sas.old = nil
	}
	if o := s.sas.spare; o != nil && o.req == nil && now.After(o.expireAt) {
		s.sas.spare = nil
	}
	if c := s.sas.child; c != nil && now.After(c.expireAt) {
		s.log.Warn("Child SA lifetime expired before a rekey completed")
		s.restart("Child SA expired")
	}
}

// next sends the request that is due on the established IKE SA, if any:
// the delete of the SA an IKE rekey replaced, an IKE or Child SA rekey,
// or a liveness check.
func (s *Session) next(now time.Time) {
	sa := s.sas.ike
	if sa == nil || sa.state != stEstablished || sa.req != nil {
		return // message-ID window 1: one request at a time
	}
	switch {
	case s.sas.old != nil && s.sas.old.req == nil && s.sas.old.state == stEstablished:
		s.deleteOld()
	case now.After(sa.rekeyAt) && !sa.rekeying && s.sas.old == nil && s.sas.spare == nil && s.sas.ikeRival == nil:
		s.rekeyIKE()
	case s.sas.child != nil && !s.sas.child.rekeying && s.sas.rival == nil && (now.After(s.sas.child.rekeyAt) || s.dp.OutboundSeq() > seqRekey):
		s.rekeyChild()
	case s.sas.child == nil:
		s.restart("no Child SA")
	default:
		// Only IKE proves the peer hears us: inbound ESP alone (BFD, BGP
		// keepalives) would hide a path that is broken one way.
		if now.Sub(sa.lastRecv) >= s.cfg.DPDDelay {
			s.dpd(sa)
		}
	}
}

// rekeyTime is lifetime minus the margin and a random part of the fuzz.
func (s *Session) rekeyTime(from time.Time, life time.Duration) time.Time {
	margin := s.cfg.RekeyMargin
	if margin >= life {
		margin = life / 3
	}
	fuzz := time.Duration(mrand.Float64() * s.cfg.RekeyFuzz * float64(margin))
	d := life - margin - fuzz
	if d < life/3 {
		d = life / 3
	}
	return from.Add(d)
}

func (s *Session) scheduleRetry(soon bool) {
	if !s.cfg.Initiate {
		return
	}
	if soon {
		s.retryAt = s.now().Add(200 * time.Millisecond)
		return
	}
	d := s.cfg.RetryInterval << min(s.failures, 3)
	s.failures++
	s.retryAt = s.now().Add(d)
	s.log.Info("will retry", "in", d)
}
