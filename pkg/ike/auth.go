package ike

import (
	"crypto/hmac"
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/cgwd/cgwd/pkg/certauth"
	"github.com/cgwd/cgwd/pkg/ike/wire"
)

// IKE_AUTH in both roles (RFC 7296 1.2): authentication with the
// pre-shared key and the first Child SA.

func (s *Session) sendAuth(sa *ikeSA) {
	sa.state = stAuthSent
	sa.childSPI = randChildSPI()
	id, auth, certs, err := s.ourAuth(sa, true)
	if err != nil {
		s.fail("cannot authenticate", "err", err)
		s.sas.ike = nil
		s.scheduleRetry(false)
		return
	}
	ps := append([]wire.Payload{id}, certs...)
	ps = append(ps, &wire.Notify{NotifyType: wire.NInitialContact})
	if s.cfg.Cert == nil {
		ps = append(ps, idPayload(s.cfg.RemoteID, true))
	}
	ps = append(ps, auth, &wire.SA{Proposals: s.espOffer(sa.childSPI, false)}, anyTS(false), anyTS(true))
	m := &wire.Message{Header: s.reqHeader(sa, wire.IKEAuth), Encrypted: true, Payloads: ps}
	s.request(sa, m, "IKE_AUTH", func(r *wire.Message) { s.handleAuthResponse(sa, r) }, func() {
		s.fail("peer unreachable: no answer to IKE_AUTH on UDP 4500", "timeout", s.cfg.DPDTimeout)
		s.sas.ike = nil
		s.scheduleRetry(false)
	})
}

func (s *Session) handleAuthResponse(sa *ikeSA, m *wire.Message) {
	if n := m.ErrorNotify(); n != nil && m.Get(wire.PayloadAuth) == nil {
		s.initFailed(n, "IKE_AUTH")
		return
	}
	id, _ := m.Get(wire.PayloadIDr).(*wire.ID)
	auth, _ := m.Get(wire.PayloadAuth).(*wire.Auth)
	if id == nil || auth == nil {
		s.fail("IKE_AUTH response lacks IDr or AUTH")
		s.sas.ike = nil
		s.scheduleRetry(false)
		return
	}
	if s.cfg.Cert != nil {
		if msg, args := s.verifyCertAuth(sa, m, id, auth, false); msg != "" {
			s.fail(msg, args...)
			s.sas.ike = nil
			s.scheduleRetry(false)
			return
		}
	} else if msg, args := pskPeerUsesCert(id, auth); msg != "" {
		s.fail(msg, args...)
		s.sas.ike = nil
		s.scheduleRetry(false)
		return
	} else if want := pskAuth(sa.keys.prf, s.cfg.PSK, sa.initResp, sa.ni, sa.keys.pr, wire.Body(id)); auth.Method != wire.AuthPSK || !hmac.Equal(want, auth.Data) {
		s.fail("peer failed authentication: its AUTH does not match the pre-shared key (AUTHENTICATION_FAILED)", "remote_id", idString(id))
		s.sas.ike = nil
		s.scheduleRetry(false)
		return
	}
	if s.cfg.Cert == nil && !idMatches(id, s.cfg.RemoteID) {
		s.fail("peer authenticated with an identity other than remote_id (AUTHENTICATION_FAILED)", s.idArgs(id)...)
		s.sas.ike = nil
		s.scheduleRetry(false)
		return
	}
	s.ikeUp(sa)
	if n := m.ErrorNotify(); n != nil {
		s.initFailed(n, "IKE_AUTH (Child SA)")
		return
	}
	c, err := s.childFromResponse(m, sa.childSPI, nil, sa.ni, sa.nr, false)
	if err != nil {
		s.fail("Child SA not established", "err", err)
		s.sas.ike = nil
		s.scheduleRetry(false)
		return
	}
	s.installChild(c, true)
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
	if s.cfg.Cert != nil {
		if msg, args := s.verifyCertAuth(sa, m, id, auth, true); msg != "" {
			s.fail(msg, args...)
			s.respond(sa, h, []wire.Payload{&wire.Notify{NotifyType: wire.NAuthenticationFailed}}, true, natt)
			s.sas.removeHalf(sa)
			return
		}
	} else if pskOK, idOK := s.pskMatches(sa, id, auth), idMatches(id, s.cfg.RemoteID); !pskOK || !idOK {
		msg := "peer failed authentication: its AUTH does not match the pre-shared key (AUTHENTICATION_FAILED)"
		args := append(s.idArgs(id), "psk_matches", pskOK)
		if m, a := pskPeerUsesCert(id, auth); m != "" {
			msg, args = m, a
		} else if !idOK {
			msg = "peer's identity is not remote_id (AUTHENTICATION_FAILED): AWS's is its tunnel outside address"
		}
		s.fail(msg, args...)
		s.respond(sa, h, []wire.Payload{&wire.Notify{NotifyType: wire.NAuthenticationFailed}}, true, natt)
		s.sas.removeHalf(sa)
		return
	}
	if r, _ := m.Get(wire.PayloadIDr).(*wire.ID); r != nil && s.cfg.Cert == nil && !idMatches(r, s.cfg.LocalID) {
		// RFC 7296 3.5 lets us answer with our own identity; the peer
		// will likely refuse it, so name both.
		s.log.Warn("peer expects another identity of cgwd than local_id; AWS expects the customer gateway's "+
			"public address, also behind NAT: set local_id to it", "peer_expects", idString(r), "local_id", s.cfg.LocalID)
	}
	myID, myAuth, myCerts, err := s.ourAuth(sa, false)
	if err != nil {
		s.fail("cannot authenticate", "err", err)
		s.respond(sa, h, []wire.Payload{&wire.Notify{NotifyType: wire.NAuthenticationFailed}}, true, natt)
		s.sas.removeHalf(sa)
		return
	}
	mine := append(append([]wire.Payload{myID}, myCerts...), myAuth)
	childErr := func(n uint16, msg string, args ...any) {
		s.fail(msg, args...)
		s.respond(sa, h, append(mine, &wire.Notify{NotifyType: n}), true, natt)
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
	s.respond(sa, h, append(mine, &wire.SA{Proposals: []Proposal{chosen}},
		&wire.TS{Selectors: tsi.Selectors}, &wire.TS{Responder: true, Selectors: tsr.Selectors}), true, natt)
	if s.sas.ike != nil { // replaced: the peer started over (INITIAL_CONTACT)
		s.dropChildren()
	}
	s.sas.replaceIKE(sa)
	s.ikeUp(sa)
	s.installChild(c, true)
}

func (s *Session) ikeUp(sa *ikeSA) {
	now := s.now()
	sa.state = stEstablished
	sa.est = now
	sa.lastRecv = now
	sa.rekeyAt = s.rekeyTime(now, s.cfg.IKELifetime)
	sa.expireAt = now.Add(s.cfg.IKELifetime)
	s.failures = 0
	role := "responder"
	if sa.initiator {
		role = "initiator"
	}
	took := now.Sub(s.start)
	s.log.Info("IKE SA established", "role", role, "suite", sa.keys.suite.String(),
		"spi_i", fmt.Sprintf("%016x", sa.spiI), "spi_r", fmt.Sprintf("%016x", sa.spiR), "took", took.Round(time.Millisecond))
	s.setStatus(func(st *Status) {
		st.State, st.Role = "established", role
		st.SPIi, st.SPIr = fmt.Sprintf("%016x", sa.spiI), fmt.Sprintf("%016x", sa.spiR)
		st.IKESuite, st.Established, st.IKERekeyDue = sa.keys.suite.String(), now, sa.rekeyAt
		st.EstablishTime = took.Seconds()
		st.Establishments++
		st.LastError = ""
	})
}

func idPayload(a netip.Addr, responder bool) *wire.ID {
	b := a.As4()
	return &wire.ID{Responder: responder, IDType: wire.IDIPv4Addr, Data: b[:]}
}

func anyTS(responder bool) *wire.TS {
	return &wire.TS{Responder: responder, Selectors: []wire.Selector{{StartPort: 0, EndPort: 65535,
		Start: netip.AddrFrom4([4]byte{}), End: netip.AddrFrom4([4]byte{255, 255, 255, 255})}}}
}

// espOffer is our ESP proposals with SPI; withDH keeps the DH transforms.
func (s *Session) espOffer(spi uint32, withDH bool) []Proposal {
	var out []Proposal
	spib := binary.BigEndian.AppendUint32(nil, spi)
	for _, p := range s.cfg.ESPProposals {
		q := Proposal{Num: p.Num, Protocol: wire.ProtoESP, SPI: spib}
		for _, t := range p.Transforms {
			if t.Type != TransformDH || withDH {
				q.Transforms = append(q.Transforms, t)
			}
		}
		out = append(out, q)
	}
	return out
}

// idArgs are the log arguments naming the identity the peer sent and
// both configured ones.
func (s *Session) idArgs(peer *wire.ID) []any {
	return []any{"peer_id", idString(peer), "remote_id", s.cfg.RemoteID, "local_id", s.cfg.LocalID}
}

func idString(id *wire.ID) string {
	if id.IDType == wire.IDIPv4Addr && len(id.Data) == 4 {
		return netip.AddrFrom4([4]byte(id.Data)).String()
	}
	return certauth.IDString(id.IDType, id.Data)
}

// pskMatches checks the peer's (the initiator's) PSK AUTH payload.
func (s *Session) pskMatches(sa *ikeSA, id *wire.ID, auth *wire.Auth) bool {
	want := pskAuth(sa.keys.prf, s.cfg.PSK, sa.initReq, sa.nr, sa.keys.pi, wire.Body(id))
	return auth.Method == wire.AuthPSK && hmac.Equal(want, auth.Data)
}

func idMatches(id *wire.ID, want netip.Addr) bool {
	if id.IDType == wire.IDIPv4Addr && len(id.Data) == 4 {
		return netip.AddrFrom4([4]byte(id.Data)) == want
	}
	return (id.IDType == wire.IDFQDN || id.IDType == 11) && string(id.Data) == want.String()
}
