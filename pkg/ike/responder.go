package ike

import (
	"bytes"
	"crypto/hmac"
	"encoding/binary"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/cgwd/cgwd/pkg/ike/wire"
	"github.com/cgwd/cgwd/pkg/proposal"
)

// underLoad records an IKE_SA_INIT request and reports whether more than
// CookieThreshold arrived within the last second, or the half-open table
// is half full: then every new IKE_SA_INIT must bring a COOKIE.
func (s *Session) underLoad(now time.Time) bool {
	keep := s.initArrivals[:0]
	for _, t := range s.initArrivals {
		if now.Sub(t) < time.Second {
			keep = append(keep, t)
		}
	}
	if len(keep) <= s.cfg.CookieThreshold {
		keep = append(keep, now) // above the threshold the count is all that matters
	}
	s.initArrivals = keep
	return s.cfg.CookieThreshold < 0 || len(s.initArrivals) > s.cfg.CookieThreshold ||
		2*len(s.sas.halves) >= s.cfg.HalfOpenLimit
}

// halfOpenTotal counts the half-open IKE SAs of every session of the
// process, against MaxHalfOpenTotal.
var halfOpenTotal atomic.Int64

// MaxHalfOpenTotal caps the half-open IKE SAs of all sessions together.
const MaxHalfOpenTotal = 1024

// expireHalfOpen forgets half-open SAs whose IKE_AUTH did not come in time.
func (s *Session) expireHalfOpen(now time.Time) {
	for _, sa := range slices.Clone(s.sas.halves) {
		if now.Sub(sa.lastRecv) > s.cfg.HalfOpenTimeout {
			s.log.Debug("half-open IKE SA expired: no IKE_AUTH followed its IKE_SA_INIT", "spi_i", fmt.Sprintf("%016x", sa.spiI))
			s.sas.removeHalf(sa)
			sa.keys.wipe()
		}
	}
}

// sendCookie answers an IKE_SA_INIT request with N(COOKIE) alone. It is
// encoded by hand into a reused buffer: under a flood this is the answer
// to every request, and it must make no garbage.
func (s *Session) sendCookie(req wire.Header, cookie []byte, natt bool) {
	const nLen = 8 // generic payload header, protocol, SPI size, type
	b := wire.AppendHeader(s.scratch[:0], wire.Header{SPIi: req.SPIi, Exchange: wire.IKESAInit, Flags: wire.FlagResponse},
		wire.PayloadN, wire.HeaderLen+nLen+len(cookie))
	b = append(b, byte(wire.PayloadNone), 0)
	b = binary.BigEndian.AppendUint16(b, uint16(nLen+len(cookie)))
	b = append(b, 0, 0)
	b = binary.BigEndian.AppendUint16(b, wire.NCookie)
	b = append(b, cookie...)
	s.scratch = b
	s.tr.SendIKE(b, natt)
}

// handleInitRequest answers a peer's IKE_SA_INIT. Nothing is allocated,
// stored or computed for it before the cheap checks pass: a pre-parse of
// the fixed fields, the retransmission and table checks, and the COOKIE
// under load; only then the full parse, the proposal and Diffie-Hellman.
func (s *Session) handleInitRequest(h wire.Header, p packet) {
	if h.MsgID != 0 || h.SPIr != 0 {
		s.drop(DropMalformed, h, "err", "IKE_SA_INIT request with a responder SPI or message ID")
		return
	}
	if hf := s.sas.halfBySPIi(h.SPIi); hf != nil {
		if !bytes.Equal(hf.initReq, p.b) {
			s.drop(DropRetransmitMismatch, h)
			return
		}
		s.tr.SendIKE(hf.lastResp, hf.lastNatt) // a retransmission
		return
	}
	pk, err := wire.PeekInit(p.b)
	if err != nil {
		s.drop(DropMalformed, h, "err", err)
		return
	}
	tmp := &ikeSA{spiI: h.SPIi}
	refuse := func(n *wire.Notify) { s.respond(tmp, h, []wire.Payload{n}, false, p.natt) }
	if !pk.HasSA || pk.KE == nil || pk.Nonce == nil {
		s.drop(DropMalformed, h, "err", "IKE_SA_INIT request lacks SA, KE or nonce")
		refuse(&wire.Notify{NotifyType: wire.NInvalidSyntax})
		return
	}
	now := time.Now()
	if s.underLoad(now) && !s.cookies.valid(now, pk.Cookie, pk.Nonce, s.cfg.Remote, h.SPIi) {
		s.drop(DropCookie, h)
		if !s.loadLogged {
			s.log.Info("IKE_SA_INIT requests above the cookie threshold or half-open table half full: asking for a COOKIE",
				"half_open", len(s.sas.halves))
			s.loadLogged = true
		}
		s.sendCookie(h, s.cookies.make(now, pk.Nonce, s.cfg.Remote, h.SPIi), p.natt)
		return
	}
	if len(s.sas.halves) >= s.cfg.HalfOpenLimit || halfOpenTotal.Load() >= MaxHalfOpenTotal {
		s.drop(DropHalfOpen, h, "half_open", len(s.sas.halves))
		return
	}
	m, err := parse(p.b, nil)
	if err != nil {
		s.drop(DropMalformed, h, "err", err)
		return
	}
	spa, _ := m.Get(wire.PayloadSA).(*wire.SA)
	ke, _ := m.Get(wire.PayloadKE).(*wire.KE)
	ni, _ := m.Get(wire.PayloadNonce).(*wire.Nonce)
	if spa == nil || ke == nil || ni == nil {
		s.drop(DropMalformed, h, "err", "IKE_SA_INIT request lacks SA, KE or nonce")
		refuse(&wire.Notify{NotifyType: wire.NInvalidSyntax})
		return
	}
	chosen, ok := selectProposal(s.cfg.IKEProposals, spa.Proposals, true)
	if !ok {
		s.fail("no IKE proposal in common with the peer: NO_PROPOSAL_CHOSEN",
			"peer_proposals", proposalsString(spa.Proposals), "our_proposals", proposalsString(s.cfg.IKEProposals))
		refuse(&wire.Notify{NotifyType: wire.NNoProposalChosen})
		return
	}
	st := suiteOf(chosen)
	if len(ni.Data) < minNonce(st.prf) {
		s.drop(DropMalformed, h, "err", fmt.Sprintf("nonce of %d bytes, the PRF wants at least %d", len(ni.Data), minNonce(st.prf)))
		refuse(&wire.Notify{NotifyType: wire.NInvalidSyntax})
		return
	}
	if ke.Group != st.dh {
		refuse(&wire.Notify{NotifyType: wire.NInvalidKEPayload, Data: binary.BigEndian.AppendUint16(nil, st.dh)})
		return
	}
	dh, err := newDH(st.dh)
	if err != nil {
		refuse(&wire.Notify{NotifyType: wire.NNoProposalChosen})
		return
	}
	gir, err := dh.shared(ke.Data)
	if err != nil {
		s.log.Warn("bad KE payload in IKE_SA_INIT", "err", err)
		refuse(&wire.Notify{NotifyType: wire.NInvalidSyntax})
		return
	}
	sa := &ikeSA{spiI: h.SPIi, spiR: randSPI(), state: stRespInit, group: st.dh, dh: dh, ni: ni.Data, nr: nonce(),
		initReq: bytes.Clone(p.b), lastRecv: now}
	if sa.keys, err = deriveIKEKeys(st, gir, sa.ni, sa.nr, sa.spiI, sa.spiR, nil, prf{}); err != nil {
		s.log.Error("key derivation failed", "err", err)
		return
	}
	chosen.SPI = nil
	ps := []wire.Payload{&wire.SA{Proposals: []Proposal{chosen}}, &wire.KE{Group: st.dh, Data: dh.public()}, &wire.Nonce{Data: sa.nr}}
	ps = append(ps, s.natHashes(sa.spiI, sa.spiR)...)
	s.start = now
	s.respond(sa, h, ps, false, p.natt)
	sa.initResp = sa.lastResp
	sa.nextID = 0
	s.sas.addHalf(sa)
	s.warnWeak(st.dh, "IKE")
	s.log.Info("answered IKE_SA_INIT", "spi_i", fmt.Sprintf("%016x", sa.spiI), "suite", st.String())
}

// nonceOK reports whether n is a nonce long enough for sa's PRF (RFC 7296
// 2.10: at least 128 bits and half the PRF's key size).
func nonceOK(sa *ikeSA, n *wire.Nonce) bool {
	return n != nil && sa.keys != nil && len(n.Data) >= max(16, sa.keys.prf.size()/2)
}

// warnWeak warns when a weak DH group was negotiated (what: IKE or ESP
// PFS): one under 112 bits of strength (proposal.WeakGroup), or group 23
// or 24, whose RFC 5114 parameters RFC 8247 advises against.
func (s *Session) warnWeak(g uint16, what string) {
	switch {
	case proposal.WeakGroup(g):
		s.log.Warn("weak Diffie-Hellman group negotiated: configure a group of 2048 bits or more (AWS offers 14-21)",
			"sa", what, "group", g)
	case g == 23 || g == 24:
		s.log.Warn("Diffie-Hellman group negotiated that RFC 8247 advises against (RFC 5114 parameters): prefer 14-21",
			"sa", what, "group", g)
	}
}

// handleAuthRequest authenticates the peer, picks the Child SA and answers.
func (s *Session) handleAuthRequest(sa *ikeSA, h wire.Header, m *wire.Message, natt bool) {
	id, _ := m.Get(wire.PayloadIDi).(*wire.ID)
	auth, _ := m.Get(wire.PayloadAuth).(*wire.Auth)
	spa, _ := m.Get(wire.PayloadSA).(*wire.SA)
	tsi, _ := m.Get(wire.PayloadTSi).(*wire.TS)
	tsr, _ := m.Get(wire.PayloadTSr).(*wire.TS)
	if id == nil || auth == nil {
		s.respond(sa, h, []wire.Payload{&wire.Notify{NotifyType: wire.NInvalidSyntax}}, true, natt)
		s.sas.removeHalf(sa)
		return
	}
	want := pskAuth(sa.keys.prf, s.cfg.PSK, sa.initReq, sa.nr, sa.keys.pi, wire.Body(id))
	if auth.Method != wire.AuthPSK || !hmac.Equal(want, auth.Data) || !idMatches(id, s.cfg.RemoteID) {
		s.fail("peer failed authentication: AUTHENTICATION_FAILED (wrong pre-shared key or identity)",
			"peer_id", idString(id), "expected_id", s.cfg.RemoteID)
		s.respond(sa, h, []wire.Payload{&wire.Notify{NotifyType: wire.NAuthenticationFailed}}, true, natt)
		s.sas.removeHalf(sa)
		return
	}
	myID := idPayload(s.cfg.LocalID, true)
	myAuth := &wire.Auth{Method: wire.AuthPSK, Data: pskAuth(sa.keys.prf, s.cfg.PSK, sa.initResp, sa.ni, sa.keys.pr, wire.Body(myID))}
	childErr := func(n uint16, msg string, args ...any) {
		s.fail(msg, args...)
		s.respond(sa, h, []wire.Payload{myID, myAuth, &wire.Notify{NotifyType: n}}, true, natt)
		s.sas.removeHalf(sa)
	}
	if spa == nil || tsi == nil || tsr == nil {
		childErr(wire.NNoProposalChosen, "IKE_AUTH request carries no Child SA")
		return
	}
	chosen, ok := selectProposal(s.cfg.ESPProposals, spa.Proposals, false)
	if !ok || len(chosen.SPI) != 4 {
		childErr(wire.NNoProposalChosen, "no ESP proposal in common with the peer: NO_PROPOSAL_CHOSEN",
			"peer_proposals", proposalsString(spa.Proposals), "our_proposals", proposalsString(s.cfg.ESPProposals))
		return
	}
	st := suiteOf(chosen)
	remote, local := toESP(tsi.Selectors), toESP(tsr.Selectors)
	if len(remote) == 0 || len(local) == 0 {
		childErr(wire.NTSUnacceptable, "peer's traffic selectors have no IPv4 range: TS_UNACCEPTABLE")
		return
	}
	inSPI := randChildSPI()
	iToR, rToI := childKeys(sa.keys, st, nil, sa.ni, sa.nr)
	c := &child{suite: st, sa: &ChildSA{InSPI: inSPI, OutSPI: binary.BigEndian.Uint32(chosen.SPI), Suite: st.espSuite(),
		InKey: iToR, OutKey: rToI, LocalTS: local, RemoteTS: remote}}
	chosen.SPI = binary.BigEndian.AppendUint32(nil, inSPI)
	s.respond(sa, h, []wire.Payload{myID, myAuth, &wire.SA{Proposals: []Proposal{chosen}},
		&wire.TS{Selectors: tsi.Selectors}, &wire.TS{Responder: true, Selectors: tsr.Selectors}}, true, natt)
	if s.sas.ike != nil { // replaced: the peer started over (INITIAL_CONTACT)
		s.dropChildren()
	}
	s.sas.replaceIKE(sa)
	s.ikeUp(sa)
	s.installChild(c, true)
}

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

// handleCreateChild answers the peer's CREATE_CHILD_SA: a rekey of the
// Child SA or of the IKE SA. When we are rekeying the same SA, both
// exchanges complete and the nonces decide later which new SA stays
// (RFC 7296 2.8.1, 2.8.2, 2.25).
func (s *Session) handleCreateChild(sa *ikeSA, h wire.Header, m *wire.Message, natt bool) {
	refuse := func(n uint16, data []byte) {
		s.respond(sa, h, []wire.Payload{&wire.Notify{NotifyType: n, Data: data}}, true, natt)
	}
	spa, _ := m.Get(wire.PayloadSA).(*wire.SA)
	ni, _ := m.Get(wire.PayloadNonce).(*wire.Nonce)
	ke, _ := m.Get(wire.PayloadKE).(*wire.KE)
	if spa == nil || !nonceOK(sa, ni) || len(spa.Proposals) == 0 {
		s.log.Warn("peer sent a CREATE_CHILD_SA without SA or a long enough nonce: INVALID_SYNTAX")
		refuse(wire.NInvalidSyntax, nil)
		return
	}
	ikeRekey := spa.Proposals[0].Protocol == wire.ProtoIKE
	if sa != s.sas.ike || sa.state != stEstablished {
		s.log.Info("peer sent CREATE_CHILD_SA on an IKE SA that is being replaced or deleted: TEMPORARY_FAILURE",
			"spi_i", fmt.Sprintf("%016x", sa.spiI))
		refuse(wire.NTemporaryFailure, nil)
		return
	}
	var target *child
	if ikeRekey {
		switch {
		case s.sas.child != nil && s.sas.child.rekeying:
			s.log.Info("peer wants to rekey the IKE SA while our Child SA rekey is under way: TEMPORARY_FAILURE")
			refuse(wire.NTemporaryFailure, nil)
			return
		case s.sas.old != nil || s.sas.spare != nil || s.sas.ikeRival != nil:
			s.log.Info("peer wants to rekey the IKE SA before the previous rekey finished: TEMPORARY_FAILURE")
			refuse(wire.NTemporaryFailure, nil)
			return
		}
	} else {
		rn := m.Notify(wire.NRekeySA)
		if rn == nil {
			refuse(wire.NNoAdditionalSAs, nil)
			return
		}
		if len(rn.SPI) != 4 {
			s.log.Warn("peer's REKEY_SA has a malformed SPI: INVALID_SYNTAX", "spi_len", len(rn.SPI))
			refuse(wire.NInvalidSyntax, nil)
			return
		}
		spi := binary.BigEndian.Uint32(rn.SPI)
		target = s.sas.childByOutSPI(spi)
		switch {
		case sa.rekeying:
			s.log.Info("peer wants to rekey the Child SA while our IKE SA rekey is under way: TEMPORARY_FAILURE")
			refuse(wire.NTemporaryFailure, nil)
			return
		case target == nil:
			s.log.Warn("peer wants to rekey a Child SA we do not have: CHILD_SA_NOT_FOUND", "spi", fmt.Sprintf("%08x", spi))
			s.respond(sa, h, []wire.Payload{&wire.Notify{Protocol: wire.ProtoESP, SPI: rn.SPI, NotifyType: wire.NChildSANotFound}}, true, natt)
			return
		case target != s.sas.child:
			s.log.Warn("peer wants to rekey a Child SA that is already replaced or being deleted: TEMPORARY_FAILURE",
				"spi", fmt.Sprintf("%08x", spi))
			refuse(wire.NTemporaryFailure, nil)
			return
		case target.rekeying && s.sas.rival != nil:
			s.log.Warn("peer rekeys the same Child SA a second time during a collision: TEMPORARY_FAILURE",
				"spi", fmt.Sprintf("%08x", spi))
			refuse(wire.NTemporaryFailure, nil)
			return
		}
	}
	ours := s.cfg.ESPProposals
	if ikeRekey {
		ours = s.cfg.IKEProposals
	}
	chosen, ok := selectProposal(ours, spa.Proposals, true)
	if !ok {
		s.fail("no proposal in common for the peer's rekey: NO_PROPOSAL_CHOSEN",
			"peer_proposals", proposalsString(spa.Proposals), "our_proposals", proposalsString(ours))
		refuse(wire.NNoProposalChosen, nil)
		return
	}
	st := suiteOf(chosen)
	var dh dhKey
	var gir []byte
	if st.dh != 0 {
		if ke == nil || ke.Group != st.dh {
			refuse(wire.NInvalidKEPayload, binary.BigEndian.AppendUint16(nil, st.dh))
			return
		}
		var err error
		if dh, err = newDH(st.dh); err == nil {
			gir, err = dh.shared(ke.Data)
		}
		if err != nil {
			s.log.Warn("bad KE payload in the peer's CREATE_CHILD_SA: INVALID_SYNTAX", "err", err)
			refuse(wire.NInvalidSyntax, nil)
			return
		}
		if ikeRekey {
			s.warnWeak(st.dh, "IKE")
		} else {
			s.warnWeak(st.dh, "ESP PFS")
		}
	}
	nr := nonce()
	if ikeRekey {
		if len(chosen.SPI) != 8 || dh == nil {
			refuse(wire.NInvalidSyntax, nil)
			return
		}
		spiI, spiR := binary.BigEndian.Uint64(chosen.SPI), randSPI()
		keys, err := deriveIKEKeys(st, gir, ni.Data, nr, spiI, spiR, sa.keys.d, sa.keys.prf)
		if err != nil {
			refuse(wire.NNoProposalChosen, nil)
			return
		}
		chosen.SPI = binary.BigEndian.AppendUint64(nil, spiR)
		s.respond(sa, h, []wire.Payload{&wire.SA{Proposals: []Proposal{chosen}}, &wire.Nonce{Data: nr}, &wire.KE{Group: st.dh, Data: dh.public()}}, true, natt)
		next := &ikeSA{initiator: false, spiI: spiI, spiR: spiR, keys: keys, natt: sa.natt, ni: ni.Data, nr: nr}
		if sa.rekeying {
			// Both ends rekey the IKE SA: answer as usual, decide when ours ends.
			now := time.Now()
			next.state, next.est, next.lastRecv, next.expireAt = stEstablished, now, now, now.Add(s.cfg.IKELifetime)
			s.sas.ikeRival, sa.rival = next, next
			s.log.Info("IKE SA rekey collision: the peer rekeys it too; the nonces decide when ours completes",
				"peer_spi_i", fmt.Sprintf("%016x", spiI))
			return
		}
		s.ikeRekeyed(sa, next, false)
		return
	}
	tsi, _ := m.Get(wire.PayloadTSi).(*wire.TS)
	tsr, _ := m.Get(wire.PayloadTSr).(*wire.TS)
	if tsi == nil || tsr == nil || len(chosen.SPI) != 4 {
		refuse(wire.NInvalidSyntax, nil)
		return
	}
	remote, local := toESP(tsi.Selectors), toESP(tsr.Selectors)
	if len(remote) == 0 || len(local) == 0 {
		refuse(wire.NTSUnacceptable, nil)
		return
	}
	inSPI := randChildSPI()
	iToR, rToI := childKeys(sa.keys, st, gir, ni.Data, nr)
	c := &child{suite: st, ni: ni.Data, nr: nr, sa: &ChildSA{InSPI: inSPI, OutSPI: binary.BigEndian.Uint32(chosen.SPI), Suite: st.espSuite(),
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
		refuse(wire.NTemporaryFailure, nil)
		return
	}
	s.respond(sa, h, ps, true, natt)
	if target.rekeying {
		s.sas.rival, target.rival = c, c
		s.log.Info("Child SA rekey collision: the peer rekeys it too; the nonces decide when ours completes",
			"spi_in", fmt.Sprintf("%08x", inSPI))
		return
	}
	s.adopt(c)
}

// ikeRekeyed makes next the current IKE SA; the Child SAs move to it. The
// initiator of the surviving rekey deletes the old SA.
func (s *Session) ikeRekeyed(old, next *ikeSA, weInitiated bool) {
	now := time.Now()
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
	now := time.Now()
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
			c.rekeying, c.rekeyAt = false, time.Now().Add(10*time.Second)
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
			c.rekeyAt = time.Now().Add(10 * time.Second)
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
			c.expireAt = time.Now().Add(s.oldLinger)
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

func (s *Session) sendIKERekey(sa *ikeSA, group uint16) {
	newSPI, ni := randSPI(), nonce()
	dh, err := newDH(group)
	if err != nil {
		s.fail("cannot make DH key", "group", group, "err", err)
		sa.rekeying, sa.rekeyAt = false, time.Now().Add(10*time.Second)
		return
	}
	props := append([]Proposal(nil), s.cfg.IKEProposals...)
	for i := range props {
		props[i].SPI = binary.BigEndian.AppendUint64(nil, newSPI)
	}
	m := &wire.Message{Header: s.reqHeader(sa, wire.CreateChildSA), Encrypted: true,
		Payloads: []wire.Payload{&wire.SA{Proposals: props}, &wire.Nonce{Data: ni}, &wire.KE{Group: group, Data: dh.public()}}}
	// settle takes the peer's colliding new IKE SA off sa, if any, and
	// reports whether it is still there (the peer deletes it once it lost).
	settle := func() (peer *ikeSA, live bool) {
		peer, sa.rival = sa.rival, nil
		if live = peer != nil && s.sas.ikeRival == peer; live {
			s.sas.ikeRival = nil
		}
		return peer, live
	}
	// failed gives up our rekey; if the peer rekeyed the SA too, its new
	// IKE SA carries on and the peer deletes this one.
	failed := func(msg string, args ...any) {
		if peer, live := settle(); live {
			s.log.Info("our IKE SA rekey failed but the peer's succeeded; moving to its new IKE SA",
				append([]any{"reason", msg}, args...)...)
			s.ikeRekeyed(sa, peer, false)
			return
		}
		s.log.Warn(msg+"; retrying later", args...)
		sa.rekeying, sa.rekeyAt = false, time.Now().Add(10*time.Second)
	}
	s.request(sa, m, "CREATE_CHILD_SA (IKE rekey)", func(r *wire.Message) {
		if n := r.Notify(wire.NInvalidKEPayload); n != nil && len(n.Data) == 2 {
			g := binary.BigEndian.Uint16(n.Data)
			if g != group && offers(s.cfg.IKEProposals, Transform{Type: TransformDH, ID: g}) {
				s.sendIKERekey(sa, g)
				return
			}
		}
		if n := r.ErrorNotify(); n != nil {
			failed("peer refused the IKE SA rekey", "notify", wire.NotifyName(n.NotifyType))
			return
		}
		spa, _ := r.Get(wire.PayloadSA).(*wire.SA)
		nr, _ := r.Get(wire.PayloadNonce).(*wire.Nonce)
		ke, _ := r.Get(wire.PayloadKE).(*wire.KE)
		if spa == nil || !nonceOK(sa, nr) || ke == nil || len(spa.Proposals) != 1 || len(spa.Proposals[0].SPI) != 8 {
			failed("bad IKE rekey response")
			return
		}
		chosen, ok := selectProposal(s.cfg.IKEProposals, spa.Proposals, true)
		st := suiteOf(chosen)
		if !ok || st.dh != group || ke.Group != group {
			failed("peer chose an IKE rekey proposal we did not offer", "chosen", spa.Proposals[0].String())
			return
		}
		gir, err := dh.shared(ke.Data)
		if err != nil {
			failed("bad KE payload in the IKE rekey response", "err", err)
			return
		}
		spiR := binary.BigEndian.Uint64(spa.Proposals[0].SPI)
		keys, err := deriveIKEKeys(st, gir, ni, nr.Data, newSPI, spiR, sa.keys.d, sa.keys.prf)
		if err != nil {
			failed("IKE rekey key derivation failed", "err", err)
			return
		}
		next := &ikeSA{initiator: true, spiI: newSPI, spiR: spiR, keys: keys, natt: sa.natt, ni: ni, nr: nr.Data}
		if peer, live := settle(); peer != nil {
			switch lost := lostCollision(next.ni, next.nr, peer.ni, peer.nr); {
			case lost && live:
				// Ours holds the lowest nonce: we delete it; the peer's new
				// SA inherits the Child SAs and the peer deletes the old one.
				s.log.Info("IKE SA rekey collision lost: deleting our redundant new IKE SA; moving to the peer's",
					"redundant_spi_i", fmt.Sprintf("%016x", next.spiI), "survivor_spi_i", fmt.Sprintf("%016x", peer.spiI))
				s.ikeRekeyed(sa, peer, false)
				s.deleteSpare(next)
				return
			case lost:
				s.log.Warn("IKE SA rekey collision: the peer deleted its new IKE SA although ours holds the lowest nonce; keeping ours",
					"spi_i", fmt.Sprintf("%016x", next.spiI))
			default:
				s.log.Info("IKE SA rekey collision won: our new IKE SA stays; the peer deletes its redundant one",
					"survivor_spi_i", fmt.Sprintf("%016x", next.spiI), "redundant_spi_i", fmt.Sprintf("%016x", peer.spiI))
				if live {
					peer.state, peer.expireAt = stDeleting, time.Now().Add(s.cfg.DPDTimeout)
					s.sas.spare = peer
				}
			}
		}
		s.ikeRekeyed(sa, next, true)
	}, func() {
		s.fail("peer is dead: no answer to the IKE rekey", "timeout", s.cfg.DPDTimeout)
		s.restart("rekey timeout")
	})
}
