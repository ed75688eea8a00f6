package ike

import (
	mrand "math/rand/v2"
	"time"
)

// Timers: retransmission, liveness checks, rekeys, lifetimes, half-open
// expiry and the initiator's retries.

func (s *Session) tick(now time.Time) {
	for _, sa := range []*ikeSA{s.sas.ike, s.sas.old, s.sas.spare} {
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
			s.tr.SendIKE(p.data, p.natt)
		}
	}
	s.expireHalfOpen(now)
	s.initErrExpired(now)
	sa := s.sas.ike
	if sa == nil {
		if s.cfg.Initiate && !s.retryAt.IsZero() && now.After(s.retryAt) {
			s.retryAt = time.Time{}
			s.initiate()
		}
		return
	}
	if sa.state != stEstablished {
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
		return
	}
	if sa.req != nil {
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
		s.retryAt = time.Now().Add(200 * time.Millisecond)
		return
	}
	d := s.cfg.RetryInterval << min(s.failures, 3)
	s.failures++
	s.retryAt = time.Now().Add(d)
	s.log.Info("will retry", "in", d)
}
