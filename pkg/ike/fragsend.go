package ike

import (
	"errors"

	"github.com/cgwd/cgwd/pkg/ike/wire"
)

// IKE fragmentation (RFC 7383), sending side: once both ends announced
// support in IKE_SA_INIT, an encrypted message whose IP packet would pass
// Config.FragmentSize (IKE_AUTH with a certificate chain, typically) goes
// as SKF fragments, each sealed on its own; retransmissions resend every
// fragment. Without the peer's support it goes whole, left to IP
// fragmentation.

// DefaultFragmentSize is the IP packet size cgwd fragments IKE messages
// to unless configured, as strongSwan's default.
const DefaultFragmentSize = 1280

// ikeOverhead is what the path adds to an IKE message on UDP 4500: the
// IPv4 and UDP headers and the non-ESP marker.
const ikeOverhead = 20 + 8 + 4

// fragments seals m with sk as one datagram or, when the peer takes them
// and the message is too large, as fragments.
func (s *Session) fragments(sa *ikeSA, m *wire.Message, sk *skCipher) ([][]byte, error) {
	if sk == nil {
		return nil, errors.New("no keys to encrypt the message")
	}
	if sa.fragOK {
		size := s.cfg.FragmentSize
		if size == 0 {
			size = DefaultFragmentSize
		}
		if out := wire.Fragments(sk, m.Header, m.Payloads, max(size, 576)-ikeOverhead); out != nil {
			s.frags.fragmented.Add(1)
			s.frags.sent.Add(uint64(len(out)))
			return out, nil
		}
	}
	b, err := marshal(m, sk)
	return [][]byte{b}, err
}

// sendAll sends a message's datagrams in order.
func (s *Session) sendAll(bs [][]byte, natt bool) error {
	var first error
	for _, b := range bs {
		if err := s.tr.SendIKE(b, natt); err != nil && first == nil {
			first = err
		}
	}
	return first
}
