package ike

import (
	"crypto/sha256"
	"errors"
	"sync/atomic"

	"github.com/cgwd/cgwd/pkg/ike/wire"
)

// IKE fragmentation (RFC 7383), receiving side: both ends announce support
// in IKE_SA_INIT, and a peer may then send an encrypted message as SKF
// fragments. Each fragment's ICV is verified before it is kept; one
// message per IKE SA is reassembled at a time, at most wire.MaxFragments
// fragments and maxReassembled bytes, so what an IKE SA holds for
// reassembly is bounded. The sending side is fragsend.go.

// FragmentCounts counts a session's RFC 7383 traffic: what crossed the
// network as fragments, for status and metrics.
type FragmentCounts struct {
	// Sent: fragments of the messages sent as fragments (first
	// transmissions); Fragmented: those messages.
	Sent       uint64 `json:"sent"`
	Fragmented uint64 `json:"fragmented"`
	// Received: the peer's fragments whose ICV verified; Reassembled: the
	// messages put together from them.
	Received    uint64 `json:"received"`
	Reassembled uint64 `json:"reassembled"`
}

// fragCounters holds FragmentCounts; safe for concurrent use.
type fragCounters struct{ sent, fragmented, received, reassembled atomic.Uint64 }

func (c *fragCounters) snapshot() FragmentCounts {
	return FragmentCounts{Sent: c.sent.Load(), Fragmented: c.fragmented.Load(),
		Received: c.received.Load(), Reassembled: c.reassembled.Load()}
}

// maxReassembled bounds the inner payload bytes of one reassembled message.
const maxReassembled = wire.MaxMessageLen

// reassembly collects the fragments of one message.
type reassembly struct {
	id    uint32
	resp  bool
	total uint16
	next  wire.PayloadType
	parts [][]byte // by fragment number - 1
	have  int
	size  int
	// firstHash is fragment 1's SHA-256, taken when it arrives (its
	// datagram's pooled buffer is reused once it is handled); it stands
	// for the request when the peer retransmits.
	firstHash [sha256.Size]byte
}

var errReassembly = errors.New("fragment does not fit the message being reassembled")

// add keeps fragment f (verified) of message id; it returns the inner
// payload chain once every fragment is in. A fragment of another message
// starts over; one that disagrees with the first on the count, or would
// pass the size bound, is refused.
func (r *reassembly) add(id uint32, resp bool, f wire.Fragment, datagram []byte) ([]byte, error) {
	if r.parts == nil || r.id != id || r.resp != resp {
		*r = reassembly{id: id, resp: resp, total: f.Total, parts: make([][]byte, f.Total)}
	}
	switch {
	case f.Total != r.total:
		return nil, errReassembly
	case r.parts[f.Num-1] != nil:
		return nil, nil // a retransmitted fragment
	case r.size+len(f.Plain) > maxReassembled:
		*r = reassembly{}
		return nil, errReassembly
	}
	r.parts[f.Num-1] = f.Plain
	r.have++
	r.size += len(f.Plain)
	if f.Num == 1 {
		r.next = f.Next
		r.firstHash = sha256.Sum256(datagram)
	}
	if r.have < int(r.total) {
		return nil, nil
	}
	inner := make([]byte, 0, r.size)
	for _, p := range r.parts {
		inner = append(inner, p...)
	}
	return inner, nil
}

// handleFragment takes an SKF message on sa: a fragment of the peer's next
// request or of the answer to ours. The complete message goes where a whole
// one would.
func (s *Session) handleFragment(sa *ikeSA, h wire.Header, p packet, sk *skCipher) {
	if !sa.fragOK {
		s.drop(DropUnencrypted, h, "err", "fragment without RFC 7383 negotiated")
		return
	}
	if h.IsResponse() {
		if sa.req == nil || h.MsgID != sa.req.id {
			s.drop(DropWindow, h)
			return
		}
	} else if h.MsgID+1 == sa.peerID && sa.lastResp != nil {
		// A retransmitted fragmented request: answer its first fragment.
		if f, err := wire.ParseFragment(p.b, sk); err == nil && f.Num == 1 && sha256.Sum256(p.b) == sa.lastReqHash {
			s.sendAll(sa.lastResp, sa.lastNatt)
		}
		return
	} else if h.MsgID != sa.peerID {
		s.drop(DropWindow, h, "want", sa.peerID)
		return
	}
	f, err := wire.ParseFragment(p.b, sk)
	switch {
	case errors.Is(err, errICV):
		s.drop(DropBadICV, h)
		return
	case err != nil:
		s.drop(DropMalformed, h, "err", err)
		return
	}
	s.frags.received.Add(1)
	inner, err := sa.frags.add(h.MsgID, h.IsResponse(), f, p.b)
	if err != nil {
		s.drop(DropMalformed, h, "err", err)
		return
	}
	if inner == nil {
		return
	}
	first, next, total := sa.frags.firstHash, sa.frags.next, sa.frags.total
	sa.frags = reassembly{}
	s.frags.reassembled.Add(1)
	s.log.Debug("reassembled a fragmented IKE message", "msg_id", h.MsgID, "response", h.IsResponse(),
		"fragments", total, "bytes", len(inner))
	ps, err := wire.ParseInner(next, inner)
	if err != nil {
		if !h.IsResponse() {
			s.answerBadRequest(sa, h, p.natt, first, err)
		}
		s.drop(DropMalformed, h, "err", err)
		return
	}
	m := &wire.Message{Header: h, Encrypted: true, Payloads: ps}
	if h.IsResponse() {
		s.takeResponse(sa, m)
		return
	}
	s.takeRequest(sa, h, m, p.natt, first)
}

// fragmentsNoted records whether the peer's IKE_SA_INIT message m announced
// RFC 7383 support.
func fragmentsNoted(sa *ikeSA, m *wire.Message) {
	sa.fragOK = m.Notify(wire.NFragmentationSupported) != nil
}
