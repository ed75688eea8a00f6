package ike

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/ike/wire"
)

// established is a pair of sessions with their IKE and Child SAs up and
// settled; a initiated.
func established(t *testing.T) (a, b side) {
	t.Helper()
	a, b = pairUp(t, cfg("198.51.100.2", "203.0.113.10", "k", DefaultIKEProposal, DefaultESPProposal, true),
		cfg("203.0.113.10", "198.51.100.2", "k", DefaultIKEProposal, DefaultESPProposal, false))
	waitFor(t, 10*time.Second, "established", func() bool { return settled(t, a, b) })
	return a, b
}

func dropped(s *Session, r DropReason) uint64 { return s.Status().Dropped[r.String()] }

// waitDropped waits until s has counted one more drop for r than before.
func waitDropped(t *testing.T, s *Session, r DropReason, before uint64) {
	t.Helper()
	waitFor(t, 5*time.Second, r.String()+" drop", func() bool { return dropped(s, r) > before })
}

func cleartext(t testing.TB, h wire.Header, ps ...wire.Payload) []byte {
	t.Helper()
	b, err := marshal(&wire.Message{Header: h, Payloads: ps}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCleartextAfterInitChangesNothing sends the peer's cleartext attacks
// to an established initiator: Delete(IKE), CREATE_CHILD_SA and
// Delete(ESP), each with the SPIs and the message ID the peer would use.
// Each must be dropped as unencrypted and leave every SA as it was.
func TestCleartextAfterInitChangesNothing(t *testing.T) {
	a, b := established(t)
	before := snap(t, a.s)
	req := wire.Header{SPIi: before.spiI, SPIr: before.spiR, MsgID: before.peerID} // from the responder: no I flag
	var spi [4]byte
	binary.BigEndian.PutUint32(spi[:], before.childOut)
	dh, err := newDH(20)
	if err != nil {
		t.Fatal(err)
	}
	esp := espProposalWithSPI(t, 0x01020304)
	attacks := map[string][]byte{
		"Delete(IKE)": cleartext(t, withExch(req, wire.Informational), &wire.Delete{Protocol: wire.ProtoIKE}),
		"CREATE_CHILD_SA": cleartext(t, withExch(req, wire.CreateChildSA), &wire.SA{Proposals: []Proposal{esp}},
			&wire.Nonce{Data: make([]byte, 32)}, &wire.KE{Group: 20, Data: dh.public()}, anyTS(false), anyTS(true)),
		"Delete(ESP)": cleartext(t, withExch(req, wire.Informational), &wire.Delete{Protocol: wire.ProtoESP, SPIs: [][]byte{spi[:]}}),
	}
	for _, name := range []string{"Delete(IKE)", "CREATE_CHILD_SA", "Delete(ESP)"} {
		n := dropped(a.s, DropUnencrypted)
		a.s.Deliver(attacks[name], true)
		waitDropped(t, a.s, DropUnencrypted, n)
		if now := snap(t, a.s); now.spiI != before.spiI || now.spiR != before.spiR ||
			now.childIn != before.childIn || now.childOut != before.childOut || now.peerID != before.peerID {
			t.Fatalf("cleartext %s changed the SAs: before %+v, after %+v", name, before, now)
		}
		if !up(a, b) {
			t.Fatalf("tunnel down after cleartext %s", name)
		}
	}
}

func withExch(h wire.Header, exch uint8) wire.Header { h.Exchange = exch; return h }

func espProposalWithSPI(t *testing.T, spi uint32) Proposal {
	t.Helper()
	p, err := ParseProposal(DefaultESPProposal, false)
	if err != nil {
		t.Fatal(err)
	}
	p.Num, p.Protocol, p.SPI = 1, wire.ProtoESP, binary.BigEndian.AppendUint32(nil, spi)
	return p
}

// TestCleartextResponseIsNotLiveness: a cleartext response with the ID of
// our outstanding DPD request neither answers it nor counts as the peer
// being alive.
func TestCleartextResponseIsNotLiveness(t *testing.T) {
	a, b := established(t)
	b.link.mu.Lock()
	b.link.drop = true // the real peer's answers are lost from now on
	b.link.mu.Unlock()
	var v snapshot
	waitFor(t, 5*time.Second, "a DPD request", func() bool { v = snap(t, a.s); return v.busy })
	n := dropped(a.s, DropUnencrypted)
	a.s.Deliver(cleartext(t, wire.Header{SPIi: v.spiI, SPIr: v.spiR, Exchange: wire.Informational, Flags: wire.FlagResponse, MsgID: v.nextID}), true)
	waitDropped(t, a.s, DropUnencrypted, n)
	if now := snap(t, a.s); !now.busy || now.nextID != v.nextID {
		t.Fatalf("cleartext response taken as the answer: %+v", now)
	}
}

// TestRetransmitMustBeIdentical: a request with the last answered message
// ID is answered again only when it is the same datagram.
func TestRetransmitMustBeIdentical(t *testing.T) {
	ci := cfg("198.51.100.2", "203.0.113.10", "k", DefaultIKEProposal, DefaultESPProposal, true)
	cr := cfg("203.0.113.10", "198.51.100.2", "k", DefaultIKEProposal, DefaultESPProposal, false)
	ci.DPDDelay, cr.DPDDelay = time.Hour, time.Hour // no exchange moves the IDs during the test
	a, b := pairUp(t, ci, cr)
	waitFor(t, 10*time.Second, "established", func() bool { return settled(t, a, b) })
	v := snap(t, b.s)
	// a's last request to b (its IKE_AUTH) is the one b answered last.
	var last []byte
	a.link.mu.Lock()
	for _, m := range a.link.sent {
		if h, err := wire.ParseHeader(m); err == nil && !h.IsResponse() && h.MsgID+1 == v.peerID {
			last = m
		}
	}
	a.link.mu.Unlock()
	if last == nil {
		t.Fatal("no answered request from a found")
	}
	sentBy := func() int { b.link.mu.Lock(); defer b.link.mu.Unlock(); return len(b.link.sent) }
	forged := bytes.Clone(last)
	forged[len(forged)-1] ^= 0xff // same header and ID, other content
	n, s0 := dropped(b.s, DropRetransmitMismatch), sentBy()
	b.s.Deliver(forged, true)
	waitDropped(t, b.s, DropRetransmitMismatch, n)
	if sentBy() != s0 {
		t.Fatal("b answered a forged retransmission")
	}
	b.s.Deliver(last, true)
	waitFor(t, 5*time.Second, "the cached answer to a real retransmission", func() bool { return sentBy() > s0 })
}

// spoofedInit is an IKE_SA_INIT request as a flood would send it: a fresh
// SPI, a valid KE for the proposal's group and a random nonce.
func spoofedInit(t testing.TB, cookie []byte) []byte {
	t.Helper()
	p, err := ParseProposal(DefaultIKEProposal, true)
	if err != nil {
		t.Fatal(err)
	}
	p.Num, p.Protocol = 1, wire.ProtoIKE
	dh, err := newDH(firstDH([]Proposal{p}))
	if err != nil {
		t.Fatal(err)
	}
	ni := make([]byte, 32)
	rand.Read(ni)
	var ps []wire.Payload
	if cookie != nil {
		ps = append(ps, &wire.Notify{NotifyType: wire.NCookie, Data: cookie})
	}
	ps = append(ps, &wire.SA{Proposals: []Proposal{p}}, &wire.KE{Group: firstDH([]Proposal{p}), Data: dh.public()}, &wire.Nonce{Data: ni})
	return cleartext(t, wire.Header{SPIi: randSPI(), Exchange: wire.IKESAInit, Flags: wire.FlagInitiator}, ps...)
}

func halfOpen(t *testing.T, s *Session) (n int) {
	onLoop(t, s, func() { n = len(s.sas.halves) })
	return n
}

// TestSpoofedInitDoesNotEvictHalfOpen: IKE_SA_INITs from other SPIs
// (below the cookie threshold) arrive between the peer's IKE_SA_INIT and
// its IKE_AUTH; the peer's exchange must still complete at once.
func TestSpoofedInitDoesNotEvictHalfOpen(t *testing.T) {
	ci := cfg("198.51.100.2", "203.0.113.10", "k", DefaultIKEProposal, DefaultESPProposal, true)
	cr := cfg("203.0.113.10", "198.51.100.2", "k", DefaultIKEProposal, DefaultESPProposal, false)
	cr.CookieThreshold = 1000 // the trickle stays below it
	a, b := pairUp(t, ci, cr, func(s *Session) {
		if s.cfg.Initiate {
			s.tr.(*link).only = func(h wire.Header) bool { return h.Exchange == wire.IKEAuth }
			s.tr.(*link).hold = true
		}
	})
	waitFor(t, 5*time.Second, "the initiator's IKE_AUTH", func() bool { return a.link.holds(wire.IKEAuth, false) })
	for i := 0; i < 5; i++ {
		b.s.Deliver(spoofedInit(t, nil), true)
	}
	waitFor(t, 5*time.Second, "the spoofed half-open SAs", func() bool { return halfOpen(t, b.s) == 6 })
	a.link.release(true)
	waitFor(t, 5*time.Second, "established", func() bool { return up(a, b) })
	if st := a.s.Status(); st.Establishments != 1 || st.LastError != "" {
		t.Fatalf("the first attempt did not complete: %+v", st)
	}
}

// TestHalfOpenTableBounded: a flood of IKE_SA_INITs without cookies fills
// at most half the table, then is asked for cookies; a real initiator
// still gets in.
func TestHalfOpenTableBounded(t *testing.T) {
	ci := cfg("198.51.100.2", "203.0.113.10", "k", DefaultIKEProposal, DefaultESPProposal, true)
	cr := cfg("203.0.113.10", "198.51.100.2", "k", DefaultIKEProposal, DefaultESPProposal, false)
	cr.CookieThreshold = 1000 // only the table fill asks for cookies
	ci.Initiate = false       // started by hand below, after the flood
	a, b := pairUp(t, ci, cr)
	for i := 0; i < 40; i++ {
		b.s.Deliver(spoofedInit(t, nil), true)
	}
	waitFor(t, 5*time.Second, "cookies demanded", func() bool { return dropped(b.s, DropCookie) >= 40-8 })
	if n := halfOpen(t, b.s); n != 8 {
		t.Fatalf("%d half-open SAs after the flood, want 8 (half of 16)", n)
	}
	// A flood that echoes our cookies (an on-path attacker) fills the table, no more.
	for i := 0; i < 40; i++ {
		m := spoofedInit(t, nil)
		h, _ := wire.ParseHeader(m)
		pk, err := wire.PeekInit(m)
		if err != nil {
			t.Fatal(err)
		}
		var c []byte
		onLoop(t, b.s, func() { c = bytes.Clone(b.s.cookies.make(time.Now(), pk.Nonce, b.s.cfg.Remote, h.SPIi)) })
		b.s.Deliver(spoofedInit(t, c), true) // another nonce: the cookie does not fit
	}
	if n := halfOpen(t, b.s); n > 16 {
		t.Fatalf("%d half-open SAs, the table holds 16", n)
	}
	onLoop(t, a.s, func() { a.s.cfg.Initiate = true; a.s.initiate() })
	waitFor(t, 10*time.Second, "established through the cookie", func() bool { return up(a, b) })
}

// TestForgedInvalidKEDoesNotDerail: an INVALID_KE_PAYLOAD forged before
// the responder's real answer makes the initiator try the other group,
// but the real answer to the first request still completes the attempt.
func TestForgedInvalidKEDoesNotDerail(t *testing.T) {
	two := "aes256gcm16-prfsha384-ecp384-ecp256"
	ci := cfg("198.51.100.2", "203.0.113.10", "k", two, DefaultESPProposal, true)
	cr := cfg("203.0.113.10", "198.51.100.2", "k", two, DefaultESPProposal, false)
	hold := func(s *Session) {
		s.tr.(*link).only = func(h wire.Header) bool { return h.Exchange == wire.IKESAInit }
		s.tr.(*link).hold = true
	}
	a, b := pairUp(t, ci, cr, hold)
	waitFor(t, 5*time.Second, "the first IKE_SA_INIT", func() bool { return a.link.holds(wire.IKESAInit, false) })
	var spiI uint64
	a.link.mu.Lock()
	spiI = binary.BigEndian.Uint64(a.link.held[0].b)
	a.link.mu.Unlock()
	a.link.release(false)
	waitFor(t, 5*time.Second, "the real answer", func() bool { return b.link.holds(wire.IKESAInit, true) })
	a.s.Deliver(cleartext(t, wire.Header{SPIi: spiI, Exchange: wire.IKESAInit, Flags: wire.FlagResponse},
		&wire.Notify{NotifyType: wire.NInvalidKEPayload, Data: binary.BigEndian.AppendUint16(nil, 19)}), false)
	waitFor(t, 5*time.Second, "the retry with group 19", func() bool { return a.link.holds(wire.IKESAInit, false) })
	b.link.release(true) // the real answer, for group 20
	a.link.release(true)
	waitFor(t, 10*time.Second, "established", func() bool { return up(a, b) })
	if st := a.s.Status(); st.Establishments != 1 || st.LastError != "" || snap(t, a.s).spiI != spiI {
		t.Fatalf("the forged notify derailed the first attempt: %+v", st)
	}
}

// TestNonceTooShortForPRF: a 16-byte nonce is refused with PRF SHA-384,
// which needs 24 bytes (RFC 7296 2.10), before any state is kept.
func TestNonceTooShortForPRF(t *testing.T) {
	cr := cfg("203.0.113.10", "198.51.100.2", "k", DefaultIKEProposal, DefaultESPProposal, false)
	_, b := pairUp(t, cfg("198.51.100.2", "203.0.113.10", "k", DefaultIKEProposal, DefaultESPProposal, false), cr)
	m := spoofedInit(t, nil)
	msg, err := parse(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	msg.Get(wire.PayloadNonce).(*wire.Nonce).Data = make([]byte, 16)
	short, _ := marshal(msg, nil)
	n := dropped(b.s, DropMalformed)
	b.s.Deliver(short, false)
	waitDropped(t, b.s, DropMalformed, n)
	if h := halfOpen(t, b.s); h != 0 {
		t.Fatalf("%d half-open SAs for a too-short nonce", h)
	}
}

func TestCookieSecretRotates(t *testing.T) {
	t0 := time.Unix(1000, 0)
	j, err := newCookieJar(t0)
	if err != nil {
		t.Fatal(err)
	}
	peer := netip.MustParseAddr("203.0.113.10")
	c := bytes.Clone(j.make(t0, []byte("n"), peer, 7))
	if !j.valid(t0.Add(time.Second), c, []byte("n"), peer, 7) {
		t.Fatal("fresh cookie refused")
	}
	t1 := t0.Add(cookieRotate + time.Second)
	if c2 := j.make(t1, []byte("n"), peer, 7); bytes.Equal(c, c2) {
		t.Fatal("secret did not rotate")
	}
	if !j.valid(t1, c, []byte("n"), peer, 7) {
		t.Fatal("a cookie of the previous secret is refused within the grace period")
	}
	if j.valid(t1.Add(cookieRotate+time.Second), c, []byte("n"), peer, 7) {
		t.Fatal("a cookie two secrets old is accepted")
	}
	if j.valid(t1, c, []byte("other"), peer, 7) {
		t.Fatal("cookie accepted for another nonce")
	}
}

// TestDroppedSAKeysAreWiped: once the session drops its SAs (restart,
// stop), their IKE keys are zero in memory.
func TestDroppedSAKeysAreWiped(t *testing.T) {
	a, _ := established(t)
	var k *ikeKeys
	onLoop(t, a.s, func() { k = a.s.sas.ike.keys })
	if bytes.Count(k.d, []byte{0}) == len(k.d) {
		t.Fatal("SK_d is zero before the SA was dropped")
	}
	onLoop(t, a.s, func() { a.s.restart("test") })
	for i, b := range [][]byte{k.d, k.ai, k.ar, k.ei, k.er, k.pi, k.pr} {
		if bytes.Count(b, []byte{0}) != len(b) {
			t.Fatalf("key %d of the dropped SA not wiped", i)
		}
	}
}

// TestCookieAnswerMakesNoGarbage: answering a spoofed IKE_SA_INIT with a
// COOKIE under a flood allocates almost nothing (it allocated 19 times,
// 816 bytes, per request before), so a flood cannot grow the heap.
func TestCookieAnswerMakesNoGarbage(t *testing.T) {
	s := floodedResponder(t)
	m := spoofedInit(t, nil)
	n := dropped(s, DropCookie)
	if a := testing.AllocsPerRun(200, func() { s.handle(packet{b: m, natt: true}) }); a > 4 {
		t.Errorf("%.0f allocations per COOKIE answer, want at most 4", a)
	}
	if dropped(s, DropCookie) <= n {
		t.Fatal("the requests were not answered with a COOKIE")
	}
}

type nopTransport struct{}

func (nopTransport) SendIKE([]byte, bool) error { return nil }

// floodedResponder is a responder that demands a COOKIE from everyone, as
// under a flood; its Run loop is not started (tests call handle).
func floodedResponder(tb testing.TB) *Session {
	tb.Helper()
	c := cfg("203.0.113.10", "198.51.100.2", "k", DefaultIKEProposal, DefaultESPProposal, false)
	c.CookieThreshold = -1
	s, err := NewSession(c, nopTransport{}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// BenchmarkInitFloodCookie is the responder's cost of one spoofed
// IKE_SA_INIT under a flood: pre-parse, cookie check, COOKIE answer.
func BenchmarkInitFloodCookie(b *testing.B) {
	s := floodedResponder(b)
	msgs := make([][]byte, 64)
	for i := range msgs {
		msgs[i] = spoofedInit(b, nil)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.handle(packet{b: msgs[i%len(msgs)], natt: true})
	}
}
