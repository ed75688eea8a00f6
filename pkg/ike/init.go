package ike

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/cgwd/cgwd/pkg/ike/wire"
	"github.com/cgwd/cgwd/pkg/proposal"
)

// IKE_SA_INIT in both roles (RFC 7296 1.2), with the responder's defences
// against floods: COOKIEs (2.6) and a bounded half-open table.

// initTry is one IKE_SA_INIT request of an attempt and its secrets.
type initTry struct {
	group uint16
	dh    dhKey
	ni    []byte
	req   []byte
}

type initError struct {
	at     time.Time
	notify *wire.Notify // an error notify, or nil
	msg    string       // otherwise, what was wrong with the answer
	args   []any
}

// initErrGrace is how long an unauthenticated error answer to our
// IKE_SA_INIT waits for a valid answer before it is believed.
const initErrGrace = 2 * time.Second

func (s *Session) initiate() {
	s.start = s.now()
	sa := &ikeSA{initiator: true, spiI: randSPI(), state: stInitSent, group: firstDH(s.cfg.IKEProposals)}
	s.sas.ike = sa
	s.log.Info("initiating IKE SA", "spi_i", fmt.Sprintf("%016x", sa.spiI), "proposals", proposalsString(s.cfg.IKEProposals))
	s.sendInit(sa)
}

func firstDH(ps []Proposal) uint16 {
	for _, p := range ps {
		for _, t := range p.Transforms {
			if t.Type == TransformDH {
				return t.ID
			}
		}
	}
	return 0
}

func (s *Session) sendInit(sa *ikeSA) {
	// A retry with a COOKIE resends the request unchanged (RFC 7296 2.6):
	// the responder's cookie is bound to our nonce and SPI.
	if sa.cookie == nil || sa.dh == nil {
		var err error
		if sa.dh, err = newDH(sa.group); err != nil {
			s.fail("cannot make DH key", "group", sa.group, "err", err)
			s.sas.ike = nil
			s.scheduleRetry(false)
			return
		}
		sa.ni = nonce()
	}
	var ps []wire.Payload
	if sa.cookie != nil {
		ps = append(ps, &wire.Notify{NotifyType: wire.NCookie, Data: sa.cookie})
	}
	ps = append(ps, &wire.SA{Proposals: s.cfg.IKEProposals}, &wire.KE{Group: sa.group, Data: sa.dh.public()}, &wire.Nonce{Data: sa.ni})
	ps = append(ps, s.natHashes(sa.spiI, 0)...)
	ps = append(ps, &wire.Notify{NotifyType: wire.NFragmentationSupported})
	ps = append(ps, s.certInitPayloads(false)...)
	m := &wire.Message{Header: wire.Header{SPIi: sa.spiI, Exchange: wire.IKESAInit, Flags: wire.FlagInitiator}, Payloads: ps}
	b, _ := marshal(m, nil)
	sa.initReq = b
	try := initTry{group: sa.group, dh: sa.dh, ni: sa.ni, req: b}
	if i := slices.IndexFunc(sa.tries, func(t initTry) bool { return t.group == sa.group }); i >= 0 {
		sa.tries[i] = try
	} else {
		sa.tries = append(sa.tries, try)
	}
	sa.nextID = 0
	s.request(sa, m, "IKE_SA_INIT", nil, func() {
		if s.any != nil && !s.any.w.silenceIsOutage(s) && s.fallBack(fmt.Sprintf("no answer to IKE_SA_INIT within %s", s.initWait())) {
			return
		}
		s.fail("peer unreachable: no answer to IKE_SA_INIT (or it drops IKEv2 unanswered)",
			append([]any{"timeout", s.cfg.DPDTimeout}, s.versionArgs("IKE_SA_INIT")...)...)
		s.sas.ike = nil
		s.scheduleRetry(false)
	})
	s.limitInitWait(sa)
}

// handleInitResponse completes our IKE_SA_INIT with the peer's answer,
// or retries it with a COOKIE or another DH group, and sends IKE_AUTH.
func (s *Session) handleInitResponse(sa *ikeSA, h wire.Header, p packet) {
	if sa.state != stInitSent || sa.req == nil || h.MsgID != 0 {
		s.drop(DropWindow, h)
		return
	}
	m, err := parse(p.b, nil)
	if err != nil {
		s.drop(DropMalformed, h, "err", err)
		return
	}
	if s.retryInit(sa, h, m) {
		return
	}
	a := s.checkInitResponse(sa, h, m)
	if a == nil {
		return
	}
	st := a.suite
	sa.req, sa.initErr, sa.tries = nil, nil, nil
	sa.group, sa.dh, sa.ni, sa.initReq = a.try.group, a.try.dh, a.try.ni, a.try.req
	sa.spiR, sa.nr, sa.initResp = h.SPIr, a.nr, bytes.Clone(p.b)
	fragmentsNoted(sa, m)
	sa.peerHashes = peerSigHashes(m)
	if sa.keys, err = deriveIKEKeys(st, a.gir, sa.ni, sa.nr, sa.spiI, sa.spiR, nil, prf{}); err != nil {
		s.fail("key derivation failed", "err", err)
		s.sas.ike = nil
		s.scheduleRetry(false)
		return
	}
	s.warnWeak(st.dh, "IKE")
	sa.natt = true // cgwd always carries ESP in UDP 4500 (RFC 3948)
	sa.nextID = 1
	s.sendAuth(sa)
}

// retryInit sends our IKE_SA_INIT again when the peer asks for a COOKIE
// or, with INVALID_KE_PAYLOAD, for a DH group we offer and have not tried;
// it reports whether m was such an answer.
func (s *Session) retryInit(sa *ikeSA, h wire.Header, m *wire.Message) bool {
	if n := m.Notify(wire.NCookie); n != nil {
		sa.req = nil
		sa.cookie = n.Data
		s.log.Info("peer asked for a cookie; retrying IKE_SA_INIT with it")
		s.sendInit(sa)
		return true
	}
	n := m.Notify(wire.NInvalidKEPayload)
	if n == nil || len(n.Data) != 2 {
		return false
	}
	g := binary.BigEndian.Uint16(n.Data)
	tried := slices.ContainsFunc(sa.tries, func(t initTry) bool { return t.group == g })
	if offers(s.cfg.IKEProposals, Transform{Type: TransformDH, ID: g}) && !tried {
		s.log.Info("peer wants another DH group; retrying", "group", g)
		sa.req = nil
		sa.group = g
		sa.dh = nil // a new key for the new group
		s.sendInit(sa)
		return true
	}
	s.drop(DropMalformed, h, "err", fmt.Sprintf("INVALID_KE_PAYLOAD for group %d, not offered or already tried", g))
	return true
}

// initAnswer is a valid answer to one of our IKE_SA_INIT requests.
type initAnswer struct {
	try   initTry // the request it answers
	suite suite
	gir   []byte // the DH shared secret
	nr    []byte
}

// checkInitResponse checks the peer's answer to one of our IKE_SA_INIT
// requests. Nothing here is authenticated: a bad answer is noted and nil
// returned; it is believed only if no valid one follows in time
// (initErrExpired).
func (s *Session) checkInitResponse(sa *ikeSA, h wire.Header, m *wire.Message) *initAnswer {
	suspect := func(n *wire.Notify, msg string, args ...any) {
		if sa.initErr == nil {
			sa.initErr = &initError{at: s.now(), notify: n, msg: msg, args: args}
			s.log.Info("unauthenticated error answer to IKE_SA_INIT: waiting for a valid one", "wait", initErrGrace)
		}
	}
	if n := m.ErrorNotify(); n != nil {
		suspect(n, "")
		return nil
	}
	spa, _ := m.Get(wire.PayloadSA).(*wire.SA)
	ke, _ := m.Get(wire.PayloadKE).(*wire.KE)
	nr, _ := m.Get(wire.PayloadNonce).(*wire.Nonce)
	if spa == nil || ke == nil || nr == nil || len(spa.Proposals) != 1 || h.SPIr == 0 {
		suspect(nil, "IKE_SA_INIT response lacks SA, KE or nonce")
		return nil
	}
	i := slices.IndexFunc(sa.tries, func(t initTry) bool { return t.group == ke.Group })
	chosen, ok := selectProposal(s.cfg.IKEProposals, spa.Proposals, true)
	st := suiteOf(chosen)
	if !ok || i < 0 || len(chosen.Transforms) != len(spa.Proposals[0].Transforms) || st.dh != ke.Group {
		suspect(nil, "peer chose an IKE proposal we did not offer", "chosen", spa.Proposals[0].String(), "ours", proposalsString(s.cfg.IKEProposals))
		return nil
	}
	if len(nr.Data) < minNonce(st.prf) {
		suspect(nil, "peer's nonce is shorter than its PRF requires", "bytes", len(nr.Data), "min", minNonce(st.prf))
		return nil
	}
	try := sa.tries[i]
	gir, err := try.dh.shared(ke.Data)
	if err != nil {
		suspect(nil, "bad KE payload from peer", "err", err)
		return nil
	}
	return &initAnswer{try: try, suite: st, gir: gir, nr: nr.Data}
}

// initErrExpired acts on an error answer to our IKE_SA_INIT once no valid
// answer came within initErrGrace.
func (s *Session) initErrExpired(now time.Time) {
	sa := s.sas.ike
	if sa == nil || sa.state != stInitSent || sa.initErr == nil || now.Sub(sa.initErr.at) < initErrGrace {
		return
	}
	e := sa.initErr
	sa.req = nil
	if e.notify != nil {
		s.initFailed(e.notify, "IKE_SA_INIT")
		return
	}
	s.fail(e.msg, e.args...)
	s.sas.ike = nil
	s.scheduleRetry(false)
}

func offers(ps []Proposal, t Transform) bool {
	for _, p := range ps {
		for _, x := range p.Transforms {
			if x == t {
				return true
			}
		}
	}
	return false
}

func (s *Session) initFailed(n *wire.Notify, exch string) {
	switch n.NotifyType {
	case wire.NNoProposalChosen:
		if exch == "IKE_SA_INIT" && s.fallBack("the peer answered IKE_SA_INIT with NO_PROPOSAL_CHOSEN") {
			return
		}
		if exch != "IKE_SA_INIT" {
			s.fail("peer rejected our proposals: NO_PROPOSAL_CHOSEN", "exchange", exch,
				"our_ike_proposals", proposalsString(s.cfg.IKEProposals), "our_esp_proposals", proposalsString(s.cfg.ESPProposals))
			break
		}
		// IKEv2 cannot tell a peer without our suites from one without
		// IKEv2 (strongSwan answers both so): name both causes.
		s.fail("peer rejected our proposals: NO_PROPOSAL_CHOSEN (no suite in common, or the peer does not allow IKEv2 "+
			"as an AWS tunnel with IKE versions ikev1 only; then "+v1HintIKEv2+")", s.versionArgs(exch)...)
	case wire.NInvalidMajorVersion:
		if exch == "IKE_SA_INIT" && s.fallBack("the peer answered IKE_SA_INIT with INVALID_MAJOR_VERSION") {
			return
		}
		s.fail("peer rejected our IKE version: INVALID_MAJOR_VERSION; cgwd speaks IKEv2: "+v1HintIKEv2, s.versionArgs(exch)...)
	case wire.NAuthenticationFailed:
		s.fail("peer rejected our authentication: AUTHENTICATION_FAILED (check the pre-shared key and the identities)",
			"exchange", exch, "local_id", s.cfg.LocalID, "remote_id", s.cfg.RemoteID)
	case wire.NTSUnacceptable:
		s.fail("peer rejected our traffic selectors: TS_UNACCEPTABLE", "exchange", exch, "tsi", "0.0.0.0/0", "tsr", "0.0.0.0/0")
	default:
		s.fail("peer refused the exchange", "exchange", exch, "notify", wire.NotifyName(n.NotifyType))
	}
	s.sas.ike = nil
	s.scheduleRetry(false)
}

// natHashes are the NAT detection payloads for the addresses we send from and to.
func (s *Session) natHashes(spiI, spiR uint64) []wire.Payload {
	hash := func(a netip.Addr, port uint16) []byte {
		h := sha1.New()
		binary.Write(h, binary.BigEndian, spiI)
		binary.Write(h, binary.BigEndian, spiR)
		b := a.As4()
		h.Write(b[:])
		binary.Write(h, binary.BigEndian, port)
		return h.Sum(nil)
	}
	src := hash(s.cfg.Local, 500)
	if s.cfg.ForceEncap {
		src = make([]byte, 20) // deliberately wrong: makes both ends use UDP encapsulation
		rand.Read(src)
	}
	return []wire.Payload{
		&wire.Notify{NotifyType: wire.NNATDetectionSourceIP, Data: src},
		&wire.Notify{NotifyType: wire.NNATDetectionDestinationIP, Data: hash(s.cfg.Remote, 500)},
	}
}

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
	if s.admitInitRequest(h, p) {
		s.answerInitRequest(h, p)
	}
}

// refuseInit answers an IKE_SA_INIT request with the error notify n.
func (s *Session) refuseInit(h wire.Header, natt bool, n *wire.Notify) {
	s.respond(&ikeSA{spiI: h.SPIi}, h, []wire.Payload{n}, false, natt)
}

// admitInitRequest runs the cheap checks on an IKE_SA_INIT request, which
// allocate nothing: it reports whether the request may cost a full parse
// and Diffie-Hellman, having answered or dropped it otherwise.
func (s *Session) admitInitRequest(h wire.Header, p packet) bool {
	if h.MsgID != 0 || h.SPIr != 0 {
		s.drop(DropMalformed, h, "err", "IKE_SA_INIT request with a responder SPI or message ID")
		return false
	}
	if hf := s.sas.halfBySPIi(h.SPIi); hf != nil {
		if !bytes.Equal(hf.initReq, p.b) {
			s.drop(DropRetransmitMismatch, h)
			return false
		}
		s.sendAll(hf.lastResp, hf.lastNatt) // a retransmission
		return false
	}
	pk, err := wire.PeekInit(p.b)
	if err != nil {
		s.drop(DropMalformed, h, "err", err)
		return false
	}
	if !pk.HasSA || pk.KE == nil || pk.Nonce == nil {
		s.drop(DropMalformed, h, "err", "IKE_SA_INIT request lacks SA, KE or nonce")
		s.refuseInit(h, p.natt, &wire.Notify{NotifyType: wire.NInvalidSyntax})
		return false
	}
	now := s.now()
	if s.underLoad(now) && !s.cookies.valid(now, pk.Cookie, pk.Nonce, s.cfg.Remote, h.SPIi) {
		s.drop(DropCookie, h)
		if !s.loadLogged {
			s.log.Info("IKE_SA_INIT requests above the cookie threshold or half-open table half full: asking for a COOKIE",
				"half_open", len(s.sas.halves))
			s.loadLogged = true
		}
		s.sendCookie(h, s.cookies.make(now, pk.Nonce, s.cfg.Remote, h.SPIi), p.natt)
		return false
	}
	if len(s.sas.halves) >= s.cfg.HalfOpenLimit || halfOpenTotal.Load() >= MaxHalfOpenTotal {
		s.drop(DropHalfOpen, h, "half_open", len(s.sas.halves))
		return false
	}
	return true
}

// answerInitRequest parses an admitted IKE_SA_INIT request, picks the
// proposal, computes the keys and answers; the new SA is half-open until
// its IKE_AUTH.
func (s *Session) answerInitRequest(h wire.Header, p packet) {
	refuse := func(n *wire.Notify) { s.refuseInit(h, p.natt, n) }
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
	now := s.now()
	sa := &ikeSA{spiI: h.SPIi, spiR: randSPI(), state: stRespInit, group: st.dh, dh: dh, ni: ni.Data, nr: nonce(),
		initReq: bytes.Clone(p.b), lastRecv: now}
	if sa.keys, err = deriveIKEKeys(st, gir, sa.ni, sa.nr, sa.spiI, sa.spiR, nil, prf{}); err != nil {
		s.log.Error("key derivation failed", "err", err)
		return
	}
	chosen.SPI = nil
	ps := []wire.Payload{&wire.SA{Proposals: []Proposal{chosen}}, &wire.KE{Group: st.dh, Data: dh.public()}, &wire.Nonce{Data: sa.nr}}
	ps = append(ps, s.natHashes(sa.spiI, sa.spiR)...)
	ps = append(ps, &wire.Notify{NotifyType: wire.NFragmentationSupported})
	ps = append(ps, s.certInitPayloads(true)...)
	fragmentsNoted(sa, m)
	sa.peerHashes = peerSigHashes(m)
	s.start = now
	s.respond(sa, h, ps, false, p.natt)
	sa.initResp = sa.lastResp[0]
	sa.nextID = 0
	s.sas.addHalf(sa)
	s.warnWeak(st.dh, "IKE")
	s.log.Info("answered IKE_SA_INIT", "spi_i", fmt.Sprintf("%016x", sa.spiI), "suite", st.String())
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
