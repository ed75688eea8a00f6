package ike

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"
)

// underLoad records an IKE_SA_INIT request and reports whether more than
// CookieThreshold arrived within the last second.
func (s *Session) underLoad(now time.Time) bool {
	keep := s.initArrivals[:0]
	for _, t := range s.initArrivals {
		if now.Sub(t) < time.Second {
			keep = append(keep, t)
		}
	}
	s.initArrivals = append(keep, now)
	return s.cfg.CookieThreshold < 0 || len(s.initArrivals) > s.cfg.CookieThreshold
}

// cookie is RFC 7296 2.6's stateless cookie: a version byte and
// HMAC-SHA256(secret, Ni | IPi | SPIi), truncated to 16 bytes.
func (s *Session) cookie(ni []byte, spiI uint64) []byte {
	mac := hmac.New(sha256.New, s.cookieSecret[:])
	mac.Write(ni)
	mac.Write(s.cfg.Remote.AsSlice())
	mac.Write(binary.BigEndian.AppendUint64(nil, spiI))
	return append([]byte{1}, mac.Sum(nil)[:16]...)
}

// handleInitRequest answers a peer's IKE_SA_INIT.
func (s *Session) handleInitRequest(h Header, p packet) {
	if h.MsgID != 0 || h.SPIr != 0 {
		return
	}
	if hf := s.half; hf != nil && hf.spiI == h.SPIi {
		if hf.lastResp != nil {
			s.tr.SendIKE(hf.lastResp, hf.lastNatt) // a retransmission
		}
		return
	}
	m, err := parse(p.b, nil)
	if err != nil {
		s.log.Warn("dropping bad IKE_SA_INIT request", "err", err)
		return
	}
	tmp := &ikeSA{spiI: h.SPIi}
	refuse := func(n *Notify) { s.respond(tmp, h, []Payload{n}, false, p.natt) }
	spa, _ := m.Get(PayloadSA).(*SA)
	ke, _ := m.Get(PayloadKE).(*KE)
	ni, _ := m.Get(PayloadNonce).(*Nonce)
	if spa == nil || ke == nil || ni == nil {
		refuse(&Notify{NotifyType: NInvalidSyntax})
		return
	}
	if s.underLoad(time.Now()) {
		want := s.cookie(ni.Data, h.SPIi)
		if got := m.Notify(NCookie); got == nil || !hmac.Equal(got.Data, want) {
			s.log.Info("IKE_SA_INIT requests above the cookie threshold: asking the peer for a COOKIE")
			refuse(&Notify{NotifyType: NCookie, Data: want})
			return
		}
	}
	chosen, ok := selectProposal(s.cfg.IKEProposals, spa.Proposals, true)
	if !ok {
		s.fail("no IKE proposal in common with the peer: NO_PROPOSAL_CHOSEN",
			"peer_proposals", proposalsString(spa.Proposals), "our_proposals", proposalsString(s.cfg.IKEProposals))
		refuse(&Notify{NotifyType: NNoProposalChosen})
		return
	}
	st := suiteOf(chosen)
	if ke.Group != st.dh {
		refuse(&Notify{NotifyType: NInvalidKEPayload, Data: binary.BigEndian.AppendUint16(nil, st.dh)})
		return
	}
	dh, err := newDH(st.dh)
	if err != nil {
		refuse(&Notify{NotifyType: NNoProposalChosen})
		return
	}
	gir, err := dh.shared(ke.Data)
	if err != nil {
		s.log.Warn("bad KE payload in IKE_SA_INIT", "err", err)
		refuse(&Notify{NotifyType: NInvalidSyntax})
		return
	}
	sa := &ikeSA{spiI: h.SPIi, spiR: randSPI(), state: stRespInit, group: st.dh, dh: dh, ni: ni.Data, nr: nonce(),
		initReq: p.b, lastRecv: time.Now()}
	if sa.keys, err = deriveIKEKeys(st, gir, sa.ni, sa.nr, sa.spiI, sa.spiR, nil, prf{}); err != nil {
		s.log.Error("key derivation failed", "err", err)
		return
	}
	chosen.SPI = nil
	ps := []Payload{&SA{Proposals: []Proposal{chosen}}, &KE{Group: st.dh, Data: dh.public()}, &Nonce{Data: sa.nr}}
	ps = append(ps, s.natHashes(sa.spiI, sa.spiR)...)
	s.start = time.Now()
	s.respond(sa, h, ps, false, p.natt)
	sa.initResp = sa.lastResp
	sa.nextID = 0
	s.half = sa
	s.log.Info("answered IKE_SA_INIT", "spi_i", fmt.Sprintf("%016x", sa.spiI), "suite", st.String())
}

// handleAuthRequest authenticates the peer, picks the Child SA and answers.
func (s *Session) handleAuthRequest(sa *ikeSA, h Header, m *Message, natt bool) {
	id, _ := m.Get(PayloadIDi).(*ID)
	auth, _ := m.Get(PayloadAuth).(*Auth)
	spa, _ := m.Get(PayloadSA).(*SA)
	tsi, _ := m.Get(PayloadTSi).(*TS)
	tsr, _ := m.Get(PayloadTSr).(*TS)
	if id == nil || auth == nil {
		s.respond(sa, h, []Payload{&Notify{NotifyType: NInvalidSyntax}}, true, natt)
		s.half = nil
		return
	}
	want := pskAuth(sa.keys.prf, s.cfg.PSK, sa.initReq, sa.nr, sa.keys.pi, body(id))
	if auth.Method != AuthPSK || !bytes.Equal(want, auth.Data) || !idMatches(id, s.cfg.RemoteID) {
		s.fail("peer failed authentication: AUTHENTICATION_FAILED (wrong pre-shared key or identity)",
			"peer_id", idString(id), "expected_id", s.cfg.RemoteID)
		s.respond(sa, h, []Payload{&Notify{NotifyType: NAuthenticationFailed}}, true, natt)
		s.half = nil
		return
	}
	myID := idPayload(s.cfg.LocalID, true)
	myAuth := &Auth{Method: AuthPSK, Data: pskAuth(sa.keys.prf, s.cfg.PSK, sa.initResp, sa.ni, sa.keys.pr, body(myID))}
	childErr := func(n uint16, msg string, args ...any) {
		s.fail(msg, args...)
		s.respond(sa, h, []Payload{myID, myAuth, &Notify{NotifyType: n}}, true, natt)
		s.half = nil
	}
	if spa == nil || tsi == nil || tsr == nil {
		childErr(NNoProposalChosen, "IKE_AUTH request carries no Child SA")
		return
	}
	chosen, ok := selectProposal(s.cfg.ESPProposals, spa.Proposals, false)
	if !ok || len(chosen.SPI) != 4 {
		childErr(NNoProposalChosen, "no ESP proposal in common with the peer: NO_PROPOSAL_CHOSEN",
			"peer_proposals", proposalsString(spa.Proposals), "our_proposals", proposalsString(s.cfg.ESPProposals))
		return
	}
	st := suiteOf(chosen)
	remote, local := toESP(tsi.Selectors), toESP(tsr.Selectors)
	if len(remote) == 0 || len(local) == 0 {
		childErr(NTSUnacceptable, "peer's traffic selectors have no IPv4 range: TS_UNACCEPTABLE")
		return
	}
	inSPI := randChildSPI()
	iToR, rToI := childKeys(sa.keys, st, nil, sa.ni, sa.nr)
	c := &child{suite: st, sa: &ChildSA{InSPI: inSPI, OutSPI: binary.BigEndian.Uint32(chosen.SPI), Suite: st.espSuite(),
		InKey: iToR, OutKey: rToI, LocalTS: local, RemoteTS: remote}}
	chosen.SPI = binary.BigEndian.AppendUint32(nil, inSPI)
	s.respond(sa, h, []Payload{myID, myAuth, &SA{Proposals: []Proposal{chosen}},
		&TS{Selectors: tsi.Selectors}, &TS{Responder: true, Selectors: tsr.Selectors}}, true, natt)
	if s.sa != nil { // replaced: the peer started over (INITIAL_CONTACT)
		for _, oc := range []*child{s.child, s.oldChild} {
			if oc != nil {
				s.dp.Remove(oc.sa.InSPI)
			}
		}
		s.child, s.oldChild, s.old = nil, nil, nil
	}
	s.sa, s.half = sa, nil
	s.ikeUp(sa)
	s.installChild(c, true)
}

func (s *Session) handleInformational(sa *ikeSA, h Header, m *Message, natt bool) {
	var ours [][]byte
	for _, p := range m.Payloads {
		switch p := p.(type) {
		case *Delete:
			if p.Protocol == ProtoIKE {
				s.respond(sa, h, nil, true, natt)
				if sa == s.old {
					s.old = nil
					return
				}
				s.log.Info("peer deleted the IKE SA")
				s.restart("deleted by peer")
				return
			}
			if p.Protocol != ProtoESP {
				continue
			}
			for _, spi := range p.SPIs {
				if len(spi) != 4 {
					continue
				}
				out := binary.BigEndian.Uint32(spi)
				for _, c := range []*child{s.oldChild, s.child} {
					if c != nil && c.sa.OutSPI == out {
						ours = append(ours, binary.BigEndian.AppendUint32(nil, c.sa.InSPI))
						s.removeChild(c)
					}
				}
			}
		case *Notify:
			if p.NotifyType < 16384 {
				s.log.Warn("peer reports an error", "notify", NotifyName(p.NotifyType))
			}
		}
	}
	var resp []Payload
	if len(ours) > 0 {
		resp = append(resp, &Delete{Protocol: ProtoESP, SPIs: ours})
	}
	s.respond(sa, h, resp, true, natt)
}

// removeChild forgets c; if it was the old half of a rekey, traffic moves
// to the new Child SA first.
func (s *Session) removeChild(c *child) {
	if c == s.oldChild {
		if s.child != nil {
			s.dp.UseOutbound(s.child.sa)
		}
		s.dp.Remove(c.sa.InSPI)
		s.oldChild = nil
		return
	}
	if c == s.child {
		s.dp.Remove(c.sa.InSPI)
		s.child = nil
		s.log.Info("peer deleted the Child SA", "spi_in", fmt.Sprintf("%08x", c.sa.InSPI))
	}
}

func (s *Session) handleCreateChild(sa *ikeSA, h Header, m *Message, natt bool) {
	refuse := func(n uint16, data []byte) {
		s.respond(sa, h, []Payload{&Notify{NotifyType: n, Data: data}}, true, natt)
	}
	if sa != s.sa || sa.state != stEstablished {
		refuse(NTemporaryFailure, nil)
		return
	}
	if sa.req != nil && sa.req.what != "DPD" {
		refuse(NTemporaryFailure, nil) // our own exchange is under way: the peer retries
		return
	}
	spa, _ := m.Get(PayloadSA).(*SA)
	ni, _ := m.Get(PayloadNonce).(*Nonce)
	ke, _ := m.Get(PayloadKE).(*KE)
	if spa == nil || ni == nil || len(spa.Proposals) == 0 {
		refuse(NInvalidSyntax, nil)
		return
	}
	ikeRekey := spa.Proposals[0].Protocol == ProtoIKE
	ours := s.cfg.ESPProposals
	if ikeRekey {
		ours = s.cfg.IKEProposals
	} else if m.Notify(NRekeySA) == nil {
		refuse(NNoAdditionalSAs, nil)
		return
	}
	chosen, ok := selectProposal(ours, spa.Proposals, true)
	if !ok {
		s.fail("no proposal in common for the peer's rekey: NO_PROPOSAL_CHOSEN",
			"peer_proposals", proposalsString(spa.Proposals), "our_proposals", proposalsString(ours))
		refuse(NNoProposalChosen, nil)
		return
	}
	st := suiteOf(chosen)
	var dh dhKey
	var gir []byte
	if st.dh != 0 {
		if ke == nil || ke.Group != st.dh {
			refuse(NInvalidKEPayload, binary.BigEndian.AppendUint16(nil, st.dh))
			return
		}
		var err error
		if dh, err = newDH(st.dh); err == nil {
			gir, err = dh.shared(ke.Data)
		}
		if err != nil {
			refuse(NInvalidSyntax, nil)
			return
		}
	}
	nr := nonce()
	if ikeRekey {
		if len(chosen.SPI) != 8 || dh == nil {
			refuse(NInvalidSyntax, nil)
			return
		}
		spiI, spiR := binary.BigEndian.Uint64(chosen.SPI), randSPI()
		keys, err := deriveIKEKeys(st, gir, ni.Data, nr, spiI, spiR, sa.keys.d, sa.keys.prf)
		if err != nil {
			refuse(NNoProposalChosen, nil)
			return
		}
		chosen.SPI = binary.BigEndian.AppendUint64(nil, spiR)
		s.respond(sa, h, []Payload{&SA{Proposals: []Proposal{chosen}}, &Nonce{Data: nr}, &KE{Group: st.dh, Data: dh.public()}}, true, natt)
		s.ikeRekeyed(sa, &ikeSA{initiator: false, spiI: spiI, spiR: spiR, keys: keys, natt: sa.natt}, false)
		return
	}
	tsi, _ := m.Get(PayloadTSi).(*TS)
	tsr, _ := m.Get(PayloadTSr).(*TS)
	if tsi == nil || tsr == nil || len(chosen.SPI) != 4 {
		refuse(NInvalidSyntax, nil)
		return
	}
	remote, local := toESP(tsi.Selectors), toESP(tsr.Selectors)
	if len(remote) == 0 || len(local) == 0 {
		refuse(NTSUnacceptable, nil)
		return
	}
	inSPI := randChildSPI()
	iToR, rToI := childKeys(sa.keys, st, gir, ni.Data, nr)
	c := &child{suite: st, sa: &ChildSA{InSPI: inSPI, OutSPI: binary.BigEndian.Uint32(chosen.SPI), Suite: st.espSuite(),
		InKey: iToR, OutKey: rToI, LocalTS: local, RemoteTS: remote}}
	chosen.SPI = binary.BigEndian.AppendUint32(nil, inSPI)
	ps := []Payload{&SA{Proposals: []Proposal{chosen}}, &Nonce{Data: nr}}
	if dh != nil {
		ps = append(ps, &KE{Group: st.dh, Data: dh.public()})
	}
	ps = append(ps, &TS{Selectors: tsi.Selectors}, &TS{Responder: true, Selectors: tsr.Selectors})
	// Make before break: accept on the new SA now, keep sending on the old
	// one until the peer deletes it (it has the new inbound SA by then).
	s.installChild(c, false)
	s.respond(sa, h, ps, true, natt)
	s.setStatus(func(st *Status) { st.ChildRekeys++ })
}

// ikeRekeyed makes next the current IKE SA; the Child SAs move to it. The
// rekey initiator deletes the old SA.
func (s *Session) ikeRekeyed(old, next *ikeSA, weInitiated bool) {
	now := time.Now()
	next.state, next.est, next.lastRecv = stEstablished, now, now
	next.rekeyAt, next.expireAt = s.rekeyTime(now, s.cfg.IKELifetime), now.Add(s.cfg.IKELifetime)
	old.rekeying = false
	old.expireAt = now.Add(s.cfg.DPDTimeout)
	if !weInitiated {
		old.state = stDeleting // the peer deletes it
	}
	s.old, s.sa = old, next
	s.log.Info("IKE SA rekeyed", "spi_i", fmt.Sprintf("%016x", next.spiI), "spi_r", fmt.Sprintf("%016x", next.spiR))
	s.setStatus(func(st *Status) {
		st.SPIi, st.SPIr = fmt.Sprintf("%016x", next.spiI), fmt.Sprintf("%016x", next.spiR)
		st.IKESuite, st.IKERekeyDue = next.keys.suite.String(), next.rekeyAt
		st.IKERekeys++
	})
}

// deleteOld deletes the IKE SA we replaced by rekeying.
func (s *Session) deleteOld() {
	old := s.old
	old.state = stDeleting
	m := &Message{Header: s.reqHeader(old, Informational), Encrypted: true, Payloads: []Payload{&Delete{Protocol: ProtoIKE}}}
	done := func() {
		if s.old == old {
			s.old = nil
		}
	}
	s.request(old, m, "INFORMATIONAL delete", func(*Message) { done() }, done)
}

// rekeyChild replaces the Child SA with CREATE_CHILD_SA (with PFS when the
// ESP proposals have a DH group), then deletes the old one.
func (s *Session) rekeyChild() {
	sa, c := s.sa, s.child
	c.rekeying = true
	s.sendChildRekey(sa, c, firstDH(s.cfg.ESPProposals))
}

func (s *Session) sendChildRekey(sa *ikeSA, c *child, group uint16) {
	newSPI, ni := randChildSPI(), nonce()
	ps := []Payload{&Notify{Protocol: ProtoESP, SPI: binary.BigEndian.AppendUint32(nil, c.sa.InSPI), NotifyType: NRekeySA},
		&SA{Proposals: s.espOffer(newSPI, true)}, &Nonce{Data: ni}}
	var dh dhKey
	if group != 0 {
		var err error
		if dh, err = newDH(group); err != nil {
			s.fail("cannot make DH key", "group", group, "err", err)
			return
		}
		ps = append(ps, &KE{Group: group, Data: dh.public()})
	}
	ps = append(ps, &TS{Selectors: fromESP(c.sa.LocalTS)}, &TS{Responder: true, Selectors: fromESP(c.sa.RemoteTS)})
	m := &Message{Header: s.reqHeader(sa, CreateChildSA), Encrypted: true, Payloads: ps}
	s.request(sa, m, "CREATE_CHILD_SA (Child rekey)", func(r *Message) {
		if n := r.Notify(NInvalidKEPayload); n != nil && len(n.Data) == 2 {
			g := binary.BigEndian.Uint16(n.Data)
			if g != group && offers(s.cfg.ESPProposals, Transform{TransformDH, g, 0}) {
				s.sendChildRekey(sa, c, g)
				return
			}
		}
		if n := r.ErrorNotify(); n != nil {
			s.log.Warn("peer refused the Child SA rekey; retrying later", "notify", NotifyName(n.NotifyType))
			c.rekeying, c.rekeyAt = false, time.Now().Add(10*time.Second)
			return
		}
		nr, _ := r.Get(PayloadNonce).(*Nonce)
		if nr == nil {
			c.rekeying, c.rekeyAt = false, time.Now().Add(10*time.Second)
			return
		}
		nc, err := s.childFromResponse(r, newSPI, dh, ni, nr.Data, true)
		if err != nil {
			s.fail("Child SA rekey failed", "err", err)
			c.rekeying, c.rekeyAt = false, time.Now().Add(10*time.Second)
			return
		}
		s.installChild(nc, true)
		s.setStatus(func(st *Status) { st.ChildRekeys++ })
		del := &Message{Header: s.reqHeader(sa, Informational), Encrypted: true,
			Payloads: []Payload{&Delete{Protocol: ProtoESP, SPIs: [][]byte{binary.BigEndian.AppendUint32(nil, c.sa.InSPI)}}}}
		linger := func() { // keep the old inbound SA briefly for packets in flight
			if s.oldChild == c {
				c.expireAt = time.Now().Add(2 * time.Second)
			}
		}
		s.request(sa, del, "INFORMATIONAL delete child", func(*Message) { linger() }, linger)
	}, func() {
		s.fail("peer is dead: no answer to CREATE_CHILD_SA", "timeout", s.cfg.DPDTimeout)
		s.restart("rekey timeout")
	})
}

// rekeyIKE replaces the IKE SA with CREATE_CHILD_SA, then deletes the old one.
func (s *Session) rekeyIKE() {
	sa := s.sa
	sa.rekeying = true
	s.sendIKERekey(sa, firstDH(s.cfg.IKEProposals))
}

func (s *Session) sendIKERekey(sa *ikeSA, group uint16) {
	newSPI, ni := randSPI(), nonce()
	dh, err := newDH(group)
	if err != nil {
		s.fail("cannot make DH key", "group", group, "err", err)
		return
	}
	props := append([]Proposal(nil), s.cfg.IKEProposals...)
	for i := range props {
		props[i].SPI = binary.BigEndian.AppendUint64(nil, newSPI)
	}
	m := &Message{Header: s.reqHeader(sa, CreateChildSA), Encrypted: true,
		Payloads: []Payload{&SA{Proposals: props}, &Nonce{Data: ni}, &KE{Group: group, Data: dh.public()}}}
	retry := func() { sa.rekeying, sa.rekeyAt = false, time.Now().Add(10*time.Second) }
	s.request(sa, m, "CREATE_CHILD_SA (IKE rekey)", func(r *Message) {
		if n := r.Notify(NInvalidKEPayload); n != nil && len(n.Data) == 2 {
			g := binary.BigEndian.Uint16(n.Data)
			if g != group && offers(s.cfg.IKEProposals, Transform{TransformDH, g, 0}) {
				s.sendIKERekey(sa, g)
				return
			}
		}
		if n := r.ErrorNotify(); n != nil {
			s.log.Warn("peer refused the IKE SA rekey; retrying later", "notify", NotifyName(n.NotifyType))
			retry()
			return
		}
		spa, _ := r.Get(PayloadSA).(*SA)
		nr, _ := r.Get(PayloadNonce).(*Nonce)
		ke, _ := r.Get(PayloadKE).(*KE)
		if spa == nil || nr == nil || ke == nil || len(spa.Proposals) != 1 || len(spa.Proposals[0].SPI) != 8 {
			s.log.Warn("bad IKE rekey response; retrying later")
			retry()
			return
		}
		chosen, ok := selectProposal(s.cfg.IKEProposals, spa.Proposals, true)
		st := suiteOf(chosen)
		if !ok || st.dh != group || ke.Group != group {
			s.log.Warn("peer chose an IKE rekey proposal we did not offer", "chosen", spa.Proposals[0].String())
			retry()
			return
		}
		gir, err := dh.shared(ke.Data)
		if err != nil {
			retry()
			return
		}
		spiR := binary.BigEndian.Uint64(spa.Proposals[0].SPI)
		keys, err := deriveIKEKeys(st, gir, ni, nr.Data, newSPI, spiR, sa.keys.d, sa.keys.prf)
		if err != nil {
			retry()
			return
		}
		s.ikeRekeyed(sa, &ikeSA{initiator: true, spiI: newSPI, spiR: spiR, keys: keys, natt: sa.natt}, true)
	}, func() {
		s.fail("peer is dead: no answer to the IKE rekey", "timeout", s.cfg.DPDTimeout)
		s.restart("rekey timeout")
	})
}
