package ike

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cgwd/cgwd/pkg/ike/wire"
)

// IKE version mismatches (issue 12) under ike_version 2 (under any, an
// IKEv1 message or refusal may switch the tunnel to IKEv1 instead: any.go
// and takeIKEv1, initWait, fallBack below). A peer that
// speaks IKEv1 only either sends IKEv1 (ISAKMP major version 1) messages,
// which are counted and named in a rate-limited log line, or refuses our
// IKE_SA_INIT, which is named with both sides' versions and proposals. An
// IKEv1 message leaves no state but the two timestamps below: it is
// unauthenticated and may be forged.

// v1LogEvery is the least time between two log lines about IKEv1 messages
// from the peer.
const v1LogEvery = time.Minute

// v1Recent is how long an IKEv1 message from the peer is remembered for
// naming the peer's version when it refuses our IKE_SA_INIT.
const v1Recent = 10 * time.Minute

// ourVersion is what every version log line says cgwd speaks.
const ourVersion = "ikev2"

// v1HintIKEv2 is what an operator with an IKEv1-only AWS tunnel must do.
const v1HintIKEv2 = "set the AWS tunnel's IKE versions to include ikev2"

// receivedIKEv1 counts an IKEv1 message b from the peer and logs it, at
// most once per v1LogEvery.
func (s *Session) receivedIKEv1(b []byte, now time.Time) {
	s.drops.add(DropIKEv1)
	s.v1Seen = now
	if !s.v1Logged.IsZero() && now.Sub(s.v1Logged) < v1LogEvery {
		return
	}
	s.v1Logged = now
	what := wire.V1ExchangeName(b)
	if sa := s.sas.ike; sa != nil && sa.state == stEstablished {
		// The peer speaks IKEv2 with us: this is a stray or forged message,
		// not the peer's version, and must not mark the tunnel failed.
		s.log.Warn("IKEv1 message from the peer's address while the IKEv2 SA is up: ignored", "peer_sent", what,
			"ikev1_messages", s.drops[DropIKEv1].Load())
		return
	}
	if sa := s.sas.ike; sa != nil && sa.state == stInitSent && binary.BigEndian.Uint64(b) == sa.spiI {
		what += " answering our IKE_SA_INIT"
	}
	s.fail("peer speaks IKEv1 only; cgwd speaks IKEv2: "+v1HintIKEv2,
		"peer_version", fmt.Sprintf("ikev1 (ISAKMP %d.%d)", b[17]>>4, b[17]&0xf), "peer_sent", what,
		"our_version", ourVersion, "ikev1_messages", s.drops[DropIKEv1].Load())
}

// peerVersion is what is known of the peer's IKE version when it refused
// or ignored our IKE_SA_INIT.
func (s *Session) peerVersion(now time.Time) string {
	if !s.v1Seen.IsZero() && now.Sub(s.v1Seen) < v1Recent {
		return fmt.Sprintf("ikev1 (it sent IKEv1 %s ago)", now.Sub(s.v1Seen).Round(time.Second))
	}
	return "unknown (no IKEv1 message from it either)"
}

// versionArgs are the log arguments naming both sides' versions and
// proposals.
func (s *Session) versionArgs(exch string) []any {
	return []any{"exchange", exch, "our_version", ourVersion, "peer_version", s.peerVersion(s.now()),
		"our_ike_proposals", proposalsString(s.cfg.IKEProposals), "our_esp_proposals", proposalsString(s.cfg.ESPProposals)}
}

// takeIKEv1 handles an IKEv1 message from the peer. An ike_version any
// tunnel that can speak IKEv1 switches to it and hands it the message,
// unless this session has an SA to lose; such a message is only counted
// (logged as ignored while the IKE SA is established). Otherwise it is
// counted and named (receivedIKEv1).
func (s *Session) takeIKEv1(p packet) {
	if s.any == nil || s.any.w.v1err != nil {
		s.receivedIKEv1(p.b, s.now())
		return
	}
	if sa := s.sas.ike; sa != nil && sa.state == stEstablished {
		s.receivedIKEv1(p.b, s.now())
		return
	}
	if !s.busy() && s.offerSwitch("the peer sent IKEv1 ("+wire.V1ExchangeName(p.b)+")", p.b, p.natt) == switchTaken {
		return
	}
	s.drops.add(DropIKEv1)
}

// initWait is how long our IKE_SA_INIT waits for an answer: dpd_timeout,
// or AnyInitWait when an ike_version any tunnel can fall back to IKEv1.
func (s *Session) initWait() time.Duration {
	if s.any == nil || s.any.w.v1err != nil || s.any.w.silenceIsOutage(s) {
		return s.cfg.DPDTimeout
	}
	return min(s.cfg.DPDTimeout, AnyInitWait)
}

// limitInitWait makes our outstanding IKE_SA_INIT on sa give up after
// initWait.
func (s *Session) limitInitWait(sa *ikeSA) {
	if p := sa.req; p != nil {
		p.deadline = earliest(p.deadline, s.now().Add(s.initWait()))
	}
}

// fallBack offers the switch to IKEv1 for reason when our IKE_SA_INIT
// failed; when the tunnel takes it, the attempt is dropped without a retry
// (the switch replaces this session) and true returned.
func (s *Session) fallBack(reason string) bool {
	if s.offerSwitch(reason, nil, false) != switchTaken {
		return false
	}
	s.sas.ike = nil
	return true
}
