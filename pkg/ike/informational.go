package ike

import (
	"encoding/binary"
	"fmt"

	"github.com/cgwd/cgwd/pkg/ike/wire"
)

// INFORMATIONAL (RFC 7296 1.4): deletes of IKE and Child SAs in both roles,
// and liveness checks (dead peer detection).

func (s *Session) handleInformational(sa *ikeSA, h wire.Header, m *wire.Message, natt bool) {
	var ours [][]byte
	for _, p := range m.Payloads {
		switch p := p.(type) {
		case *wire.Delete:
			if p.Protocol == wire.ProtoIKE {
				s.respond(sa, h, nil, true, natt)
				s.peerDeletedIKE(sa)
				return
			}
			if p.Protocol != wire.ProtoESP {
				s.log.Warn("peer deleted SAs of a protocol cgwd does not use; ignoring", "protocol", p.Protocol)
				continue
			}
			for _, spi := range p.SPIs {
				if len(spi) != 4 {
					s.log.Warn("peer sent a Child SA delete with a malformed SPI; ignoring", "spi_len", len(spi))
					continue
				}
				out := binary.BigEndian.Uint32(spi)
				c := s.sas.childByOutSPI(out)
				if c == nil {
					s.log.Warn("peer deleted a Child SA we do not have; ignoring", "spi", fmt.Sprintf("%08x", out))
					continue
				}
				ours = append(ours, binary.BigEndian.AppendUint32(nil, c.sa.InSPI))
				s.peerDeletedChild(c)
			}
		case *wire.Notify:
			if p.NotifyType < 16384 {
				s.log.Warn("peer reports an error", "notify", wire.NotifyName(p.NotifyType))
			}
		}
	}
	var resp []wire.Payload
	if len(ours) > 0 {
		resp = append(resp, &wire.Delete{Protocol: wire.ProtoESP, SPIs: ours})
	}
	s.respond(sa, h, resp, true, natt)
}

// peerDeletedIKE handles the peer's delete of the IKE SA sa (already answered).
func (s *Session) peerDeletedIKE(sa *ikeSA) {
	switch sa {
	case s.sas.old:
		s.sas.old = nil
	case s.sas.spare:
		s.sas.spare = nil
	case s.sas.ikeRival:
		// The peer lost the collision before our own rekey completed.
		s.log.Info("peer deleted its redundant new IKE SA of a rekey collision", "spi_i", fmt.Sprintf("%016x", sa.spiI))
		s.sas.ikeRival = nil
	case s.sas.ike:
		if next := s.sas.ikeRival; next != nil {
			// The peer rekeyed this SA too and deletes it: its new SA
			// carries on and our own rekey is forgotten (RFC 7296 2.25.2).
			// Only the winner's side deletes the old SA: we lost, even if the
			// answer to our own request never comes (it would come on sa).
			s.log.Info("IKE SA rekey collision lost: the peer deleted the IKE SA we were rekeying after rekeying it itself; moving to its new IKE SA",
				"survivor_spi_i", fmt.Sprintf("%016x", next.spiI))
			s.sas.ikeRival, sa.rival = nil, nil
			sa.req = nil
			s.ikeRekeyed(sa, next, false)
			s.sas.old = nil
			return
		}
		s.log.Info("peer deleted the IKE SA")
		s.restart("deleted by peer")
	}
}

// peerDeletedChild removes c, deleted by the peer. When c is the current
// Child SA and the peer had rekeyed it in a collision, the peer's new SA
// takes over first.
func (s *Session) peerDeletedChild(c *child) {
	switch {
	case c == s.sas.child && s.sas.rival != nil:
		s.log.Info("peer deleted the Child SA it rekeyed in a collision; its new SA replaces it",
			"spi_in", fmt.Sprintf("%08x", s.sas.rival.sa.InSPI))
		s.adopt(s.sas.rival)
	case c == s.sas.child:
		s.log.Info("peer deleted the Child SA", "spi_in", fmt.Sprintf("%08x", c.sa.InSPI))
	case c == s.sas.rival:
		s.log.Info("peer deleted its redundant Child SA of a rekey collision", "spi_in", fmt.Sprintf("%08x", c.sa.InSPI))
	}
	s.dropChild(c)
}

// deleteOld deletes the IKE SA we replaced by rekeying.
func (s *Session) deleteOld() {
	old := s.sas.old
	old.state = stDeleting
	m := &wire.Message{Header: s.reqHeader(old, wire.Informational), Encrypted: true, Payloads: []wire.Payload{&wire.Delete{Protocol: wire.ProtoIKE}}}
	done := func() {
		if s.sas.old == old {
			s.sas.old = nil
		}
	}
	s.request(old, m, "INFORMATIONAL delete", func(*wire.Message) { done() }, done)
}

// deleteSpare deletes sa, our redundant new IKE SA of a rekey collision.
func (s *Session) deleteSpare(sa *ikeSA) {
	now := s.now()
	sa.state, sa.est, sa.lastRecv, sa.expireAt = stDeleting, now, now, now.Add(s.cfg.DPDTimeout)
	s.sas.spare = sa
	m := &wire.Message{Header: s.reqHeader(sa, wire.Informational), Encrypted: true, Payloads: []wire.Payload{&wire.Delete{Protocol: wire.ProtoIKE}}}
	done := func() {
		if s.sas.spare == sa {
			s.sas.spare = nil
		}
	}
	s.request(sa, m, "INFORMATIONAL delete redundant IKE SA", func(*wire.Message) { done() }, done)
}

// deleteChild asks the peer to delete c (already retired); then runs done.
func (s *Session) deleteChild(sa *ikeSA, c *child, what string, done func()) {
	c.deleting = true
	del := &wire.Message{Header: s.reqHeader(sa, wire.Informational), Encrypted: true,
		Payloads: []wire.Payload{&wire.Delete{Protocol: wire.ProtoESP, SPIs: [][]byte{binary.BigEndian.AppendUint32(nil, c.sa.InSPI)}}}}
	s.request(sa, del, what, func(*wire.Message) { done() }, done)
}

func (s *Session) dpd(sa *ikeSA) {
	s.log.Debug("sending liveness check", "msg_id", sa.nextID)
	m := &wire.Message{Header: s.reqHeader(sa, wire.Informational), Encrypted: true}
	s.request(sa, m, "DPD", func(*wire.Message) {}, func() {
		s.fail("peer is dead: no answer to liveness checks", "timeout", s.cfg.DPDTimeout)
		s.restart("DPD")
	})
}
