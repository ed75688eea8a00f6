package ike

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/ike/wire"
)

// link connects two sessions in memory; drop makes it lose everything,
// hold keeps what is sent until release.
type link struct {
	mu   sync.Mutex
	peer *Session
	drop bool
	hold bool
	held []packet
	// only, when set, limits holding to the messages it matches.
	only func(wire.Header) bool
	sent [][]byte // everything sent, in order
}

func (l *link) SendIKE(b []byte, natt bool) error {
	l.mu.Lock()
	l.sent = append(l.sent, append([]byte(nil), b...))
	p, drop := l.peer, l.drop
	h, _ := wire.ParseHeader(b)
	if l.hold && !drop && (l.only == nil || l.only(h)) {
		l.held = append(l.held, packet{b: append([]byte(nil), b...), natt: natt})
		l.mu.Unlock()
		return nil
	}
	l.mu.Unlock()
	if !drop && p != nil {
		p.Deliver(b, natt)
	}
	return nil
}

func (l *link) setHold(on bool) {
	l.mu.Lock()
	l.hold = on
	l.mu.Unlock()
}

// release delivers what was held, in order; with stop it stops holding.
func (l *link) release(stop bool) {
	l.mu.Lock()
	held := l.held
	l.held = nil
	if stop {
		l.hold = false
	}
	p := l.peer
	l.mu.Unlock()
	for _, m := range held {
		p.Deliver(m.b, m.natt)
	}
}

// releaseIf delivers the held messages that match, keeps the others.
func (l *link) releaseIf(match func(wire.Header) bool) {
	l.mu.Lock()
	var out, keep []packet
	for _, m := range l.held {
		if h, err := wire.ParseHeader(m.b); err == nil && match(h) {
			out = append(out, m)
		} else {
			keep = append(keep, m)
		}
	}
	l.held = keep
	p := l.peer
	l.mu.Unlock()
	for _, m := range out {
		p.Deliver(m.b, m.natt)
	}
}

// holds reports whether a message of exchange exch (a request unless
// response) is held.
func (l *link) holds(exch uint8, response bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.held {
		if h, err := wire.ParseHeader(m.b); err == nil && h.Exchange == exch && h.IsResponse() == response {
			return true
		}
	}
	return false
}

// fakeDP is a data path that checks make-before-break against its peer:
// outbound never moves to an SA the peer does not accept yet, an inbound
// SA is never removed while the peer still sends on it, and once there is
// an outbound SA there always is one.
type fakeDP struct {
	mu         sync.Mutex
	in         map[uint32]*ChildSA
	out        *ChildSA
	peer       *fakeDP
	added      []uint32
	removed    []uint32
	violations []string
}

func (d *fakeDP) AddInbound(c *ChildSA) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.in == nil {
		d.in = map[uint32]*ChildSA{}
	}
	d.in[c.InSPI] = c
	d.added = append(d.added, c.InSPI)
	return nil
}

func (d *fakeDP) UseOutbound(c *ChildSA) error {
	if p := d.peer; p != nil {
		p.mu.Lock()
		_, ok := p.in[c.OutSPI]
		p.mu.Unlock()
		if !ok {
			d.violate(fmt.Sprintf("outbound moved to SPI %08x before the peer accepts it", c.OutSPI))
		}
	}
	d.mu.Lock()
	d.out = c
	d.mu.Unlock()
	return nil
}

func (d *fakeDP) Remove(spi uint32) {
	d.mu.Lock()
	if d.out != nil && d.out.InSPI == spi {
		d.out = nil
		d.violations = append(d.violations, fmt.Sprintf("outbound SA (inbound SPI %08x) removed while in use", spi))
	}
	delete(d.in, spi)
	d.removed = append(d.removed, spi)
	d.mu.Unlock()
	if p := d.peer; p != nil {
		p.mu.Lock()
		sending := p.out != nil && p.out.OutSPI == spi
		p.mu.Unlock()
		if sending {
			d.violate(fmt.Sprintf("inbound SPI %08x removed while the peer still sends on it", spi))
		}
	}
}

func (d *fakeDP) violate(v string) {
	d.mu.Lock()
	d.violations = append(d.violations, v)
	d.mu.Unlock()
}

func (d *fakeDP) LastInbound() time.Time { return time.Time{} }
func (d *fakeDP) OutboundSeq() uint64    { return 0 }

// matched reports whether a's outbound SA is b's inbound one with the same keys.
func matched(a, b *fakeDP) bool {
	a.mu.Lock()
	out := a.out
	a.mu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if out == nil {
		return false
	}
	in := b.in[out.OutSPI]
	return in != nil && string(in.InKey) == string(out.OutKey) && in.Suite == out.Suite
}

type side struct {
	s    *Session
	dp   *fakeDP
	link *link
	logs *syncBuf // when the test keeps the log
}

func cfg(local, remote string, psk string, ike, esp string, initiate bool) Config {
	ip, _ := ParseProposal(ike, true)
	ep, _ := ParseProposal(esp, false)
	return Config{Local: netip.MustParseAddr(local), Remote: netip.MustParseAddr(remote), PSK: []byte(psk),
		IKEProposals: []Proposal{ip}, ESPProposals: []Proposal{ep}, Initiate: initiate, ForceEncap: true,
		DPDDelay: 500 * time.Millisecond, DPDTimeout: 3 * time.Second, RetryInterval: 500 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)}
}

func pairUp(t *testing.T, ci, cr Config, tweak ...func(*Session)) (a, b side) {
	t.Helper()
	a.dp, b.dp = &fakeDP{}, &fakeDP{}
	a.dp.peer, b.dp.peer = b.dp, a.dp
	a.link, b.link = &link{}, &link{}
	var err error
	if a.s, err = NewSession(ci, a.link, a.dp); err != nil {
		t.Fatal(err)
	}
	if b.s, err = NewSession(cr, b.link, b.dp); err != nil {
		t.Fatal(err)
	}
	a.link.peer, b.link.peer = b.s, a.s
	for _, f := range tweak {
		f(a.s)
		f(b.s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a.s.Run(ctx) }()
	go func() { defer wg.Done(); b.s.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return a, b
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func up(a, b side) bool { return matched(a.dp, b.dp) && matched(b.dp, a.dp) }

func TestEstablishEverySuite(t *testing.T) {
	for _, tc := range []struct{ ike, esp string }{
		{DefaultIKEProposal, DefaultESPProposal},
		{"aes128-sha1-modp2048", "aes128-sha1-modp2048"},
		{"aes256-sha256-modp3072", "aes256-sha256"},
		{"aes128gcm16-prfsha256-ecp256", "aes128gcm16"},
		{"aes256-sha384-ecp521", "aes256-sha384"},
		{"aes256-sha512-modp4096", "aes128-sha512"},
	} {
		t.Run(tc.ike, func(t *testing.T) {
			a, b := pairUp(t, cfg("198.51.100.2", "203.0.113.10", "s3cret", tc.ike, tc.esp, true),
				cfg("203.0.113.10", "198.51.100.2", "s3cret", tc.ike, tc.esp, false))
			waitFor(t, 10*time.Second, "child SAs", func() bool { return up(a, b) })
			if st := a.s.Status(); st.State != "established" || st.Role != "initiator" {
				t.Fatalf("initiator status %+v", st)
			}
		})
	}
}

func TestResponderAsksForCookieUnderLoad(t *testing.T) {
	ci := cfg("198.51.100.2", "203.0.113.10", "k", DefaultIKEProposal, DefaultESPProposal, true)
	cr := cfg("203.0.113.10", "198.51.100.2", "k", DefaultIKEProposal, DefaultESPProposal, false)
	cr.CookieThreshold = -1 // as if flooded: every IKE_SA_INIT must bring a cookie
	a, b := pairUp(t, ci, cr)
	waitFor(t, 10*time.Second, "child SAs after the cookie round trip", func() bool { return up(a, b) })
	if st := a.s.Status(); st.State != "established" {
		t.Fatalf("initiator status %+v", st)
	}
}

func TestCookieBindsNonceAndSPI(t *testing.T) {
	s, err := NewSession(cfg("203.0.113.10", "198.51.100.2", "k", DefaultIKEProposal, DefaultESPProposal, false), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Unix(1000, 0)
	s.cookies.rotated = base
	peer := s.cfg.Remote
	c := bytes.Clone(s.cookies.make(base, []byte("nonce-1"), peer, 1)) // make's result lasts until the next call
	if !bytes.Equal(c, s.cookies.make(base, []byte("nonce-1"), peer, 1)) {
		t.Fatal("cookie not deterministic for the same request")
	}
	if bytes.Equal(c, s.cookies.make(base, []byte("nonce-2"), peer, 1)) || bytes.Equal(c, s.cookies.make(base, []byte("nonce-1"), peer, 2)) {
		t.Fatal("cookie does not depend on the nonce and the SPI")
	}
	s.cfg.CookieThreshold = 3
	for i := 0; i < 3; i++ {
		if s.underLoad(base.Add(time.Duration(i) * 100 * time.Millisecond)) {
			t.Fatalf("under load after %d requests, threshold 3", i+1)
		}
	}
	if !s.underLoad(base.Add(300 * time.Millisecond)) {
		t.Fatal("not under load after 4 requests in a second")
	}
	if s.underLoad(base.Add(5 * time.Second)) {
		t.Fatal("still under load after a quiet second")
	}
}

func TestWrongPSK(t *testing.T) {
	a, b := pairUp(t, cfg("198.51.100.2", "203.0.113.10", "Xq7-right-psk", DefaultIKEProposal, DefaultESPProposal, true),
		cfg("203.0.113.10", "198.51.100.2", "Zk9-other-psk", DefaultIKEProposal, DefaultESPProposal, false))
	waitFor(t, 5*time.Second, "errors", func() bool {
		return strings.Contains(a.s.Status().LastError, "AUTHENTICATION_FAILED") &&
			strings.Contains(b.s.Status().LastError, "AUTHENTICATION_FAILED")
	})
	if up(a, b) || a.s.Status().State != "connecting" {
		t.Fatal("tunnel up with mismatched keys")
	}
	for _, st := range []Status{a.s.Status(), b.s.Status()} {
		if strings.Contains(st.LastError, "Xq7") || strings.Contains(st.LastError, "Zk9") {
			t.Fatal("PSK in error")
		}
	}
}

func TestNoProposalChosen(t *testing.T) {
	a, b := pairUp(t, cfg("198.51.100.2", "203.0.113.10", "k", "aes128-sha1-modp2048", DefaultESPProposal, true),
		cfg("203.0.113.10", "198.51.100.2", "k", DefaultIKEProposal, DefaultESPProposal, false))
	waitFor(t, 5*time.Second, "errors", func() bool {
		return strings.Contains(a.s.Status().LastError, "NO_PROPOSAL_CHOSEN") &&
			strings.Contains(b.s.Status().LastError, "aes128-prfsha1-sha1-modp2048") &&
			strings.Contains(b.s.Status().LastError, "aes256gcm16-prfsha384-ecp384")
	})
}

func TestESPNoProposalChosen(t *testing.T) {
	a, b := pairUp(t, cfg("198.51.100.2", "203.0.113.10", "k", DefaultIKEProposal, "aes128-sha1", true),
		cfg("203.0.113.10", "198.51.100.2", "k", DefaultIKEProposal, DefaultESPProposal, false))
	waitFor(t, 5*time.Second, "errors", func() bool {
		return strings.Contains(a.s.Status().LastError, "NO_PROPOSAL_CHOSEN") && strings.Contains(b.s.Status().LastError, "NO_PROPOSAL_CHOSEN")
	})
	if up(a, b) {
		t.Fatal("up without a common ESP proposal")
	}
}

func TestInvalidKERetry(t *testing.T) {
	// The initiator offers ecp384 first, the responder only modp2048.
	ci := cfg("198.51.100.2", "203.0.113.10", "k", "aes256-sha256-ecp384-modp2048", DefaultESPProposal, true)
	cr := cfg("203.0.113.10", "198.51.100.2", "k", "aes256-sha256-modp2048", DefaultESPProposal, false)
	a, b := pairUp(t, ci, cr)
	waitFor(t, 10*time.Second, "child SAs", func() bool { return up(a, b) })
	if !strings.Contains(a.s.Status().IKESuite, "modp2048") {
		t.Fatalf("suite %s", a.s.Status().IKESuite)
	}
}

func TestRekeyChildAndIKE(t *testing.T) {
	for _, initiatorRekeys := range []bool{true, false} {
		ci := cfg("198.51.100.2", "203.0.113.10", "k", DefaultIKEProposal, DefaultESPProposal, true)
		cr := cfg("203.0.113.10", "198.51.100.2", "k", DefaultIKEProposal, DefaultESPProposal, false)
		fast := &ci
		if !initiatorRekeys {
			fast = &cr
		}
		fast.ChildLifetime, fast.IKELifetime, fast.RekeyMargin = 3*time.Second, 5*time.Second, time.Second
		a, b := pairUp(t, ci, cr)
		waitFor(t, 10*time.Second, "child SAs", func() bool { return up(a, b) })
		first := a.s.Status()
		waitFor(t, 15*time.Second, "rekeys", func() bool {
			sa, sb := a.s.Status(), b.s.Status()
			return sa.ChildRekeys >= 2 && sb.ChildRekeys >= 2 && sa.IKERekeys >= 1 && sb.IKERekeys >= 1 && up(a, b) &&
				sa.State == "established" && sb.State == "established"
		})
		if a.s.Status().Establishments != first.Establishments || a.s.Status().SPIi == first.SPIi {
			t.Fatalf("re-established instead of rekeyed: %+v", a.s.Status())
		}
	}
}

func TestDPDDetectsDeadPeerAndRecovers(t *testing.T) {
	a, b := pairUp(t, cfg("198.51.100.2", "203.0.113.10", "k", DefaultIKEProposal, DefaultESPProposal, true),
		cfg("203.0.113.10", "198.51.100.2", "k", DefaultIKEProposal, DefaultESPProposal, false))
	waitFor(t, 10*time.Second, "child SAs", func() bool { return up(a, b) })
	b.link.mu.Lock()
	b.link.drop = true
	b.link.mu.Unlock()
	waitFor(t, 10*time.Second, "peer declared dead", func() bool { return strings.Contains(a.s.Status().LastError, "dead") })
	b.link.mu.Lock()
	b.link.drop = false
	b.link.mu.Unlock()
	waitFor(t, 15*time.Second, "re-established", func() bool { return up(a, b) && a.s.Status().State == "established" })
}

func TestPeerUnreachable(t *testing.T) {
	a, b := pairUp(t, cfg("198.51.100.2", "203.0.113.10", "k", DefaultIKEProposal, DefaultESPProposal, true),
		cfg("203.0.113.10", "198.51.100.2", "k", DefaultIKEProposal, DefaultESPProposal, false))
	a.link.mu.Lock()
	a.link.drop = true // nothing reaches the responder
	a.link.mu.Unlock()
	waitFor(t, 10*time.Second, "unreachable error", func() bool {
		return strings.Contains(a.s.Status().LastError, "peer unreachable: no answer to IKE_SA_INIT")
	})
	if up(a, b) {
		t.Fatal("up without a peer")
	}
	a.link.mu.Lock()
	a.link.drop = false
	a.link.mu.Unlock()
	waitFor(t, 15*time.Second, "established after the peer appears", func() bool { return up(a, b) })
}
