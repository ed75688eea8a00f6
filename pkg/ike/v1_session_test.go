package ike

import (
	"context"
	"encoding/binary"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/ike/wire1"
)

// runAll runs the sessions until the test ends.
func runAll(t *testing.T, rs ...Runner) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Go(func() { r.Run(ctx) })
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// v1link connects two IKEv1 sessions in memory; drop loses everything,
// dropLeft the next messages of exchange dropExch (-1: all of them).
type v1link struct {
	mu       sync.Mutex
	peer     interface{ Deliver([]byte, bool) }
	drop     bool
	dropExch uint8
	dropLeft int
	natt     []bool // the port of everything sent, in order
	last     []byte // the last message sent
	infos    int    // informational exchanges sent
}

// setDrop drops the next n messages of exchange exch (-1: all, 0: none).
func (l *v1link) setDrop(exch uint8, n int) {
	l.mu.Lock()
	l.dropExch, l.dropLeft = exch, n
	l.mu.Unlock()
}

func (l *v1link) SendIKE(b []byte, natt bool) error {
	l.mu.Lock()
	p, drop := l.peer, l.drop
	if l.dropLeft != 0 && len(b) > 18 && b[18] == l.dropExch {
		drop = true
		if l.dropLeft > 0 {
			l.dropLeft--
		}
	}
	l.natt = append(l.natt, natt)
	if len(b) > 18 && b[18] == wire1.ExchInfo {
		l.infos++
	}
	l.last = append(l.last[:0], b...)
	l.mu.Unlock()
	if !drop && p != nil {
		p.Deliver(b, natt)
	}
	return nil
}

type v1side struct {
	s    *V1Session
	dp   *fakeDP
	link *v1link
}

// v1pair connects an initiator and a responder in memory and runs them,
// after tweak, if given, has changed the sessions.
func v1pair(t *testing.T, ci, cr Config, tweak ...func(a, b *V1Session)) (a, b v1side) {
	t.Helper()
	a.dp, b.dp = &fakeDP{}, &fakeDP{}
	a.dp.peer, b.dp.peer = b.dp, a.dp
	a.link, b.link = &v1link{}, &v1link{}
	var err error
	if a.s, err = NewV1Session(ci, a.link, a.dp); err != nil {
		t.Fatal(err)
	}
	if b.s, err = NewV1Session(cr, b.link, b.dp); err != nil {
		t.Fatal(err)
	}
	a.link.peer, b.link.peer = b.s, a.s
	for _, f := range tweak {
		f(a.s, b.s)
	}
	runAll(t, a.s, b.s)
	return a, b
}

func v1up(a, b v1side) bool { return matched(a.dp, b.dp) && matched(b.dp, a.dp) }

func TestV1EstablishSuites(t *testing.T) {
	for _, tc := range []struct{ ike, esp string }{
		{"aes256-sha256-modp2048", "aes256gcm16-modp2048"},
		{"aes128-sha1-modp1024", "aes128-sha1"},
		{"aes256-sha384-ecp384", "aes256-sha512-ecp384"},
		{"aes128-sha512-ecp256", "aes128gcm16"},
	} {
		t.Run(tc.ike+"/"+tc.esp, func(t *testing.T) {
			a, b := v1pair(t, cfg("192.0.2.1", "192.0.2.2", "k", tc.ike, tc.esp, true),
				cfg("192.0.2.2", "192.0.2.1", "k", tc.ike, tc.esp, false))
			waitFor(t, 10*time.Second, "IKEv1 Child SA up", func() bool { return v1up(a, b) })
			for _, s := range []*V1Session{a.s, b.s} {
				if st := s.Status(); st.State != "established" || st.Version != "ikev1" || st.ChildSuite == "" {
					t.Fatalf("status %+v", st)
				}
			}
			// From main mode message 5 on, everything is on port 4500.
			a.link.mu.Lock()
			natt := append([]bool(nil), a.link.natt...)
			a.link.mu.Unlock()
			if want := []bool{false, false, true, true}; len(natt) < 4 || !equalBools(natt[:4], want) {
				t.Fatalf("initiator's ports (natt) %v, want %v first", natt, want)
			}
		})
	}
}

func equalBools(a, b []bool) bool {
	return strings.Trim(strings.Join(boolsStr(a), ""), "") == strings.Join(boolsStr(b), "")
}

func boolsStr(a []bool) []string {
	var s []string
	for _, x := range a {
		if x {
			s = append(s, "1")
		} else {
			s = append(s, "0")
		}
	}
	return s
}

func TestV1WrongPSK(t *testing.T) {
	a, b := v1pair(t, cfg("192.0.2.1", "192.0.2.2", "k1", "aes256-sha256-modp2048", "aes256gcm16", true),
		cfg("192.0.2.2", "192.0.2.1", "k2", "aes256-sha256-modp2048", "aes256gcm16", false))
	waitFor(t, 5*time.Second, "responder names the PSK mismatch", func() bool {
		return strings.Contains(b.s.Status().LastError, "pre-shared key")
	})
	if v1up(a, b) || a.s.Status().State == "established" {
		t.Fatal("up with different PSKs")
	}
}

func TestV1NoProposal(t *testing.T) {
	a, b := v1pair(t, cfg("192.0.2.1", "192.0.2.2", "k", "aes256-sha256-modp2048", "aes256gcm16", true),
		cfg("192.0.2.2", "192.0.2.1", "k", "aes128-sha1-ecp256", "aes256gcm16", false))
	waitFor(t, 5*time.Second, "both name the proposal mismatch", func() bool {
		return strings.Contains(b.s.Status().LastError, "nothing in common") && strings.Contains(a.s.Status().LastError, "NO-PROPOSAL-CHOSEN")
	})
}

// TestV1Rekey: short Child SA and ISAKMP SA lifetimes; the sides rekey
// (quick mode, then a new main mode replacing the old SA) and never break
// make-before-break (fakeDP's violations).
func TestV1Rekey(t *testing.T) {
	ci := cfg("192.0.2.1", "192.0.2.2", "k", "aes256-sha256-modp2048", "aes256gcm16-modp2048", true)
	cr := cfg("192.0.2.2", "192.0.2.1", "k", "aes256-sha256-modp2048", "aes256gcm16-modp2048", false)
	ci.ChildLifetime, ci.RekeyMargin, ci.IKELifetime = 1500*time.Millisecond, time.Second, 4*time.Second
	cr.ChildLifetime, cr.RekeyMargin, cr.IKELifetime = 60*time.Second, 10*time.Second, time.Hour
	ci.DPDDelay, cr.DPDDelay = time.Hour, time.Hour
	if testing.Verbose() {
		ci.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil)).With("side", "a")
		cr.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil)).With("side", "b")
	}
	a, b := v1pair(t, ci, cr)
	waitFor(t, 10*time.Second, "two Child SA rekeys and an ISAKMP rekey", func() bool {
		return a.s.Status().ChildRekeys >= 2 && a.s.Status().IKERekeys >= 1 && v1up(a, b)
	})
	for _, d := range []*fakeDP{a.dp, b.dp} {
		d.mu.Lock()
		v := d.violations
		d.mu.Unlock()
		if len(v) > 0 {
			t.Fatalf("make-before-break violated: %v", v)
		}
	}
}

// TestV1RekeyDeletesOldSALater: after its quick mode rekeys the Child
// SA, the initiator moves its outbound traffic to the new SA but tells
// the peer to delete the old one only deleteDelay later, so that packets
// sealed with the old SA just before the switch are not dropped by a
// peer that removes the SA on reading the Delete (strongSwan with IKEv1
// does). With a delay longer than the test the peer keeps its old
// inbound SA and no informational exchange is sent at all; with a short
// one the Delete follows and the peer removes it.
func TestV1RekeyDeletesOldSALater(t *testing.T) {
	for _, delay := range []time.Duration{time.Hour, 100 * time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) {
			ci := cfg("192.0.2.1", "192.0.2.2", "k", "aes256-sha256-modp2048", "aes256gcm16", true)
			cr := cfg("192.0.2.2", "192.0.2.1", "k", "aes256-sha256-modp2048", "aes256gcm16", false)
			ci.ChildLifetime, ci.RekeyMargin, ci.IKELifetime = 20*time.Second, 18*time.Second, time.Hour // rekey at 2 s
			cr.ChildLifetime, cr.IKELifetime = time.Hour, time.Hour
			ci.DPDDelay, cr.DPDDelay = time.Hour, time.Hour
			a, b := v1pair(t, ci, cr, func(a, _ *V1Session) { a.deleteDelay = delay })
			waitFor(t, 10*time.Second, "up", func() bool { return v1up(a, b) })
			a.dp.mu.Lock()
			old := a.dp.out.OutSPI // b's inbound SPI of the first Child SA
			a.dp.mu.Unlock()
			waitFor(t, 10*time.Second, "the Child SA rekeyed", func() bool { return a.s.Status().ChildRekeys >= 1 && v1up(a, b) })
			a.link.mu.Lock()
			infos := a.link.infos
			a.link.mu.Unlock()
			b.dp.mu.Lock()
			_, kept := b.dp.in[old]
			b.dp.mu.Unlock()
			if delay == time.Hour {
				if infos != 0 || !kept {
					t.Fatalf("the initiator sent %d informational exchanges and the peer kept the old inbound SA %08x: %v; want none sent, kept", infos, old, kept)
				}
				return
			}
			waitFor(t, 10*time.Second, "the peer removed the old inbound SA on the later Delete", func() bool {
				b.dp.mu.Lock()
				defer b.dp.mu.Unlock()
				_, kept := b.dp.in[old]
				return !kept
			})
		})
	}
}

// TestV1ISAKMPRekeyRetried: the peer does not answer the first try of
// the initiator's ISAKMP SA rekey (a new main mode); once that main mode
// has timed out the rekey is tried again, and completes while the old
// ISAKMP SA still lives (it used to wait for the old SA to expire).
func TestV1ISAKMPRekeyRetried(t *testing.T) {
	ci := cfg("192.0.2.1", "192.0.2.2", "k", "aes256-sha256-modp2048", "aes256gcm16", true)
	cr := cfg("192.0.2.2", "192.0.2.1", "k", "aes256-sha256-modp2048", "aes256gcm16", false)
	ci.IKELifetime, ci.ChildLifetime, ci.RekeyMargin = 20*time.Second, time.Hour, 17*time.Second // rekey at 3 s
	cr.IKELifetime, cr.ChildLifetime = time.Hour, time.Hour
	ci.DPDDelay, cr.DPDDelay = time.Hour, time.Hour
	ci.DPDTimeout = time.Second // how long a main mode is retransmitted
	a, b := v1pair(t, ci, cr)
	waitFor(t, 10*time.Second, "up", func() bool { return v1up(a, b) })
	b.link.setDrop(wire1.ExchMain, -1)
	waitFor(t, 10*time.Second, "the first try's main mode timed out", func() bool {
		return strings.Contains(a.s.Status().LastError, "main mode timed out")
	})
	b.link.setDrop(0, 0)
	waitFor(t, 10*time.Second, "the ISAKMP SA rekeyed by a later try", func() bool { return a.s.Status().IKERekeys >= 1 && v1up(a, b) })
}

// TestV1QuickModeRetransmitted: the first message of the initiator's
// Child SA rekey (quick mode) is lost; it is sent again a second later
// and the rekey completes (the retransmission used to wait for whatever
// else woke the session, here the Child SA's expiry).
func TestV1QuickModeRetransmitted(t *testing.T) {
	ci := cfg("192.0.2.1", "192.0.2.2", "k", "aes256-sha256-modp2048", "aes256gcm16", true)
	cr := cfg("192.0.2.2", "192.0.2.1", "k", "aes256-sha256-modp2048", "aes256gcm16", false)
	ci.ChildLifetime, ci.RekeyMargin, ci.IKELifetime = 20*time.Second, 17*time.Second, time.Hour // rekey at 3 s
	cr.ChildLifetime, cr.IKELifetime = time.Hour, time.Hour
	ci.DPDDelay, cr.DPDDelay = time.Hour, time.Hour
	a, b := v1pair(t, ci, cr)
	waitFor(t, 10*time.Second, "up", func() bool { return v1up(a, b) })
	a.link.setDrop(wire1.ExchQuick, 1)
	waitFor(t, 10*time.Second, "the Child SA rekeyed", func() bool { return a.s.Status().ChildRekeys >= 1 && v1up(a, b) })
}

// TestV1DPD: the responder stops answering; the initiator's R-U-THEREs go
// unanswered, it declares the peer dead and re-establishes once the peer
// answers again.
func TestV1DPD(t *testing.T) {
	a, b := v1pair(t, cfg("192.0.2.1", "192.0.2.2", "k", "aes256-sha256-modp2048", "aes256gcm16", true),
		cfg("192.0.2.2", "192.0.2.1", "k", "aes256-sha256-modp2048", "aes256gcm16", false))
	waitFor(t, 10*time.Second, "up", func() bool { return v1up(a, b) })
	b.link.mu.Lock()
	b.link.drop = true
	b.link.mu.Unlock()
	waitFor(t, 10*time.Second, "dead peer named", func() bool { return strings.Contains(a.s.Status().LastError, "dead") })
	b.link.mu.Lock()
	b.link.drop = false
	b.link.mu.Unlock()
	waitFor(t, 15*time.Second, "up again", func() bool { return a.s.Status().Establishments >= 2 && v1up(a, b) })
}

// TestV1EncryptedEmptyChainIsDropped: IKEv1's encryption has no integrity
// check, so anyone who saw an IKE SA's cookies can send a message that
// decrypts to garbage. One whose header names no first payload decrypts to
// an empty chain; the session drops it instead of reading its first payload.
func TestV1EncryptedEmptyChainIsDropped(t *testing.T) {
	a, b := v1pair(t, cfg("192.0.2.1", "192.0.2.2", "k", "aes256-sha256-modp2048", "aes256gcm16", true),
		cfg("192.0.2.2", "192.0.2.1", "k", "aes256-sha256-modp2048", "aes256gcm16", false))
	waitFor(t, 10*time.Second, "up", func() bool { return v1up(a, b) })
	a.link.mu.Lock()
	forged := append([]byte(nil), a.link.last...)
	a.link.mu.Unlock()
	if len(forged) <= wire1.HeaderLen || forged[19]&wire1.FlagEncrypted == 0 {
		t.Fatalf("the initiator's last message is not encrypted: % x", forged)
	}
	forged[16] = byte(wire1.PayloadNone)
	forged[18] = wire1.ExchInfo
	binary.BigEndian.PutUint32(forged[20:], 0x5eed1e55)
	malformed := func() uint64 { return b.s.Status().Dropped[DropMalformed.String()] }
	before := malformed()
	b.s.Deliver(forged, true)
	waitFor(t, 5*time.Second, "the forged message dropped as malformed", func() bool { return malformed() > before })
	if !v1up(a, b) {
		t.Error("the tunnel went down")
	}
}
