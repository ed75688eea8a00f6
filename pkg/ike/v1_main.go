package ike

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/cgwd/cgwd/pkg/certauth"
	"github.com/cgwd/cgwd/pkg/ike/wire1"
)

// IKEv1 main mode (RFC 2409 5, with NAT-T of RFC 3947) and the routing of
// received messages.

func randFloat() float64 { return mrand.Float64() }

// initiate starts a main mode as initiator: message 1, our SA and vendor IDs.
func (s *V1Session) initiate() {
	if slices.ContainsFunc(s.sas, func(sa *v1SA) bool { return sa.initiator && sa.state < v1Est }) {
		return
	}
	now := s.now()
	if s.current() == nil {
		s.start = now
	}
	sa := &v1SA{initiator: true, ci: randSPI(), state: v1I1, created: now, life: s.cfg.IKELifetime}
	sap := v1Phase1SA(s.p1, s.cfg.IKELifetime)
	sa.saiB = wire1.Body(sap)
	b := wire1.Marshal(wire1.Header{ICookie: sa.ci, Exchange: wire1.ExchMain},
		[]wire1.Payload{sap, &wire1.VendorID{Data: vidNATT}, &wire1.VendorID{Data: vidDPD}})
	s.sas = append(s.sas, sa)
	s.log.Info("initiating IKEv1 main mode", "proposals", len(s.p1))
	s.sendFlight(&sa.fl, b, false, true)
}

// handle routes a received message to its ISAKMP SA and exchange.
func (s *V1Session) handle(p packet) {
	h, first, err := wire1.ParseHeader(p.b)
	if err != nil {
		s.drop(DropMalformed, h, "err", err)
		return
	}
	var sa *v1SA
	for _, x := range s.sas {
		if x.ci == h.ICookie && (x.cr == h.RCookie || (x.state == v1I1 && h.RCookie != 0) || (!x.initiator && h.RCookie == 0)) {
			sa = x
			break
		}
	}
	if sa == nil {
		if h.RCookie == 0 && h.Exchange == wire1.ExchMain && h.MsgID == 0 {
			s.respondMain1(h, first, p)
			return
		}
		if h.Exchange == wire1.ExchInfo && h.Flags&wire1.FlagEncrypted == 0 {
			s.unauthNotify(h, first, p.b)
			return
		}
		s.drop(DropUnknownSPI, h, "cookies", fmt.Sprintf("%016x/%016x", h.ICookie, h.RCookie))
		return
	}
	if p.natt {
		sa.natt = true
	}
	if h.Exchange == wire1.ExchInfo && h.Flags&wire1.FlagEncrypted == 0 {
		s.unauthNotify(h, first, p.b)
		return
	}
	if s.retransmitted(&sa.fl, p.b) {
		return
	}
	if h.RCookie == 0 {
		s.drop(DropRetransmitMismatch, h)
		return
	}
	switch {
	case h.Exchange == wire1.ExchMain:
		s.handleMain(sa, h, first, p)
	case sa.state != v1Est || h.Flags&wire1.FlagEncrypted == 0:
		s.drop(DropUnencrypted, h)
	case h.Exchange == wire1.ExchQuick:
		s.handleQuick(sa, h, p)
	case h.Exchange == wire1.ExchInfo:
		s.handleInfo(sa, h, p)
	default:
		s.drop(DropMalformed, h, "err", "unknown exchange")
	}
}

// unauthNotify logs an unencrypted notify (e.g. NO-PROPOSAL-CHOSEN in
// answer to message 1): it is not authenticated, so it changes nothing.
func (s *V1Session) unauthNotify(h wire1.Header, first wire1.PayloadType, b []byte) {
	c, err := wire1.ParseChain(first, b[wire1.HeaderLen:], false)
	if err != nil {
		s.drop(DropMalformed, h, "err", err)
		return
	}
	for _, p := range c.Payloads {
		if n, ok := p.(*wire1.Notify); ok && n.NotifyType < 16384 {
			s.fail("peer refused our IKEv1 main mode: "+wire1.NotifyName(n.NotifyType)+" (unauthenticated notify)",
				"our_ike_proposals", proposalsString(s.cfg.IKEProposals), "our_version", "ikev1")
		}
	}
	s.drops.add(DropUnencrypted)
}

// admitMain1 runs the cheap checks on a main mode message 1 from the peer.
func (s *V1Session) admitMain1(h wire1.Header) bool {
	now := s.now()
	keep := s.msg1s[:0]
	for _, t := range s.msg1s {
		if now.Sub(t) < time.Second {
			keep = append(keep, t)
		}
	}
	s.msg1s = keep
	if s.cfg.CookieThreshold >= 0 && len(s.msg1s) >= 2*max(s.cfg.CookieThreshold, 1) {
		s.drop(DropRate, h)
		return false
	}
	s.msg1s = append(s.msg1s, now)
	if s.halfOpen() >= s.cfg.HalfOpenLimit || halfOpenTotal.Load() >= MaxHalfOpenTotal {
		s.drop(DropHalfOpen, h)
		return false
	}
	return true
}

// respondMain1 answers the peer's main mode message 1 with the transform
// we pick and our cookie; the SA is half-open until message 5.
func (s *V1Session) respondMain1(h wire1.Header, first wire1.PayloadType, p packet) {
	if !s.admitMain1(h) {
		return
	}
	c, err := wire1.ParseChain(first, p.b[wire1.HeaderLen:], false)
	if err != nil {
		s.drop(DropMalformed, h, "err", err)
		return
	}
	var sap *wire1.SA
	natt, dpd := false, false
	for _, pl := range c.Payloads {
		switch pl := pl.(type) {
		case *wire1.SA:
			sap = pl
		case *wire1.VendorID:
			natt = natt || bytes.Equal(pl.Data, vidNATT)
			dpd = dpd || bytes.Equal(pl.Data, vidDPD)
		}
	}
	if sap == nil || len(sap.Proposals) != 1 || sap.Proposals[0].Protocol != wire1.ProtoISAKMP {
		s.drop(DropMalformed, h, "err", "main mode message 1 without one ISAKMP proposal")
		return
	}
	chosen, num, life, ok := s.choosePhase1(sap.Proposals[0].Transforms)
	if !ok {
		s.fail("peer's IKEv1 main mode proposals have nothing in common with ours", "our_ike_proposals", proposalsString(s.cfg.IKEProposals),
			"our_auth", v1AuthName(s.p1[0].auth), "peer_ike_proposals", v1PeerPhase1(sap.Proposals[0].Transforms))
		s.send(wire1.Marshal(wire1.Header{ICookie: h.ICookie, Exchange: wire1.ExchInfo},
			[]wire1.Payload{&wire1.Notify{DOI: wire1.DOIIPsec, Protocol: wire1.ProtoISAKMP, NotifyType: wire1.NNoProposalChosen}}), p.natt)
		return
	}
	if !natt {
		s.fail("peer does not announce NAT-T (RFC 3947): cgwd carries ESP in UDP only; enable NAT-T (encap) on the peer")
		return
	}
	now := s.now()
	sa := &v1SA{ci: h.ICookie, cr: randSPI(), state: v1R2, suite: chosen, life: life, saiB: wire1.Body(sap),
		peerNATT: natt, peerDPD: dpd, natt: p.natt, created: now, lastRecv: now}
	if sa.life <= 0 || sa.life > s.cfg.IKELifetime {
		sa.life = s.cfg.IKELifetime
	}
	tr := chosen.transform(num, sa.life)
	reply := &wire1.SA{DOI: wire1.DOIIPsec, Situation: wire1.SitIdentityOnly,
		Proposals: []wire1.Proposal{{Num: sap.Proposals[0].Num, Protocol: wire1.ProtoISAKMP, Transforms: []wire1.Transform{tr}}}}
	b := wire1.Marshal(wire1.Header{ICookie: sa.ci, RCookie: sa.cr, Exchange: wire1.ExchMain},
		[]wire1.Payload{reply, &wire1.VendorID{Data: vidNATT}, &wire1.VendorID{Data: vidDPD}})
	halfOpenTotal.Add(1)
	s.sas = append(s.sas, sa)
	sa.fl.lastIn = sha256.Sum256(p.b)
	s.sendFlight(&sa.fl, b, p.natt, false)
}

// choosePhase1 picks, in the peer's order, the first of its transforms
// that is one of our suites.
func (s *V1Session) choosePhase1(ts []wire1.Transform) (v1Suite, uint8, time.Duration, bool) {
	for _, t := range ts {
		su, life, ok := parseV1Transform(t)
		if ok && slices.Contains(s.p1, su) {
			return su, t.Num, life, true
		}
	}
	return v1Suite{}, 0, 0, false
}

// handleMain handles main mode messages 2 to 6.
func (s *V1Session) handleMain(sa *v1SA, h wire1.Header, first wire1.PayloadType, p packet) {
	encrypted := h.Flags&wire1.FlagEncrypted != 0
	switch {
	case sa.initiator && sa.state == v1I1 && !encrypted:
		s.main2(sa, h, first, p)
	case sa.initiator && sa.state == v1I3 && !encrypted:
		s.main4(sa, h, first, p)
	case sa.initiator && sa.state == v1I5 && encrypted:
		s.main6(sa, h, p)
	case !sa.initiator && sa.state == v1R2 && !encrypted:
		s.main3(sa, h, first, p)
	case !sa.initiator && sa.state == v1R4 && encrypted:
		s.main5(sa, h, p)
	default:
		s.drop(DropWindow, h, "state", sa.state)
	}
}

// payloads of a main mode message.
type mmPayloads struct {
	sa         *wire1.SA
	ke         *wire1.KE
	nonce      *wire1.Nonce
	id         *wire1.ID
	idBody     []byte
	hash       *wire1.Hash
	certs      [][]byte // X.509 certificates, leaf first, one more than certauth takes at most
	sig        []byte
	natd       [][]byte
	natt, dpd  bool
	initialCtc bool
}

func collectMM(c *wire1.Chain) mmPayloads {
	var m mmPayloads
	for i, p := range c.Payloads {
		switch p := p.(type) {
		case *wire1.SA:
			m.sa = p
		case *wire1.KE:
			m.ke = p
		case *wire1.Nonce:
			m.nonce = p
		case *wire1.ID:
			m.id, m.idBody = p, c.Raw[i][4:]
		case *wire1.Hash:
			m.hash = p
		case *wire1.Cert:
			if p.Encoding == wire1.CertX509Sig && len(m.certs) <= certauth.MaxPeerChain {
				m.certs = append(m.certs, p.Data)
			}
		case *wire1.Sig:
			m.sig = p.Data
		case *wire1.NATD:
			m.natd = append(m.natd, p.Data)
		case *wire1.VendorID:
			m.natt = m.natt || bytes.Equal(p.Data, vidNATT)
			m.dpd = m.dpd || bytes.Equal(p.Data, vidDPD)
		case *wire1.Notify:
			m.initialCtc = m.initialCtc || p.NotifyType == wire1.NInitialContact
		}
	}
	return m
}

// plainMM parses an unencrypted main mode message.
func (s *V1Session) plainMM(h wire1.Header, first wire1.PayloadType, p packet) (mmPayloads, bool) {
	c, err := wire1.ParseChain(first, p.b[wire1.HeaderLen:], false)
	if err != nil {
		s.drop(DropMalformed, h, "err", err)
		return mmPayloads{}, false
	}
	return collectMM(c), true
}

// main2: the responder's choice. We send message 3: KE, Ni, NAT-D.
func (s *V1Session) main2(sa *v1SA, h wire1.Header, first wire1.PayloadType, p packet) {
	m, ok := s.plainMM(h, first, p)
	if !ok {
		return
	}
	if m.sa == nil || len(m.sa.Proposals) != 1 || len(m.sa.Proposals[0].Transforms) != 1 {
		s.drop(DropMalformed, h, "err", "main mode message 2 without one transform")
		return
	}
	su, life, ok := parseV1Transform(m.sa.Proposals[0].Transforms[0])
	if !ok || !slices.Contains(s.p1, su) {
		s.drop(DropMalformed, h, "err", "responder chose a transform we did not offer")
		return
	}
	if !m.natt {
		s.fail("peer does not announce NAT-T (RFC 3947): cgwd carries ESP in UDP only; enable NAT-T (encap) on the peer")
		return
	}
	dh, err := newDH(su.group)
	if err != nil {
		s.fail("cannot make DH key", "group", su.group, "err", err)
		return
	}
	sa.cr, sa.suite, sa.dh, sa.peerNATT, sa.peerDPD = h.RCookie, su, dh, m.natt, m.dpd
	if life > 0 && life < sa.life {
		sa.life = life
	}
	sa.ni, sa.gxi = nonce(), dh.public()
	sa.state = v1I3
	sa.fl.lastIn = sha256.Sum256(p.b)
	b := wire1.Marshal(wire1.Header{ICookie: sa.ci, RCookie: sa.cr, Exchange: wire1.ExchMain},
		slices.Concat([]wire1.Payload{&wire1.KE{Data: sa.gxi}, &wire1.Nonce{Data: sa.ni}}, s.v1CertReqs(), s.natdPayloads(sa)))
	s.sendFlight(&sa.fl, b, false, true)
}

// natdPayloads are our NAT-D payloads: the peer's address and port, then
// ours, which is faked: cgwd always carries ESP in UDP (as IKEv2's
// ForceEncap), so the peer must see a NAT.
func (s *V1Session) natdPayloads(sa *v1SA) []wire1.Payload {
	h := prfHash(sa.suite.prf)
	remote := natd(h, sa.ci, sa.cr, s.cfg.Remote, 500)
	local := natd(h, sa.ci, sa.cr, netip.AddrFrom4([4]byte{0, 0, 0, 0}), 0)
	copy(local, nonce())
	return []wire1.Payload{&wire1.NATD{Data: remote}, &wire1.NATD{Data: local}}
}

// dhKeys computes g^xy and the keys once both KE payloads and nonces are in.
func (s *V1Session) dhKeys(sa *v1SA, peerKE []byte) error {
	gxy, err := sa.dh.shared(peerKE)
	if err != nil {
		return err
	}
	defer clear(gxy)
	if sa.initiator {
		sa.gxr = bytes.Clone(peerKE)
	} else {
		sa.gxi = bytes.Clone(peerKE)
	}
	k, err := deriveV1Keys(sa.suite, s.cfg.PSK, sa.ni, sa.nr, gxy, sa.gxi, sa.gxr, sa.ci, sa.cr)
	if err != nil {
		return err
	}
	k.saiB = sa.saiB
	sa.keys, sa.iv, sa.dh = k, k.ivPhase1, nil
	return nil
}

// main4: the responder's KE and nonce. We send message 5 on port 4500:
// our ID and HASH_I, encrypted.
func (s *V1Session) main4(sa *v1SA, h wire1.Header, first wire1.PayloadType, p packet) {
	m, ok := s.plainMM(h, first, p)
	if !ok {
		return
	}
	if m.ke == nil || m.nonce == nil {
		s.drop(DropMalformed, h, "err", "main mode message 4 without KE or nonce")
		return
	}
	sa.nr = bytes.Clone(m.nonce.Data)
	if err := s.dhKeys(sa, m.ke.Data); err != nil {
		s.drop(DropMalformed, h, "err", err)
		sa.nr = nil
		return
	}
	ps, err := s.ourAuth(sa)
	if err != nil {
		s.fail("IKEv1 main mode message 5 not sent", "err", err)
		s.removeSA(sa)
		s.scheduleRetry()
		return
	}
	sa.natt = true // NAT-T: always UDP-encapsulated from message 5 on
	if !s.contacted {
		ps = append(ps, &wire1.Notify{DOI: wire1.DOIIPsec, Protocol: wire1.ProtoISAKMP, SPI: cookies(sa.ci, sa.cr), NotifyType: wire1.NInitialContact})
	}
	b, iv := sa.keys.seal(wire1.Header{ICookie: sa.ci, RCookie: sa.cr, Exchange: wire1.ExchMain}, ps, sa.iv)
	sa.iv = iv
	sa.state = v1I5
	sa.fl.lastIn = sha256.Sum256(p.b)
	s.sendFlight(&sa.fl, b, true, true)
}

// checkPeerID checks the peer's phase 1 ID against RemoteID.
func (s *V1Session) checkPeerID(id *wire1.ID) error {
	want := s.cfg.RemoteID.As4()
	if id == nil || id.IDType != wire1.IDIPv4Addr || !bytes.Equal(id.Data, want[:]) {
		got := "none"
		if id != nil {
			got = fmt.Sprintf("type %d %x", id.IDType, id.Data)
			if id.IDType == wire1.IDIPv4Addr && len(id.Data) == 4 {
				got = netip.AddrFrom4([4]byte(id.Data)).String()
			}
		}
		return fmt.Errorf("peer identity %s is not remote_id %s", got, s.cfg.RemoteID)
	}
	return nil
}

// openMain decrypts an encrypted main mode message with the SA's IV chain.
func (s *V1Session) openMain(sa *v1SA, h wire1.Header, p packet) (mmPayloads, []byte, error) {
	plain, iv, err := sa.keys.open(p.b, sa.iv)
	if err != nil {
		s.drop(DropMalformed, h, "err", err)
		return mmPayloads{}, nil, err
	}
	c, err := wire1.ParseChain(wire1.PayloadType(p.b[16]), plain, true)
	if err != nil {
		// Wrong keys (another PSK) decrypt to garbage.
		s.drop(DropBadICV, h, "err", err)
		return mmPayloads{}, nil, err
	}
	return collectMM(c), iv, nil
}

// main6: the responder's ID and HASH_R. The ISAKMP SA is up.
func (s *V1Session) main6(sa *v1SA, h wire1.Header, p packet) {
	if _, ok := s.authPeer(sa, h, p, 6); !ok {
		return
	}
	sa.fl = v1Flight{}
	s.established(sa)
}

// authPeer opens main mode message n (5 or 6) and checks the peer's HASH
// and identity; the IV chain moves on only if they verify. A message that
// fails changes nothing: it is counted as a drop and named by failAuth.
func (s *V1Session) authPeer(sa *v1SA, h wire1.Header, p packet, n int) (mmPayloads, bool) {
	m, iv, err := s.openMain(sa, h, p)
	if err != nil {
		if s.cfg.Cert != nil {
			s.failAuth(fmt.Sprintf("cannot read the peer's main mode message %d", n), "err", err)
		} else {
			s.failAuth(fmt.Sprintf("cannot read the peer's main mode message %d: wrong pre-shared key?", n))
		}
		return m, false
	}
	want, name := sa.keys.hashI, "HASH_I"
	if n == 6 {
		want, name = sa.keys.hashR, "HASH_R"
	}
	if s.cfg.Cert != nil {
		if msg, args := s.verifyV1Cert(sa, m, want, name); msg != "" {
			s.failAuth(msg, args...)
			return m, false
		}
		sa.iv = iv
		return m, true
	}
	if m.hash == nil || !checkHash(m.hash, want(m.idBody)) {
		s.drops.add(DropBadICV)
		s.failAuth("peer's "+name+" does not verify: the pre-shared keys differ", "our_version", "ikev1")
		return m, false
	}
	if err := s.checkPeerID(m.id); err != nil {
		s.failAuth("IKEv1 authentication failed", "err", err)
		return m, false
	}
	sa.iv = iv
	return m, true
}

// v1AuthLogEvery is the least time between two log lines of one kind
// about main mode messages 5 and 6 that fail.
const v1AuthLogEvery = time.Minute

// failAuth records a main mode message 5 or 6 that does not decrypt,
// verify or authenticate, logging each kind of failure (msg) at most once
// per v1AuthLogEvery. Before its HASH verifies such a message is not
// authenticated: IKEv1's CBC has no integrity check, so anyone on the path
// who saw the cookies can send them by the thousand, and each must cost
// no more than a drop. The real misconfiguration (another PSK) is still
// named at its first message, and the peer's retransmissions add nothing.
func (s *V1Session) failAuth(msg string, args ...any) {
	now := s.now()
	if t, ok := s.authLogged[msg]; ok && now.Sub(t) < v1AuthLogEvery {
		return
	}
	if s.authLogged == nil {
		s.authLogged = map[string]time.Time{}
	}
	s.authLogged[msg] = now
	s.fail(msg, args...)
}

// main3: the initiator's KE, nonce and NAT-D. Now (the cookie echoed)
// the DH is worth computing; we send message 4.
func (s *V1Session) main3(sa *v1SA, h wire1.Header, first wire1.PayloadType, p packet) {
	m, ok := s.plainMM(h, first, p)
	if !ok {
		return
	}
	if m.ke == nil || m.nonce == nil {
		s.drop(DropMalformed, h, "err", "main mode message 3 without KE or nonce")
		return
	}
	dh, err := newDH(sa.suite.group)
	if err != nil {
		s.fail("cannot make DH key", "group", sa.suite.group, "err", err)
		return
	}
	sa.dh, sa.gxr, sa.nr, sa.ni = dh, dh.public(), nonce(), bytes.Clone(m.nonce.Data)
	if err := s.dhKeys(sa, m.ke.Data); err != nil {
		s.drop(DropMalformed, h, "err", err)
		s.removeSA(sa)
		return
	}
	sa.state = v1R4
	sa.fl.lastIn = sha256.Sum256(p.b)
	b := wire1.Marshal(wire1.Header{ICookie: sa.ci, RCookie: sa.cr, Exchange: wire1.ExchMain},
		slices.Concat([]wire1.Payload{&wire1.KE{Data: sa.gxr}, &wire1.Nonce{Data: sa.nr}}, s.v1CertReqs(), s.natdPayloads(sa)))
	s.sendFlight(&sa.fl, b, p.natt, false)
}

// main5: the initiator's ID and HASH_I; we answer with ours and the SA is up.
func (s *V1Session) main5(sa *v1SA, h wire1.Header, p packet) {
	m, ok := s.authPeer(sa, h, p, 5)
	if !ok {
		return
	}
	ps, err := s.ourAuth(sa)
	if err != nil {
		s.fail("IKEv1 main mode message 6 not sent", "err", err)
		s.removeSA(sa)
		return
	}
	b, iv := sa.keys.seal(wire1.Header{ICookie: sa.ci, RCookie: sa.cr, Exchange: wire1.ExchMain}, ps, sa.iv)
	sa.iv = iv
	sa.fl.lastIn = sha256.Sum256(p.b)
	s.sendFlight(&sa.fl, b, sa.natt, false)
	halfOpenTotal.Add(-1) // no longer half-open
	if m.initialCtc {
		// The peer has no other SA with us: forget ours. A main mode we
		// are initiating is not state the peer lost but an attempt it
		// will answer (both ends initiating at once both send
		// INITIAL-CONTACT): it stays, or neither end would have an ISAKMP
		// SA of its own to start a quick mode on.
		for _, c := range slices.Clone(s.children) {
			s.removeChild(c)
		}
		for _, o := range slices.Clone(s.sas) {
			if o != sa && !(o.initiator && o.state < v1Est) {
				s.removeSA(o)
			}
		}
	}
	s.established(sa)
}

// established: sa's main mode completed. The quick mode after it comes
// from the initiator of the main mode.
func (s *V1Session) established(sa *v1SA) {
	now := s.now()
	prev := s.current()
	// Quick mode and informational IVs derive from main mode's last CBC block.
	sa.keys.ivPhase1, sa.iv = sa.iv, nil
	sa.state, sa.est, sa.lastRecv = v1Est, now, now
	sa.expireAt = now.Add(sa.life)
	sa.rekeyAt = s.rekeyTime(now, sa.life)
	sa.qms = map[uint32]*v1QM{}
	sa.ni, sa.nr = nil, nil
	s.contacted = true
	s.failures = 0
	role := "responder"
	if sa.initiator {
		role = "initiator"
	}
	s.log.Info("ISAKMP SA established (IKEv1 main mode)", "role", role, "suite", sa.suite.String(),
		"cookies", fmt.Sprintf("%016x/%016x", sa.ci, sa.cr), "nat_t", sa.natt, "dpd", sa.peerDPD)
	first := prev == nil && len(s.children) == 0
	// sa rekeys the SAs established before its main mode began; one
	// established meanwhile came from a crossing main mode (both ends
	// initiating, or rekeying, at once) and is its sibling, not its
	// predecessor.
	sa.replaces = slices.ContainsFunc(s.sas, func(o *v1SA) bool { return o != sa && o.state == v1Est && o.est.Before(sa.created) })
	s.setStatus(func(st *Status) {
		st.State, st.Role, st.IKESuite = "established", role, sa.suite.String()
		st.SPIi, st.SPIr = fmt.Sprintf("%016x", sa.ci), fmt.Sprintf("%016x", sa.cr)
		st.Established, st.IKERekeyDue = now, sa.rekeyAt
		if sa.replaces {
			st.IKERekeys++
		}
	})
	if prev != nil {
		prev.rekeying = false
	}
	if sa.initiator {
		s.startQuick(sa, nil, !first)
	}
}

// v1ExchangeID is a random non-zero message ID for a new exchange.
func v1ExchangeID() uint32 {
	for {
		if v := uint32(randSPI()); v != 0 {
			return v
		}
	}
}
