package ike

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cgwd/cgwd/pkg/ike/wire"
)

// IKE version mismatches (issue 12): cgwd speaks IKEv2 only. A peer that
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
	return []any{"exchange", exch, "our_version", ourVersion, "peer_version", s.peerVersion(time.Now()),
		"our_ike_proposals", proposalsString(s.cfg.IKEProposals), "our_esp_proposals", proposalsString(s.cfg.ESPProposals)}
}
