package ike

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/cgwd/cgwd/pkg/esp"
	"github.com/cgwd/cgwd/pkg/ike/wire1"
)

// IKEv1 quick mode (RFC 2409 5.5: HASH(1..3), PFS, KEYMAT) and
// informational exchanges (delete, DPD of RFC 3706).

const idIPv4Range = 7 // ID_IPV4_ADDR_RANGE

// anyID is the quick mode identity 0.0.0.0/0, as AWS's tunnels use.
func anyID() *wire1.ID { return &wire1.ID{IDType: wire1.IDIPv4AddrSubnet, Data: make([]byte, 8)} }

// idSelector converts a quick mode identity to a traffic selector.
func idSelector(id *wire1.ID) (esp.Selector, error) {
	switch {
	case id.IDType == wire1.IDIPv4Addr && len(id.Data) == 4:
		a := netip.AddrFrom4([4]byte(id.Data))
		return esp.Selector{First: a, Last: a}, nil
	case id.IDType == wire1.IDIPv4AddrSubnet && len(id.Data) == 8:
		a, m := binary.BigEndian.Uint32(id.Data), binary.BigEndian.Uint32(id.Data[4:])
		var f, l [4]byte
		binary.BigEndian.PutUint32(f[:], a&m)
		binary.BigEndian.PutUint32(l[:], a|^m)
		return esp.Selector{First: netip.AddrFrom4(f), Last: netip.AddrFrom4(l)}, nil
	case id.IDType == idIPv4Range && len(id.Data) == 8:
		return esp.Selector{First: netip.AddrFrom4([4]byte(id.Data[:4])), Last: netip.AddrFrom4([4]byte(id.Data[4:]))}, nil
	}
	return esp.Selector{}, fmt.Errorf("quick mode identity of type %d (%d bytes) is not an IPv4 address, subnet or range", id.IDType, len(id.Data))
}

func msgID(id uint32) []byte { return binary.BigEndian.AppendUint32(nil, id) }

// startQuick starts a quick mode on sa: a new Child SA, rekeying rekeyOf
// or (replace) replacing every child and the older ISAKMP SAs.
func (s *V1Session) startQuick(sa *v1SA, rekeyOf *v1Child, replace bool) {
	now := s.now()
	id := v1ExchangeID()
	qm := &v1QM{id: id, initiator: true, iv: sa.keys.msgIV(id), ni: nonce(), inSPI: randChildSPI(),
		rekeyOf: rekeyOf, replace: replace, created: now, idci: anyID(), idcr: anyID()}
	ps := []wire1.Payload{v1QuickSA(s.esp, qm.inSPI, s.cfg.ChildLifetime), &wire1.Nonce{Data: qm.ni}}
	if g := s.esp[0].group; g != 0 {
		dh, err := newDH(g)
		if err != nil {
			s.fail("cannot make DH key", "group", g, "err", err)
			return
		}
		qm.dh = dh
		ps = append(ps, &wire1.KE{Data: dh.public()})
	}
	ps = append(ps, qm.idci, qm.idcr)
	_, chain := wire1.EncodeChain(ps)
	hash1 := sa.keys.prf.sum(sa.keys.a, msgID(id), chain)
	b, iv := sa.keys.seal(wire1.Header{ICookie: sa.ci, RCookie: sa.cr, Exchange: wire1.ExchQuick, MsgID: id},
		append([]wire1.Payload{&wire1.Hash{Data: hash1}}, ps...), qm.iv)
	qm.iv = iv
	sa.qms[id] = qm
	what := "new"
	if rekeyOf != nil {
		what = "rekey"
	}
	s.log.Info("initiating IKEv1 quick mode", "purpose", what, "spi_in", fmt.Sprintf("%08x", qm.inSPI), "pfs_group", s.esp[0].group)
	s.sendFlight(&qm.fl, b, sa.natt, true)
}

// qmPayloads are a quick mode message's payloads after its HASH.
type qmPayloads struct {
	sa    *wire1.SA
	nonce *wire1.Nonce
	ke    *wire1.KE
	ids   []*wire1.ID
}

// openHashed decrypts an encrypted quick mode or informational message
// with iv and checks that it starts with a HASH payload; rest are the raw
// payloads after it, which the HASH covers.
func (s *V1Session) openHashed(sa *v1SA, h wire1.Header, p packet, iv []byte) (c *wire1.Chain, hash *wire1.Hash, nextIV []byte, ok bool) {
	plain, nextIV, err := sa.keys.open(p.b, iv)
	if err != nil {
		s.drop(DropMalformed, h, "err", err)
		return nil, nil, nil, false
	}
	c, err = wire1.ParseChain(wire1.PayloadType(p.b[16]), plain, true)
	if err != nil {
		s.drop(DropBadICV, h, "err", err)
		return nil, nil, nil, false
	}
	if len(c.Payloads) == 0 {
		// IKEv1 encryption has no integrity check: garbage decrypts too.
		s.drop(DropMalformed, h, "err", "no payloads")
		return nil, nil, nil, false
	}
	hash, _ = c.Payloads[0].(*wire1.Hash)
	if hash == nil {
		s.drop(DropUnencrypted, h, "err", "first payload is not HASH")
		return nil, nil, nil, false
	}
	return c, hash, nextIV, true
}

func collectQM(c *wire1.Chain) qmPayloads {
	var m qmPayloads
	for _, p := range c.Payloads[1:] {
		switch p := p.(type) {
		case *wire1.SA:
			m.sa = p
		case *wire1.Nonce:
			m.nonce = p
		case *wire1.KE:
			m.ke = p
		case *wire1.ID:
			m.ids = append(m.ids, p)
		}
	}
	return m
}

// maxQMs bounds the quick modes one ISAKMP SA sees, live and past (whose
// message IDs it keeps): far more than its lifetime's rekeys.
const maxQMs = 1024

// handleQuick routes a quick mode message to its exchange.
func (s *V1Session) handleQuick(sa *v1SA, h wire1.Header, p packet) {
	qm := sa.qms[h.MsgID]
	if qm != nil && s.retransmitted(&qm.fl, p.b) {
		return
	}
	iv := sa.keys.msgIV(h.MsgID)
	if qm != nil {
		iv = qm.iv
	} else if _, ok := sa.pastQMs[h.MsgID]; ok {
		s.drop(DropWindow, h, "err", "quick mode message ID used before on this ISAKMP SA (a replay)")
		return
	} else if len(sa.qms)+len(sa.pastQMs) >= maxQMs {
		s.drop(DropRate, h, "err", "too many quick modes on this ISAKMP SA")
		return
	}
	c, hash, next, ok := s.openHashed(sa, h, p, iv)
	if !ok {
		return
	}
	switch {
	case qm == nil:
		s.quick1(sa, h, p, c, hash, next)
	case qm.initiator && qm.nr == nil:
		s.quick2(sa, qm, h, p, c, hash, next)
	case !qm.initiator && !qm.done:
		s.quick3(sa, qm, h, hash)
	default:
		s.drop(DropWindow, h)
	}
}

// quick1: the peer starts a quick mode. We answer with our choice and
// install the inbound SA; the outbound one follows HASH(3).
func (s *V1Session) quick1(sa *v1SA, h wire1.Header, p packet, c *wire1.Chain, hash *wire1.Hash, iv []byte) {
	if !checkHash(hash, sa.keys.prf.sum(sa.keys.a, append(msgID(h.MsgID), bytes.Join(c.Raw[1:], nil)...))) {
		s.drop(DropBadICV, h, "err", "quick mode HASH(1)")
		return
	}
	sa.lastRecv = s.now()
	m := collectQM(c)
	if m.sa == nil || m.nonce == nil || len(m.sa.Proposals) == 0 || (len(m.ids) != 0 && len(m.ids) != 2) {
		s.drop(DropMalformed, h, "err", "quick mode message 1 lacks SA or nonce")
		return
	}
	e, num, prop, life, ok := s.chooseESP(m.sa, m.ke != nil)
	if !ok {
		s.fail("peer's IKEv1 quick mode proposals have nothing in common with ours", "our_esp_proposals", proposalsString(s.cfg.ESPProposals),
			"peer_esp_proposals", v1PeerESP(m.sa, m.ke != nil))
		s.sendInfo(sa, &wire1.Notify{DOI: wire1.DOIIPsec, Protocol: wire1.ProtoESP, NotifyType: wire1.NNoProposalChosen})
		return
	}
	outSPI, _ := espSPI(prop.SPI)
	qm := &v1QM{id: h.MsgID, ni: bytes.Clone(m.nonce.Data), nr: nonce(), inSPI: randChildSPI(), created: s.now()}
	var gqm []byte
	var ke []wire1.Payload
	if e.group != 0 {
		dh, err := newDH(e.group)
		if err != nil {
			s.fail("cannot make DH key", "group", e.group, "err", err)
			return
		}
		if gqm, err = dh.shared(m.ke.Data); err != nil {
			s.drop(DropMalformed, h, "err", err)
			return
		}
		defer clear(gqm)
		ke = []wire1.Payload{&wire1.KE{Data: dh.public()}}
	}
	local, remote := []esp.Selector{esp.AnyIPv4}, []esp.Selector{esp.AnyIPv4}
	if len(m.ids) == 2 {
		r, err1 := idSelector(m.ids[0])
		l, err2 := idSelector(m.ids[1])
		if err := errors.Join(err1, err2); err != nil {
			s.fail("peer's quick mode identities", "err", err)
			return
		}
		local, remote = []esp.Selector{l}, []esp.Selector{r}
	}
	if life <= 0 || life > s.cfg.ChildLifetime {
		life = s.cfg.ChildLifetime
	}
	var tr wire1.Transform
	for _, t := range prop.Transforms {
		if t.Num == num {
			tr = t
		}
	}
	reply := &wire1.SA{DOI: wire1.DOIIPsec, Situation: wire1.SitIdentityOnly, Proposals: []wire1.Proposal{{
		Num: prop.Num, Protocol: wire1.ProtoESP, SPI: spiBytes(qm.inSPI), Transforms: []wire1.Transform{tr}}}}
	ps := append([]wire1.Payload{reply, &wire1.Nonce{Data: qm.nr}}, ke...)
	for _, id := range m.ids {
		ps = append(ps, id)
	}
	_, chain := wire1.EncodeChain(ps)
	hash2 := sa.keys.prf.sum(sa.keys.a, msgID(h.MsgID), qm.ni, chain)
	b, next := sa.keys.seal(wire1.Header{ICookie: sa.ci, RCookie: sa.cr, Exchange: wire1.ExchQuick, MsgID: h.MsgID},
		append([]wire1.Payload{&wire1.Hash{Data: hash2}}, ps...), iv)
	qm.iv = next
	n := e.suite.encKeyLen() + e.suite.integKeyLen()
	child := &v1Child{suite: e.suite, sa: &ChildSA{InSPI: qm.inSPI, OutSPI: outSPI, Suite: e.suite.espSuite(),
		InKey: sa.keys.keymat(gqm, qm.inSPI, qm.ni, qm.nr, n), OutKey: sa.keys.keymat(gqm, outSPI, qm.ni, qm.nr, n),
		LocalTS: local, RemoteTS: remote}}
	if err := s.dp.AddInbound(child.sa); err != nil {
		s.fail("cannot install Child SA", "err", err)
		return
	}
	child.established, child.replaces = s.now(), len(s.children) > 0
	child.expireAt = child.established.Add(life)
	// The quick mode's initiator rekeys first; we do only if it has not
	// by half our margin before the end (no crossing rekeys).
	child.rekeyAt = child.expireAt.Add(-min(s.cfg.RekeyMargin, life/3) / 2)
	s.children = append(s.children, child)
	qm.child = child
	sa.qms[h.MsgID] = qm
	qm.fl.lastIn = sha256.Sum256(p.b)
	s.sendFlight(&qm.fl, b, sa.natt, true)
}

// chooseESP picks, in the peer's order, the first ESP transform that is
// one of ours (with our PFS group, which a KE payload must match).
func (s *V1Session) chooseESP(sap *wire1.SA, hasKE bool) (v1ESP, uint8, wire1.Proposal, time.Duration, bool) {
	for _, prop := range sap.Proposals {
		if prop.Protocol != wire1.ProtoESP {
			continue
		}
		if _, ok := espSPI(prop.SPI); !ok {
			continue
		}
		for _, t := range prop.Transforms {
			e, life, ok := parseV1ESP(t)
			if ok && slices.Contains(s.esp, e) && (e.group != 0) == hasKE {
				return e, t.Num, prop, life, true
			}
		}
	}
	return v1ESP{}, 0, wire1.Proposal{}, 0, false
}

// quick2: the responder's answer. We send HASH(3) and take both SAs into use.
func (s *V1Session) quick2(sa *v1SA, qm *v1QM, h wire1.Header, p packet, c *wire1.Chain, hash *wire1.Hash, iv []byte) {
	m := collectQM(c)
	if m.nonce == nil {
		s.drop(DropMalformed, h, "err", "quick mode message 2 without nonce")
		return
	}
	if !checkHash(hash, sa.keys.prf.sum(sa.keys.a, append(append(msgID(h.MsgID), qm.ni...), bytes.Join(c.Raw[1:], nil)...))) {
		s.drop(DropBadICV, h, "err", "quick mode HASH(2)")
		return
	}
	sa.lastRecv = s.now()
	if m.sa == nil || len(m.sa.Proposals) != 1 || len(m.sa.Proposals[0].Transforms) != 1 {
		s.fail("peer's quick mode answer has no single transform")
		return
	}
	e, life, ok := parseV1ESP(m.sa.Proposals[0].Transforms[0])
	outSPI, spiOK := espSPI(m.sa.Proposals[0].SPI)
	if !ok || !spiOK || !slices.Contains(s.esp, e) || (e.group != 0) != (m.ke != nil) {
		s.fail("peer chose a quick mode transform we did not offer")
		return
	}
	qm.nr = bytes.Clone(m.nonce.Data)
	var gqm []byte
	if qm.dh != nil {
		var err error
		if gqm, err = qm.dh.shared(m.ke.Data); err != nil {
			s.fail("peer's quick mode KE", "err", err)
			return
		}
		defer clear(gqm)
	}
	hash3 := sa.keys.prf.sum(sa.keys.a, []byte{0}, msgID(h.MsgID), qm.ni, qm.nr)
	b, _ := sa.keys.seal(wire1.Header{ICookie: sa.ci, RCookie: sa.cr, Exchange: wire1.ExchQuick, MsgID: h.MsgID},
		[]wire1.Payload{&wire1.Hash{Data: hash3}}, iv)
	if life <= 0 || life > s.cfg.ChildLifetime {
		life = s.cfg.ChildLifetime
	}
	n := e.suite.encKeyLen() + e.suite.integKeyLen()
	child := &v1Child{suite: e.suite, ours: true, sa: &ChildSA{InSPI: qm.inSPI, OutSPI: outSPI, Suite: e.suite.espSuite(),
		InKey: sa.keys.keymat(gqm, qm.inSPI, qm.ni, qm.nr, n), OutKey: sa.keys.keymat(gqm, outSPI, qm.ni, qm.nr, n),
		LocalTS: []esp.Selector{esp.AnyIPv4}, RemoteTS: []esp.Selector{esp.AnyIPv4}}}
	if err := s.dp.AddInbound(child.sa); err != nil {
		s.fail("cannot install Child SA", "err", err)
		return
	}
	child.established, child.replaces = s.now(), len(s.children) > 0
	child.done = child.established
	child.expireAt = child.established.Add(life)
	child.rekeyAt = s.rekeyTime(child.established, life)
	s.children = append(s.children, child)
	qm.child = child
	// Our inbound SA exists before HASH(3) lets the peer send on it.
	qm.fl = v1Flight{lastIn: sha256.Sum256(p.b)}
	s.sendFlight(&qm.fl, b, sa.natt, false)
	qm.done = true
	// The peer installs the new SAs when it reads HASH(3): until then the
	// old outbound SA, if any, carries on, and the tunnel is not up yet.
	child.useAt, child.via, child.since = s.now().Add(v1SwitchDelay), sa, qm.created
}

// quick3: the initiator's HASH(3). The outbound SA goes into use.
func (s *V1Session) quick3(sa *v1SA, qm *v1QM, h wire1.Header, hash *wire1.Hash) {
	if !checkHash(hash, sa.keys.prf.sum(sa.keys.a, []byte{0}, msgID(h.MsgID), qm.ni, qm.nr)) {
		s.drop(DropBadICV, h, "err", "quick mode HASH(3)")
		return
	}
	sa.lastRecv = s.now()
	qm.done = true
	qm.fl = v1Flight{}
	qm.child.done = sa.lastRecv
	s.useChild(sa, qm.child, qm.created)
}

// v1SwitchDelay is how long after HASH(3) our outbound traffic moves to a
// rekeyed Child SA: the peer, the quick mode's responder, installs it on
// reading HASH(3), and a packet on the new SA before that is lost.
const v1SwitchDelay = 200 * time.Millisecond

// v1DeleteDelay is how long after our outbound traffic moved to a rekeyed
// Child SA we send the Delete for the old one. A packet sealed with the
// old SA just before the switch can reach the peer after a Delete sent at
// once, and an IKEv1 peer removes the SA on reading the Delete: strongSwan
// 5.9 (kernel-libipsec) dropped such a packet about once in six lab runs,
// "inbound ESP packet does not belong to an installed SA". (For IKEv2
// strongSwan itself keeps the inbound SA for delete_rekeyed_delay.)
const v1DeleteDelay = time.Second

// activeOutbound reports whether a Child SA carries our outbound traffic.
func (s *V1Session) activeOutbound() bool { return s.outChild() != nil }

// outChild is the Child SA our outbound traffic leaves by, or nil.
func (s *V1Session) outChild() *v1Child {
	for _, c := range s.children {
		if c.inUse {
			return c
		}
	}
	return nil
}

// useChild sends from now on with c; the children whose quick modes were
// done before its quick mode began (since) are deleted after a short
// linger (one the peer set up meanwhile, a crossing rekey, stays until it
// expires), and if sa replaces older ISAKMP SAs, those established before
// its main mode began go too.
func (s *V1Session) useChild(sa *v1SA, c *v1Child, since time.Time) {
	// A child of a crossing quick mode of the peer's that completed after
	// ours already carries our traffic: it is the newer one (the peer,
	// seeing ours done before its own began, deletes ours), so our
	// traffic stays on it.
	cur := s.outChild()
	switched := cur == nil || cur == c || !cur.done.After(c.done)
	if switched {
		if err := s.dp.UseOutbound(c.sa); err != nil {
			s.fail("cannot use Child SA", "err", err)
			return
		}
		for _, o := range s.children {
			o.inUse = o == c
		}
	}
	now := s.now()
	rekey := c.replaces || slices.ContainsFunc(s.children, func(o *v1Child) bool { return o != c })
	for _, o := range s.children {
		// A child whose quick mode (the peer's) completed after ours
		// began is a crossing rekey's sibling, not our predecessor.
		if o == c || !o.removeAt.IsZero() || o.done.IsZero() || !o.done.Before(since) {
			continue
		}
		o.rekeying = true
		if c.ours {
			// We ran the quick mode, so the peer has the new SAs: the
			// peer is told to delete the old ones once our packets on
			// them have arrived (v1DeleteDelay), and ours go after a
			// linger. A responder leaves the delete to the initiator,
			// which may still send on them (v1SwitchDelay); the old SAs
			// then end with their lifetime or its delete.
			o.deleteAt = now.Add(s.deleteDelay)
			o.removeAt = o.deleteAt.Add(s.oldLinger)
			s.wake = earliest(s.wake, o.deleteAt) // tickChildren may have passed o already
		}
	}
	if sa.replaces {
		sa.replaces = false
		// Only the SAs established before sa's main mode began: one the
		// peer made meanwhile (crossing rekeys) replaces the same old
		// ones and lives until its own rekey or expiry; deleting it
		// while the peer deletes ours would leave neither end an SA.
		for _, o := range slices.Clone(s.sas) {
			if o != sa && o.state == v1Est && o.est.Before(sa.created) {
				s.sendInfo(o, &wire1.Delete{DOI: wire1.DOIIPsec, Protocol: wire1.ProtoISAKMP, SPIs: [][]byte{cookies(o.ci, o.cr)}})
				s.removeSA(o)
			}
		}
	}
	el := c.established.Sub(s.start).Seconds() // until HASH(3), without v1SwitchDelay
	// The first Child SA since we began to connect is an establishment
	// unless a child from before then lives on (the ISAKMP SA was lost,
	// the children were not): a crossing quick mode's sibling does not
	// make it a rekey.
	established := !s.start.IsZero() && !slices.ContainsFunc(s.children, func(o *v1Child) bool {
		return o != c && o.established.Before(s.start)
	})
	by := "peer"
	if c.ours {
		by = "us"
	}
	s.log.Info("Child SA established (IKEv1 quick mode)", "spi_in", fmt.Sprintf("%08x", c.sa.InSPI),
		"spi_out", fmt.Sprintf("%08x", c.sa.OutSPI), "suite", c.suite.String(), "rekey", rekey, "quick_mode_by", by, "in_use", switched)
	s.setStatus(func(st *Status) {
		if switched {
			st.ChildInSPI, st.ChildOutSPI = fmt.Sprintf("%08x", c.sa.InSPI), fmt.Sprintf("%08x", c.sa.OutSPI)
			st.ChildSuite, st.ChildSince, st.ChildRekeyDue = c.suite.String(), c.established, c.rekeyAt
		}
		if established {
			st.Establishments++
			st.EstablishTime = el
		} else if rekey {
			st.ChildRekeys++
		}
	})
	s.start = time.Time{}
}

// sendInfo sends p in an informational exchange on sa.
func (s *V1Session) sendInfo(sa *v1SA, p wire1.Payload) {
	if sa.keys == nil {
		return
	}
	id := v1ExchangeID()
	_, chain := wire1.EncodeChain([]wire1.Payload{p})
	hash := sa.keys.prf.sum(sa.keys.a, msgID(id), chain)
	b, _ := sa.keys.seal(wire1.Header{ICookie: sa.ci, RCookie: sa.cr, Exchange: wire1.ExchInfo, MsgID: id},
		[]wire1.Payload{&wire1.Hash{Data: hash}, p}, sa.keys.msgIV(id))
	s.send(b, sa.natt)
}

// handleInfo handles an informational exchange: DPD, deletes, notifies.
func (s *V1Session) handleInfo(sa *v1SA, h wire1.Header, p packet) {
	c, hash, _, ok := s.openHashed(sa, h, p, sa.keys.msgIV(h.MsgID))
	if !ok {
		return
	}
	if !checkHash(hash, sa.keys.prf.sum(sa.keys.a, append(msgID(h.MsgID), bytes.Join(c.Raw[1:], nil)...))) {
		s.drop(DropBadICV, h, "err", "informational HASH(1)")
		return
	}
	sa.lastRecv = s.now()
	for _, pl := range c.Payloads[1:] {
		switch pl := pl.(type) {
		case *wire1.Notify:
			s.handleNotify(sa, pl)
		case *wire1.Delete:
			s.handleDelete(sa, pl)
		}
	}
}

func (s *V1Session) handleNotify(sa *v1SA, n *wire1.Notify) {
	switch n.NotifyType {
	case wire1.NRUThere:
		s.sendInfo(sa, &wire1.Notify{DOI: wire1.DOIIPsec, Protocol: wire1.ProtoISAKMP, SPI: cookies(sa.ci, sa.cr),
			NotifyType: wire1.NRUThereAck, Data: n.Data})
	case wire1.NRUThereAck:
		if len(n.Data) == 4 && binary.BigEndian.Uint32(n.Data) == sa.dpdSeq {
			sa.dpdSince = time.Time{}
		}
	case wire1.NInitialContact, wire1.NResponderLifetime:
	default:
		if n.NotifyType < 16384 {
			s.fail("peer sent an IKEv1 error notify: " + wire1.NotifyName(n.NotifyType))
		}
	}
}

// afterChildLoss: a Child SA is gone. If it carried our traffic, the
// newest other one takes it; with none left a quick mode starts.
func (s *V1Session) afterChildLoss() {
	if s.activeOutbound() {
		return
	}
	for _, c := range s.children {
		if !c.useAt.IsZero() {
			// A rekeyed child waiting for v1SwitchDelay: the peer deleted
			// the old one first, so it has the new SAs.
			c.useAt = time.Time{}
			s.useChild(c.via, c, c.since)
			c.via = nil
			return
		}
	}
	if n := s.newestChild(); n != nil {
		if err := s.dp.UseOutbound(n.sa); err == nil {
			n.inUse = true
		}
		return
	}
	if cur := s.current(); cur != nil && s.newestChild() == nil {
		s.startQuick(cur, nil, false)
	}
}

func (s *V1Session) handleDelete(sa *v1SA, d *wire1.Delete) {
	switch d.Protocol {
	case wire1.ProtoESP:
		for _, spi := range d.SPIs {
			if len(spi) != 4 {
				continue
			}
			v := binary.BigEndian.Uint32(spi)
			for _, c := range slices.Clone(s.children) {
				if c.sa.OutSPI == v {
					s.log.Info("peer deleted Child SA", "spi_out", fmt.Sprintf("%08x", v))
					s.removeChild(c)
					s.afterChildLoss()
				}
			}
		}
	case wire1.ProtoISAKMP:
		for _, spi := range d.SPIs {
			for _, o := range slices.Clone(s.sas) {
				if bytes.Equal(spi, cookies(o.ci, o.cr)) && o.state == v1Est {
					s.log.Info("peer deleted ISAKMP SA", "cookies", fmt.Sprintf("%016x/%016x", o.ci, o.cr))
					s.removeSA(o)
				}
			}
		}
		if s.current() == nil && !slices.ContainsFunc(s.sas, func(x *v1SA) bool { return x.state != v1Est }) {
			s.afterPhase1Loss()
		}
	}
}
