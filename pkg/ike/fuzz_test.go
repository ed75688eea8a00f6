package ike

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"
)

// The fuzz targets check more than the absence of panics: every input must
// stay within allocBudget (limits_test.go), measured with the runtime's
// memory statistics around one call, each error must be of one class
// (errMalformed or errICV), and whatever parses must encode and parse back
// to the same thing. Their seeds (f.Add below and testdata/fuzz, written
// by TestWriteFuzzSeeds from a real exchange) run as plain tests.

// roundTrip checks that m, parsed from a datagram, encodes and parses back
// to itself.
func roundTrip(t *testing.T, m *Message, sk *skCipher) {
	t.Helper()
	b, err := m.marshal(sk)
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

// seedDatagrams are unencrypted messages: cgwd's own, the delete bomb and
// the rule cases.
func seedDatagrams() [][]byte {
	var out [][]byte
	for _, m := range sampleMessages() {
		b, _ := m.marshal(nil)
		out = append(out, b)
	}
	out = append(out, deleteBomb(64), make([]byte, headerLen))
	for _, c := range codecCases() {
		if len(c.msg) < 4096 {
			out = append(out, c.msg)
		}
	}
	return out
}

// seedChains are payload chains, a type byte then the chain: cgwd's
// messages' and the delete bomb's.
func seedChains() [][]byte {
	var out [][]byte
	for _, m := range sampleMessages() {
		first, chain := encodeChain(m.Payloads)
		out = append(out, append([]byte{byte(first)}, chain...))
	}
	return append(out, append([]byte{byte(PayloadD)}, deleteBomb(64)[headerLen:]...))
}

func FuzzParse(f *testing.F) {
	for _, b := range seedDatagrams() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m *Message
		var err error
		within(t, "parse", len(b), func() { m, err = parse(b, nil) })
		if err != nil {
			wantClass(t, err, errMalformed)
			return
		}
		roundTrip(t, m, nil)
	})
}

// FuzzParseSK parses each input with keys, as a datagram (which fails the
// ICV unless it has no SK payload), and as the content of an SK payload
// that verifies: a payload type byte, then a chain. The sealed message must
// parse or fail as malformed, and fail the ICV with its last byte flipped.
func FuzzParseSK(f *testing.F) {
	ciphers := testCiphers(f)
	for _, b := range append(seedChains(), seedDatagrams()...) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, sk := range ciphers {
			var m *Message
			var err error
			within(t, "parse with keys", len(b), func() { m, err = parse(b, sk) })
			if err != nil && !errors.Is(err, errMalformed) && !errors.Is(err, errICV) || m != nil && m.Encrypted {
				t.Fatalf("datagram: %v %+v", err, m)
			}
			if len(b) == 0 || headerLen+4+sk.sealedLen(len(b)-1) > maxMessageLen {
				continue
			}
			msg := sealRaw(sk, PayloadType(b[0]), b[1:])
			within(t, "parse of a sealed message", len(msg), func() { m, err = parse(msg, sk) })
			if err != nil {
				wantClass(t, err, errMalformed)
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

// FuzzParseChain decodes a type byte and a chain as an SK payload's
// content (parseChain and with it parsePayload).
func FuzzParseChain(f *testing.F) {
	for _, b := range seedChains() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		var ps []Payload
		var err error
		within(t, "parseChain", len(b), func() { ps, err = parseChain(PayloadType(b[0]), b[1:], &quota{}) })
		if err != nil {
			wantClass(t, err, errMalformed)
			return
		}
		first, chain := encodeChain(ps)
		got, err := parseChain(first, chain, &quota{})
		if err != nil || !reflect.DeepEqual(got, ps) {
			t.Fatalf("round trip: %v\n%#v\n%#v", err, got, ps)
		}
	})
}

// payloadBodies are the bodies of cgwd's payloads of type t.
func payloadBodies(t PayloadType) [][]byte {
	var out [][]byte
	for _, m := range sampleMessages() {
		for _, p := range m.Payloads {
			if p.Type() == t {
				out = append(out, body(p))
			}
		}
	}
	return out
}

func FuzzParseSA(f *testing.F) {
	for _, b := range payloadBodies(PayloadSA) {
		f.Add(b)
	}
	f.Add(bytes.Repeat([]byte{2, 0, 0, 8, 1, 1, 0, 0}, 65))
	f.Fuzz(func(t *testing.T, b []byte) {
		var sa *SA
		var err error
		within(t, "parseSA", len(b), func() { sa, err = parseSA(b, &quota{}) })
		if err != nil {
			wantClass(t, err, errMalformed)
			return
		}
		got, err := parseSA(body(sa), &quota{})
		if err != nil || !reflect.DeepEqual(got, sa) {
			t.Fatalf("round trip: %v\n%#v\n%#v", err, got, sa)
		}
	})
}

func FuzzParseTS(f *testing.F) {
	for _, b := range payloadBodies(PayloadTSi) {
		f.Add(b)
	}
	f.Add(tsBody(2, selector(8, 40), selector(7, 16)))
	f.Add(tsBody(255))
	f.Fuzz(func(t *testing.T, b []byte) {
		var ts *TS
		var err error
		within(t, "parseTS", len(b), func() { ts, err = parseTS(false, b, &quota{}) })
		if err != nil {
			wantClass(t, err, errMalformed)
			return
		}
		got, err := parseTS(false, body(ts), &quota{})
		if err != nil || !reflect.DeepEqual(got, ts) {
			t.Fatalf("round trip: %v\n%#v\n%#v", err, got, ts)
		}
	})
}

// FuzzPeekInit checks that peekInit never allocates and agrees with parse:
// it accepts an IKE_SA_INIT request exactly when parse does, and finds the
// same COOKIE, KE, nonce and SA.
func FuzzPeekInit(f *testing.F) {
	for _, b := range seedDatagrams() {
		if h, err := ParseHeader(b); err == nil && h.Exchange == IKESAInit && !h.IsResponse() {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p initPeek
		var err error
		if n := testing.AllocsPerRun(1, func() { p, err = peekInit(b) }); n != 0 {
			t.Fatalf("peekInit allocated %v times", n)
		}
		m, perr := parse(b, nil)
		h, _ := ParseHeader(b)
		initReq := perr == nil && h.Exchange == IKESAInit && !h.IsResponse() && h.MsgID == 0 && h.SPIr == 0
		switch {
		case err != nil && initReq:
			t.Fatalf("peekInit rejects an IKE_SA_INIT request that parse accepts: %v", err)
		case err != nil:
			wantClass(t, err, errMalformed)
			return
		case perr != nil:
			t.Fatalf("peekInit accepts a message that parse rejects: %v", perr)
		}
		ke, _ := m.Get(PayloadKE).(*KE)
		ni, _ := m.Get(PayloadNonce).(*Nonce)
		cookie := m.Notify(NCookie)
		if p.hasSA != (m.Get(PayloadSA) != nil) || (p.ke != nil) != (ke != nil) || (p.nonce != nil) != (ni != nil) ||
			(p.cookie != nil) != (cookie != nil) ||
			ke != nil && (p.keGroup != ke.Group || !bytes.Equal(p.ke, ke.Data)) ||
			ni != nil && !bytes.Equal(p.nonce, ni.Data) || cookie != nil && !bytes.Equal(p.cookie, cookie.Data) {
			t.Fatalf("peekInit %+v, parse %+v", p, m.Payloads)
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
			if h, _ := ParseHeader(msg); h.Exchange == IKESAInit && !h.IsResponse() {
				write("FuzzPeekInit", n, msg)
			}
			n++
		}
	}
	t.Logf("wrote %d messages", n)
}
