package ike

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/ike/wire"
)

// FuzzParseSK checks more than the absence of panics, as package wire's
// fuzz targets do: every input must stay within wire.AllocBudget, each
// error must be of one class (wire.ErrMalformed or errICV), and whatever
// parses must encode and parse back to the same thing. Its seeds (f.Add
// below and testdata/fuzz, written by TestWriteFuzzSeeds from a real
// exchange) run as plain tests.

// roundTrip checks that m, parsed from a datagram, encodes and parses back
// to itself.
func roundTrip(t *testing.T, m *wire.Message, sk *skCipher) {
	t.Helper()
	b, err := marshal(m, sk)
	if err != nil {
		t.Fatal(err)
	}
	got, err := parse(b, sk)
	if err != nil {
		t.Fatalf("re-encoded message does not parse: %v", err)
	}
	if got.Header != m.Header || got.Encrypted != m.Encrypted || !reflect.DeepEqual(got.Payloads, m.Payloads) {
		t.Fatalf("round trip differs:\n%#v\n%#v", got, m)
	}
}

// FuzzParseSK parses each input with keys, as a datagram (which fails the
// ICV unless it has no SK payload), and as the content of an SK payload
// that verifies: a payload type byte, then a chain. The sealed message must
// parse or fail as malformed, and fail the ICV with its last byte flipped.
func FuzzParseSK(f *testing.F) {
	ciphers := testCiphers(f)
	for _, b := range skSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, sk := range ciphers {
			var m *wire.Message
			var err error
			within(t, "parse with keys", len(b), func() { m, err = parse(b, sk) })
			if err != nil && !errors.Is(err, wire.ErrMalformed) && !errors.Is(err, errICV) || m != nil && m.Encrypted {
				t.Fatalf("datagram: %v %+v", err, m)
			}
			if len(b) == 0 || wire.HeaderLen+4+sk.sealedLen(len(b)-1) > wire.MaxMessageLen {
				continue
			}
			msg := sealRaw(sk, wire.PayloadType(b[0]), b[1:])
			within(t, "parse of a sealed message", len(msg), func() { m, err = parse(msg, sk) })
			if err != nil {
				wantClass(t, err, wire.ErrMalformed)
				if !errors.Is(err, errInvalidSyntax) {
					t.Fatalf("verified SK payload, error without errInvalidSyntax: %v", err)
				}
			} else {
				if !m.Encrypted {
					t.Fatal("sealed message parsed as unencrypted")
				}
				roundTrip(t, m, sk)
			}
			msg[len(msg)-1] ^= 1
			within(t, "parse of a tampered message", len(msg), func() { _, err = parse(msg, sk) })
			wantClass(t, err, errICV)
		}
	})
}

// recLink is a Transport that records what it sends before delivering it.
type recLink struct {
	mu   sync.Mutex
	peer *Session
	sent [][]byte
}

func (l *recLink) SendIKE(b []byte, natt bool) error {
	l.mu.Lock()
	l.sent = append(l.sent, append([]byte(nil), b...))
	p := l.peer
	l.mu.Unlock()
	p.Deliver(b, natt)
	return nil
}

// TestWriteFuzzSeeds records the messages of a real exchange (IKE_SA_INIT
// with a COOKIE round trip, IKE_AUTH, liveness checks, Child SA and IKE SA
// rekeys) as seeds for the fuzz targets that take datagrams. It only runs
// with CGWD_WRITE_FUZZ_SEEDS=1:
//
//	CGWD_WRITE_FUZZ_SEEDS=1 go test -run TestWriteFuzzSeeds ./pkg/ike/
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("CGWD_WRITE_FUZZ_SEEDS") != "1" {
		t.Skip("set CGWD_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz")
	}
	ci := cfg("198.51.100.2", "203.0.113.10", "k", DefaultIKEProposal, DefaultESPProposal, true)
	cr := cfg("203.0.113.10", "198.51.100.2", "k", "aes128-sha256-modp2048", "aes128-sha256", false)
	ci.IKEProposals = append(ci.IKEProposals, cr.IKEProposals...)
	ci.ESPProposals = append(ci.ESPProposals, cr.ESPProposals...)
	cr.CookieThreshold = -1
	ci.ChildLifetime, ci.IKELifetime, ci.RekeyMargin = 2*time.Second, 3*time.Second, time.Second
	la, lb := &recLink{}, &recLink{}
	a, err := NewSession(ci, la, &fakeDP{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSession(cr, lb, &fakeDP{})
	if err != nil {
		t.Fatal(err)
	}
	la.peer, lb.peer = b, a
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a.Run(ctx) }()
	go func() { defer wg.Done(); b.Run(ctx) }()
	waitFor(t, 20*time.Second, "an IKE SA rekey", func() bool { return a.Status().IKERekeys >= 1 && b.Status().IKERekeys >= 1 })
	cancel()
	wg.Wait()
	write := func(target string, i int, msg []byte) {
		dir := filepath.Join("testdata", "fuzz", target)
		if target != "FuzzParseSK" {
			dir = filepath.Join("wire", dir) // package wire's targets
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		seed := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", msg)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("exchange-%02d", i)), []byte(seed), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for _, l := range []*recLink{la, lb} {
		for _, msg := range l.sent {
			write("FuzzParse", n, msg)
			write("FuzzParseSK", n, msg)
			if h, _ := wire.ParseHeader(msg); h.Exchange == wire.IKESAInit && !h.IsResponse() {
				write("FuzzPeekInit", n, msg)
			}
			n++
		}
	}
	t.Logf("wrote %d messages", n)
}
