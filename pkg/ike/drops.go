package ike

import "sync/atomic"

// DropReason says why a received IKE message was dropped before it could
// change any state.
type DropReason uint8

// Why IKE messages are dropped.
const (
	// DropMalformed: the header or a payload does not parse.
	DropMalformed DropReason = iota
	// DropUnencrypted: a message after IKE_SA_INIT without an SK payload.
	DropUnencrypted
	// DropBadICV: the SK payload's integrity check failed.
	DropBadICV
	// DropUnknownSPI: no IKE SA (or half-open SA) has these SPIs.
	DropUnknownSPI
	// DropWindow: a message ID outside the window, or a response to no
	// outstanding request.
	DropWindow
	// DropCookie: an IKE_SA_INIT without the valid COOKIE the responder
	// demands under load (it was answered with a COOKIE).
	DropCookie
	// DropHalfOpen: an IKE_SA_INIT refused because the half-open table is full.
	DropHalfOpen
	// DropRate: the receive queue was full.
	DropRate
	// DropRetransmitMismatch: a request with the message ID of the last
	// one answered but other content: not a retransmission.
	DropRetransmitMismatch
	// DropIKEv1: an IKEv1 (ISAKMP major version 1) message to an IKEv2
	// session (ike_version 2, or any while it keeps IKEv2).
	DropIKEv1
	numDropReasons
)

// DropReasons lists every reason, in counter order.
var DropReasons = []DropReason{DropMalformed, DropUnencrypted, DropBadICV, DropUnknownSPI, DropWindow,
	DropCookie, DropHalfOpen, DropRate, DropRetransmitMismatch, DropIKEv1}

var dropNames = [numDropReasons]string{"malformed", "unencrypted", "bad_icv", "unknown_spi", "window",
	"cookie", "half_open", "rate", "retransmit_mismatch", "ikev1"}

// String is the reason's metric label.
func (r DropReason) String() string {
	if r < numDropReasons {
		return dropNames[r]
	}
	return "unknown"
}

// dropCounters counts dropped messages per reason; safe for concurrent use.
type dropCounters [numDropReasons]atomic.Uint64

func (d *dropCounters) add(r DropReason) { d[r].Add(1) }

// snapshot is the counters by reason name.
func (d *dropCounters) snapshot() map[string]uint64 {
	m := make(map[string]uint64, numDropReasons)
	for _, r := range DropReasons {
		m[r.String()] = d[r].Load()
	}
	return m
}
