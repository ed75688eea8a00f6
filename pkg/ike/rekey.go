package ike

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/cgwd/cgwd/pkg/ike/wire"
)

// CREATE_CHILD_SA (RFC 7296 1.3): rekeys of the Child SA and of the IKE SA
// in both roles, and the collisions of two simultaneous rekeys (2.8).

// peerReq is a request of the peer's being answered.
type peerReq struct {
	sa   *ikeSA
	h    wire.Header
	m    *wire.Message
	natt bool
}

// refuse answers r with the error notify n.
func (s *Session) refuse(r peerReq, n uint16, data []byte) {
	s.respond(r.sa, r.h, []wire.Payload{&wire.Notify{NotifyType: n, Data: data}}, true, r.natt)
}

// handleCreateChild answers the peer's CREATE_CHILD_SA: a rekey of the
// Child SA or of the IKE SA. When we are rekeying the same SA, both
// exchanges complete and the nonces decide later which new SA stays
// (RFC 7296 2.8.1, 2.8.2, 2.25).
func (s *Session) handleCreateChild(sa *ikeSA, h wire.Header, m *wire.Message, natt bool) {
	r := peerReq{sa: sa, h: h, m: m, natt: natt}
	spa, _ := m.Get(wire.PayloadSA).(*wire.SA)
	ni, _ := m.Get(wire.PayloadNonce).(*wire.Nonce)
	if spa == nil || !nonceOK(sa, ni) || len(spa.Proposals) == 0 {
		s.log.Warn("peer sent a CREATE_CHILD_SA without SA or a long enough nonce: INVALID_SYNTAX")
		s.refuse(r, wire.NInvalidSyntax, nil)
		return
	}
	ikeRekey := spa.Proposals[0].Protocol == wire.ProtoIKE
	if sa != s.sas.ike || sa.state != stEstablished {
		s.log.Info("peer sent CREATE_CHILD_SA on an IKE SA that is being replaced or deleted: TEMPORARY_FAILURE",
			"spi_i", fmt.Sprintf("%016x", sa.spiI))
		s.refuse(r, wire.NTemporaryFailure, nil)
		return
	}
	var target *child
	if ikeRekey {
		if !s.ikeRekeyAllowed(r) {
			return
		}
	} else if target = s.childRekeyTarget(r); target == nil {
		return
	}
	ours := s.cfg.ESPProposals
	if ikeRekey {
		ours = s.cfg.IKEProposals
	}
	chosen, ok := selectProposal(ours, spa.Proposals, true)
	if !ok {
		s.fail("no proposal in common for the peer's rekey: NO_PROPOSAL_CHOSEN",
			"peer_proposals", proposalsString(spa.Proposals), "our_proposals", proposalsString(ours))
		s.refuse(r, wire.NNoProposalChosen, nil)
		return
	}
	st := suiteOf(chosen)
	dh, gir, ok := s.rekeyKE(r, st, ikeRekey)
	if !ok {
		return
	}
	if ikeRekey {
		s.answerIKERekey(r, chosen, st, ni.Data, dh, gir)
		return
	}
	s.answerChildRekey(r, target, chosen, st, ni.Data, dh, gir)
}

// ikeRekeyAllowed reports whether the peer may rekey the IKE SA now,
// refusing r otherwise.
func (s *Session) ikeRekeyAllowed(r peerReq) bool {
	switch {
	case s.sas.child != nil && s.sas.child.rekeying:
		s.log.Info("peer wants to rekey the IKE SA while our Child SA rekey is under way: TEMPORARY_FAILURE")
	case s.sas.old != nil || s.sas.spare != nil || s.sas.ikeRival != nil:
		s.log.Info("peer wants to rekey the IKE SA before the previous rekey finished: TEMPORARY_FAILURE")
	default:
		return true
	}
	s.refuse(r, wire.NTemporaryFailure, nil)
	return false
}

// childRekeyTarget returns the Child SA the peer's REKEY_SA names, if the
// peer may rekey it now; otherwise it refuses r and returns nil.
func (s *Session) childRekeyTarget(r peerReq) *child {
	rn := r.m.Notify(wire.NRekeySA)
	if rn == nil {
		s.refuse(r, wire.NNoAdditionalSAs, nil)
		return nil
	}
	if len(rn.SPI) != 4 {
		s.log.Warn("peer's REKEY_SA has a malformed SPI: INVALID_SYNTAX", "spi_len", len(rn.SPI))
		s.refuse(r, wire.NInvalidSyntax, nil)
		return nil
	}
	spi := binary.BigEndian.Uint32(rn.SPI)
	target := s.sas.childByOutSPI(spi)
	switch {
	case r.sa.rekeying:
		s.log.Info("peer wants to rekey the Child SA while our IKE SA rekey is under way: TEMPORARY_FAILURE")
	case target == nil:
		s.log.Warn("peer wants to rekey a Child SA we do not have: CHILD_SA_NOT_FOUND", "spi", fmt.Sprintf("%08x", spi))
		s.respond(r.sa, r.h, []wire.Payload{&wire.Notify{Protocol: wire.ProtoESP, SPI: rn.SPI, NotifyType: wire.NChildSANotFound}}, true, r.natt)
		return nil
	case target != s.sas.child:
		s.log.Warn("peer wants to rekey a Child SA that is already replaced or being deleted: TEMPORARY_FAILURE",
			"spi", fmt.Sprintf("%08x", spi))
	case target.rekeying && s.sas.rival != nil:
		s.log.Warn("peer rekeys the same Child SA a second time during a collision: TEMPORARY_FAILURE",
			"spi", fmt.Sprintf("%08x", spi))
	default:
		return target
	}
	s.refuse(r, wire.NTemporaryFailure, nil)
	return nil
}

// rekeyKE does our half of the Diffie-Hellman exchange of the peer's
// rekey when the suite st has a group, refusing r if it cannot.
func (s *Session) rekeyKE(r peerReq, st suite, ikeRekey bool) (dh dhKey, gir []byte, ok bool) {
	if st.dh == 0 {
		return nil, nil, true
	}
	ke, _ := r.m.Get(wire.PayloadKE).(*wire.KE)
	if ke == nil || ke.Group != st.dh {
		s.refuse(r, wire.NInvalidKEPayload, binary.BigEndian.AppendUint16(nil, st.dh))
		return nil, nil, false
	}
	dh, err := newDH(st.dh)
	if err == nil {
		gir, err = dh.shared(ke.Data)
	}
	if err != nil {
		s.log.Warn("bad KE payload in the peer's CREATE_CHILD_SA: INVALID_SYNTAX", "err", err)
		s.refuse(r, wire.NInvalidSyntax, nil)
		return nil, nil, false
	}
	if ikeRekey {
		s.warnWeak(st.dh, "IKE")
	} else {
		s.warnWeak(st.dh, "ESP PFS")
	}
	return dh, gir, true
}

// answerIKERekey completes the peer's rekey of the IKE SA, or notes it as
// the rival of our own rekey of it.
func (s *Session) answerIKERekey(r peerReq, chosen Proposal, st suite, ni []byte, dh dhKey, gir []byte) {
	sa := r.sa
	if len(chosen.SPI) != 8 || dh == nil {
		s.refuse(r, wire.NInvalidSyntax, nil)
		return
	}
	nr := nonce()
	spiI, spiR := binary.BigEndian.Uint64(chosen.SPI), randSPI()
	keys, err := deriveIKEKeys(st, gir, ni, nr, spiI, spiR, sa.keys.d, sa.keys.prf)
	if err != nil {
		s.refuse(r, wire.NNoProposalChosen, nil)
		return
	}
	chosen.SPI = binary.BigEndian.AppendUint64(nil, spiR)
	s.respond(sa, r.h, []wire.Payload{&wire.SA{Proposals: []Proposal{chosen}}, &wire.Nonce{Data: nr}, &wire.KE{Group: st.dh, Data: dh.public()}}, true, r.natt)
	next := &ikeSA{initiator: false, spiI: spiI, spiR: spiR, keys: keys, natt: sa.natt, ni: ni, nr: nr, fragOK: sa.fragOK}
	if sa.rekeying {
		// Both ends rekey the IKE SA: answer as usual, decide when ours ends.
		now := s.now()
		next.state, next.est, next.lastRecv, next.expireAt = stEstablished, now, now, now.Add(s.cfg.IKELifetime)
		s.sas.ikeRival, sa.rival = next, next
		s.log.Info("IKE SA rekey collision: the peer rekeys it too; the nonces decide when ours completes",
			"peer_spi_i", fmt.Sprintf("%016x", spiI))
		return
	}
	s.ikeRekeyed(sa, next, false)
}

// answerChildRekey installs the new Child SA of the peer's rekey of
// target and answers; the new SA replaces target at once, or waits as the
// rival of our own rekey of it.
func (s *Session) answerChildRekey(r peerReq, target *child, chosen Proposal, st suite, ni []byte, dh dhKey, gir []byte) {
	tsi, _ := r.m.Get(wire.PayloadTSi).(*wire.TS)
	tsr, _ := r.m.Get(wire.PayloadTSr).(*wire.TS)
	if tsi == nil || tsr == nil || len(chosen.SPI) != 4 {
		s.refuse(r, wire.NInvalidSyntax, nil)
		return
	}
	remote, local := toESP(tsi.Selectors), toESP(tsr.Selectors)
	if len(remote) == 0 || len(local) == 0 {
		s.refuse(r, wire.NTSUnacceptable, nil)
		return
	}
	nr := nonce()
	inSPI := randChildSPI()
	iToR, rToI := childKeys(r.sa.keys, st, gir, ni, nr)
	c := &child{suite: st, ni: ni, nr: nr, sa: &ChildSA{InSPI: inSPI, OutSPI: binary.BigEndian.Uint32(chosen.SPI), Suite: st.espSuite(),
		InKey: iToR, OutKey: rToI, LocalTS: local, RemoteTS: remote}}
	chosen.SPI = binary.BigEndian.AppendUint32(nil, inSPI)
	ps := []wire.Payload{&wire.SA{Proposals: []Proposal{chosen}}, &wire.Nonce{Data: nr}}
	if dh != nil {
		ps = append(ps, &wire.KE{Group: st.dh, Data: dh.public()})
	}
	ps = append(ps, &wire.TS{Selectors: tsi.Selectors}, &wire.TS{Responder: true, Selectors: tsr.Selectors})
	// Make before break: accept on the new SA now, keep sending on the old
	// one until the peer deletes it (it has the new inbound SA by then).
	if err := s.addChild(c); err != nil {
		s.fail("cannot install inbound ESP SA for the peer's rekey", "err", err)
		s.refuse(r, wire.NTemporaryFailure, nil)
		return
	}
	s.respond(r.sa, r.h, ps, true, r.natt)
	if target.rekeying {
		s.sas.rival, target.rival = c, c
		s.log.Info("Child SA rekey collision: the peer rekeys it too; the nonces decide when ours completes",
			"spi_in", fmt.Sprintf("%08x", inSPI))
		return
	}
	s.adopt(c)
}

// nonceOK reports whether n is a nonce long enough for sa's PRF (RFC 7296
// 2.10: at least 128 bits and half the PRF's key size).
func nonceOK(sa *ikeSA, n *wire.Nonce) bool {
	return n != nil && sa.keys != nil && len(n.Data) >= max(16, sa.keys.prf.size()/2)
}

// ikeRekeyed makes next the current IKE SA; the Child SAs move to it. The
// initiator of the surviving rekey deletes the old SA.
func (s *Session) ikeRekeyed(old, next *ikeSA, weInitiated bool) {
	now := s.now()
	next.state, next.est, next.lastRecv = stEstablished, now, now
	next.rekeyAt, next.expireAt = s.rekeyTime(now, s.cfg.IKELifetime), now.Add(s.cfg.IKELifetime)
	old.rekeying = false
	old.expireAt = now.Add(s.cfg.DPDTimeout)
	if !weInitiated {
		old.state = stDeleting // the peer deletes it
	}
	s.sas.promoteIKE(old, next)
	s.log.Info("IKE SA rekeyed", "spi_i", fmt.Sprintf("%016x", next.spiI), "spi_r", fmt.Sprintf("%016x", next.spiR))
	s.setStatus(func(st *Status) {
		st.SPIi, st.SPIr = fmt.Sprintf("%016x", next.spiI), fmt.Sprintf("%016x", next.spiR)
		st.IKESuite, st.IKERekeyDue = next.keys.suite.String(), next.rekeyAt
		st.IKERekeys++
	})
}

// rekeyChild replaces the Child SA with CREATE_CHILD_SA (with PFS when the
// ESP proposals have a DH group), then deletes the old one.
func (s *Session) rekeyChild() {
	sa, c := s.sas.ike, s.sas.child
	c.rekeying = true
	s.sendChildRekey(sa, c, firstDH(s.cfg.ESPProposals))
}

func (s *Session) sendChildRekey(sa *ikeSA, c *child, group uint16) {
	newSPI, ni := randChildSPI(), nonce()
	ps := []wire.Payload{&wire.Notify{Protocol: wire.ProtoESP, SPI: binary.BigEndian.AppendUint32(nil, c.sa.InSPI), NotifyType: wire.NRekeySA},
		&wire.SA{Proposals: s.espOffer(newSPI, true)}, &wire.Nonce{Data: ni}}
	var dh dhKey
	if group != 0 {
		var err error
		if dh, err = newDH(group); err != nil {
			s.fail("cannot make DH key", "group", group, "err", err)
			c.rekeying, c.rekeyAt = false, s.now().Add(10*time.Second)
			return
		}
		ps = append(ps, &wire.KE{Group: group, Data: dh.public()})
	}
	ps = append(ps, &wire.TS{Selectors: fromESP(c.sa.LocalTS)}, &wire.TS{Responder: true, Selectors: fromESP(c.sa.RemoteTS)})
	m := &wire.Message{Header: s.reqHeader(sa, wire.CreateChildSA), Encrypted: true, Payloads: ps}
	s.request(sa, m, "CREATE_CHILD_SA (Child rekey)", func(r *wire.Message) {
		if n := r.Notify(wire.NInvalidKEPayload); n != nil && len(n.Data) == 2 {
			g := binary.BigEndian.Uint16(n.Data)
			if g != group && offers(s.cfg.ESPProposals, Transform{Type: TransformDH, ID: g}) {
				s.sendChildRekey(sa, c, g)
				return
			}
		}
		c.rekeying = false
		s.childRekeyDone(sa, c, r, newSPI, dh, ni)
	}, func() {
		s.fail("peer is dead: no answer to CREATE_CHILD_SA", "timeout", s.cfg.DPDTimeout)
		s.restart("rekey timeout")
	})
}

// childRekeyDone completes our rekey of c with the peer's response r,
// settling a collision with the peer's own rekey of c if there was one.
func (s *Session) childRekeyDone(sa *ikeSA, c *child, r *wire.Message, newSPI uint32, dh dhKey, ni []byte) {
	peer := c.rival // the peer's new SA if it rekeyed c too
	c.rival = nil
	peerLive := peer != nil && s.sas.installed(peer)
	if peer != nil && s.sas.rival == peer {
		s.sas.rival = nil
	}
	failed := func(msg string, args ...any) {
		if peer != nil {
			// The peer's rekey completed; it deletes c (RFC 7296 2.8.1).
			s.log.Info("our Child SA rekey failed but the peer's succeeded; its new SA replaces the old one",
				append([]any{"reason", msg}, args...)...)
			if s.sas.child == c && peerLive {
				s.adopt(peer)
			}
			return
		}
		if s.sas.child == c {
			s.log.Warn(msg+"; retrying later", args...)
			c.rekeyAt = s.now().Add(10 * time.Second)
		}
	}
	if n := r.ErrorNotify(); n != nil {
		if n.NotifyType == wire.NChildSANotFound && peer == nil && s.sas.child == c {
			s.fail("peer does not know the Child SA we tried to rekey: CHILD_SA_NOT_FOUND", "spi_in", fmt.Sprintf("%08x", c.sa.InSPI))
			s.restart("Child SA not found by the peer")
			return
		}
		failed("peer refused the Child SA rekey", "notify", wire.NotifyName(n.NotifyType))
		return
	}
	nr, _ := r.Get(wire.PayloadNonce).(*wire.Nonce)
	if !nonceOK(sa, nr) {
		failed("peer's Child SA rekey response has no nonce or one too short for the PRF")
		return
	}
	nc, err := s.childFromResponse(r, newSPI, dh, ni, nr.Data, true)
	if err != nil {
		failed("Child SA rekey failed", "err", err)
		return
	}
	nc.ours, nc.ni, nc.nr = true, ni, nr.Data
	if err := s.addChild(nc); err != nil {
		s.fail("cannot install inbound ESP SA", "err", err)
		failed("Child SA rekey failed", "err", err)
		return
	}
	s.settleChildRekey(sa, c, nc, peer, peerLive)
}

// settleChildRekey decides which new Child SA replaces c: nc, installed by
// our rekey, or peer, the new SA of the peer's colliding rekey (nil if
// none; peerLive if still installed). The redundant one is deleted.
func (s *Session) settleChildRekey(sa *ikeSA, c, nc, peer *child, peerLive bool) {
	redundant := func(why string) {
		s.log.Info(why, "redundant_spi_in", fmt.Sprintf("%08x", nc.sa.InSPI))
		s.retire(nc, 30*time.Second)
		s.deleteChild(sa, nc, "INFORMATIONAL delete redundant child", func() { s.dropChild(nc) })
	}
	if peer != nil && lostCollision(nc.ni, nc.nr, peer.ni, peer.nr) {
		// Ours holds the lowest nonce: we delete it, the peer's new SA
		// stays and the peer, its initiator, deletes the old one. The
		// verdict stands even if the peer's SA is gone by now (replaced
		// by a later rekey after it deleted the old one).
		if s.sas.child == c && peerLive {
			s.adopt(peer)
		}
		redundant("Child SA rekey collision lost: deleting our redundant SA; the peer's new SA replaced the old one")
		return
	}
	// Without a collision our SA replaces c, unless c was replaced
	// meanwhile by something newer than the rekey we started.
	if s.sas.child != c && s.sas.child != nil && s.sas.child != peer {
		redundant("Child SA rekey completed after the SA it replaces was gone: deleting the new SA")
		return
	}
	if peer != nil {
		s.log.Info("Child SA rekey collision won: our new SA replaces the old one; the peer deletes its redundant SA",
			"survivor_spi_in", fmt.Sprintf("%08x", nc.sa.InSPI), "redundant_spi_in", fmt.Sprintf("%08x", peer.sa.InSPI))
		if peerLive {
			s.retire(peer, 30*time.Second)
		}
	}
	if err := s.useOut(nc); err != nil {
		s.fail("cannot install outbound ESP SA", "err", err)
	}
	s.adopt(nc)
	if !slices.Contains(s.sas.retired, c) {
		return // the peer already deleted the old SA
	}
	linger := func() { // keep the old inbound SA briefly for packets in flight
		if slices.Contains(s.sas.retired, c) {
			c.expireAt = s.now().Add(s.oldLinger)
		}
	}
	s.deleteChild(sa, c, "INFORMATIONAL delete child", linger)
}

// rekeyIKE replaces the IKE SA with CREATE_CHILD_SA, then deletes the old one.
func (s *Session) rekeyIKE() {
	sa := s.sas.ike
	sa.rekeying = true
	s.sendIKERekey(sa, firstDH(s.cfg.IKEProposals))
}

// sendIKERekey sends our CREATE_CHILD_SA rekeying sa, offering DH group
// group; ikeRekeyDone handles the answer.
func (s *Session) sendIKERekey(sa *ikeSA, group uint16) {
	newSPI, ni := randSPI(), nonce()
	dh, err := newDH(group)
	if err != nil {
		s.fail("cannot make DH key", "group", group, "err", err)
		sa.rekeying, sa.rekeyAt = false, s.now().Add(10*time.Second)
		return
	}
	props := append([]Proposal(nil), s.cfg.IKEProposals...)
	for i := range props {
		props[i].SPI = binary.BigEndian.AppendUint64(nil, newSPI)
	}
	m := &wire.Message{Header: s.reqHeader(sa, wire.CreateChildSA), Encrypted: true,
		Payloads: []wire.Payload{&wire.SA{Proposals: props}, &wire.Nonce{Data: ni}, &wire.KE{Group: group, Data: dh.public()}}}
	s.request(sa, m, "CREATE_CHILD_SA (IKE rekey)", func(r *wire.Message) {
		s.ikeRekeyDone(sa, r, group, newSPI, ni, dh)
	}, func() {
		s.fail("peer is dead: no answer to the IKE rekey", "timeout", s.cfg.DPDTimeout)
		s.restart("rekey timeout")
	})
}

// settleIKERival takes the peer's colliding new IKE SA off sa, if any, and
// reports whether it is still there (the peer deletes it once it lost).
func (s *Session) settleIKERival(sa *ikeSA) (peer *ikeSA, live bool) {
	peer, sa.rival = sa.rival, nil
	if live = peer != nil && s.sas.ikeRival == peer; live {
		s.sas.ikeRival = nil
	}
	return peer, live
}

// ikeRekeyFailed gives up our rekey of sa; if the peer rekeyed the SA too,
// its new IKE SA carries on and the peer deletes this one.
func (s *Session) ikeRekeyFailed(sa *ikeSA, msg string, args ...any) {
	if peer, live := s.settleIKERival(sa); live {
		s.log.Info("our IKE SA rekey failed but the peer's succeeded; moving to its new IKE SA",
			append([]any{"reason", msg}, args...)...)
		s.ikeRekeyed(sa, peer, false)
		return
	}
	s.log.Warn(msg+"; retrying later", args...)
	sa.rekeying, sa.rekeyAt = false, s.now().Add(10*time.Second)
}

// ikeRekeyDone completes our rekey of sa with the peer's response r, or
// retries it with the DH group the peer asks for.
func (s *Session) ikeRekeyDone(sa *ikeSA, r *wire.Message, group uint16, newSPI uint64, ni []byte, dh dhKey) {
	if n := r.Notify(wire.NInvalidKEPayload); n != nil && len(n.Data) == 2 {
		g := binary.BigEndian.Uint16(n.Data)
		if g != group && offers(s.cfg.IKEProposals, Transform{Type: TransformDH, ID: g}) {
			s.sendIKERekey(sa, g)
			return
		}
	}
	if n := r.ErrorNotify(); n != nil {
		s.ikeRekeyFailed(sa, "peer refused the IKE SA rekey", "notify", wire.NotifyName(n.NotifyType))
		return
	}
	spa, _ := r.Get(wire.PayloadSA).(*wire.SA)
	nr, _ := r.Get(wire.PayloadNonce).(*wire.Nonce)
	ke, _ := r.Get(wire.PayloadKE).(*wire.KE)
	if spa == nil || !nonceOK(sa, nr) || ke == nil || len(spa.Proposals) != 1 || len(spa.Proposals[0].SPI) != 8 {
		s.ikeRekeyFailed(sa, "bad IKE rekey response")
		return
	}
	chosen, ok := selectProposal(s.cfg.IKEProposals, spa.Proposals, true)
	st := suiteOf(chosen)
	if !ok || st.dh != group || ke.Group != group {
		s.ikeRekeyFailed(sa, "peer chose an IKE rekey proposal we did not offer", "chosen", spa.Proposals[0].String())
		return
	}
	gir, err := dh.shared(ke.Data)
	if err != nil {
		s.ikeRekeyFailed(sa, "bad KE payload in the IKE rekey response", "err", err)
		return
	}
	spiR := binary.BigEndian.Uint64(spa.Proposals[0].SPI)
	keys, err := deriveIKEKeys(st, gir, ni, nr.Data, newSPI, spiR, sa.keys.d, sa.keys.prf)
	if err != nil {
		s.ikeRekeyFailed(sa, "IKE rekey key derivation failed", "err", err)
		return
	}
	next := &ikeSA{initiator: true, spiI: newSPI, spiR: spiR, keys: keys, natt: sa.natt, ni: ni, nr: nr.Data, fragOK: sa.fragOK}
	if peer, live := s.settleIKERival(sa); peer != nil && s.ikeCollisionLost(sa, next, peer, live) {
		return
	}
	s.ikeRekeyed(sa, next, true)
}

// ikeCollisionLost settles a collision of our rekey of sa, whose new SA
// is next, with the peer's, whose new SA is peer (live: not deleted yet).
// It reports whether ours lost and the peer's SA took over.
func (s *Session) ikeCollisionLost(sa, next, peer *ikeSA, live bool) bool {
	switch lost := lostCollision(next.ni, next.nr, peer.ni, peer.nr); {
	case lost && live:
		// Ours holds the lowest nonce: we delete it; the peer's new
		// SA inherits the Child SAs and the peer deletes the old one.
		s.log.Info("IKE SA rekey collision lost: deleting our redundant new IKE SA; moving to the peer's",
			"redundant_spi_i", fmt.Sprintf("%016x", next.spiI), "survivor_spi_i", fmt.Sprintf("%016x", peer.spiI))
		s.ikeRekeyed(sa, peer, false)
		s.deleteSpare(next)
		return true
	case lost:
		s.log.Warn("IKE SA rekey collision: the peer deleted its new IKE SA although ours holds the lowest nonce; keeping ours",
			"spi_i", fmt.Sprintf("%016x", next.spiI))
	default:
		s.log.Info("IKE SA rekey collision won: our new IKE SA stays; the peer deletes its redundant one",
			"survivor_spi_i", fmt.Sprintf("%016x", next.spiI), "redundant_spi_i", fmt.Sprintf("%016x", peer.spiI))
		if live {
			peer.state, peer.expireAt = stDeleting, s.now().Add(s.cfg.DPDTimeout)
			s.sas.spare = peer
		}
	}
	return false
}

// lostCollision reports whether our exchange (nonces ni, nr) holds the
// lowest of the four nonces of two colliding rekeys, which makes the SA
// it created the redundant one (RFC 7296 2.8.1, 2.8.2). Nonces compare
// octet by octet; a nonce that is a prefix of the other is the lower.
func lostCollision(ni, nr, peerNi, peerNr []byte) bool {
	low := func(a, b []byte) []byte {
		if bytes.Compare(a, b) <= 0 {
			return a
		}
		return b
	}
	return bytes.Compare(low(ni, nr), low(peerNi, peerNr)) < 0
}
