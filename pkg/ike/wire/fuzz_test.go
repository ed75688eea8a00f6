package wire

import (
	"bytes"
	"reflect"
	"testing"
)

// The fuzz targets check more than the absence of panics: every input must
// stay within AllocBudget, measured with the runtime's
// memory statistics around one call, each error must be of one class
// (ErrMalformed or errICV), and whatever parses must encode and Parse back
// to the same thing. Their seeds (f.Add below and testdata/fuzz, written
// by pkg/ike's TestWriteFuzzSeeds from a real exchange) run as plain
// tests. pkg/ike's FuzzParseSK fuzzes Parse with its SK ciphers.

// roundTrip checks that m, parsed from a datagram, encodes and parses back
// to itself.
func roundTrip(t *testing.T, m *Message, sk Cipher) {
	t.Helper()
	b, err := m.Marshal(sk)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(b, sk)
	if err != nil {
		t.Fatalf("re-encoded message does not Parse: %v", err)
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
		b, _ := m.Marshal(nil)
		out = append(out, b)
	}
	out = append(out, deleteBomb(64), make([]byte, HeaderLen))
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
	return append(out, append([]byte{byte(PayloadD)}, deleteBomb(64)[HeaderLen:]...))
}

func FuzzParse(f *testing.F) {
	for _, b := range seedDatagrams() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m *Message
		var err error
		within(t, "Parse", len(b), func() { m, err = Parse(b, nil) })
		if err != nil {
			wantClass(t, err, ErrMalformed)
			return
		}
		roundTrip(t, m, nil)
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
			wantClass(t, err, ErrMalformed)
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
				out = append(out, Body(p))
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
			wantClass(t, err, ErrMalformed)
			return
		}
		got, err := parseSA(Body(sa), &quota{})
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
			wantClass(t, err, ErrMalformed)
			return
		}
		got, err := parseTS(false, Body(ts), &quota{})
		if err != nil || !reflect.DeepEqual(got, ts) {
			t.Fatalf("round trip: %v\n%#v\n%#v", err, got, ts)
		}
	})
}

// FuzzPeekInit checks that PeekInit never allocates and agrees with Parse:
// it accepts an IKE_SA_INIT request exactly when Parse does, and finds the
// same COOKIE, KE, nonce and SA.
func FuzzPeekInit(f *testing.F) {
	for _, b := range seedDatagrams() {
		if h, err := ParseHeader(b); err == nil && h.Exchange == IKESAInit && !h.IsResponse() {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p InitPeek
		var err error
		if n := testing.AllocsPerRun(1, func() { p, err = PeekInit(b) }); n != 0 {
			t.Fatalf("PeekInit allocated %v times", n)
		}
		m, perr := Parse(b, nil)
		h, _ := ParseHeader(b)
		initReq := perr == nil && h.Exchange == IKESAInit && !h.IsResponse() && h.MsgID == 0 && h.SPIr == 0
		switch {
		case err != nil && initReq:
			t.Fatalf("PeekInit rejects an IKE_SA_INIT request that Parse accepts: %v", err)
		case err != nil:
			wantClass(t, err, ErrMalformed)
			return
		case perr != nil:
			t.Fatalf("PeekInit accepts a message that Parse rejects: %v", perr)
		}
		ke, _ := m.Get(PayloadKE).(*KE)
		ni, _ := m.Get(PayloadNonce).(*Nonce)
		cookie := m.Notify(NCookie)
		if p.HasSA != (m.Get(PayloadSA) != nil) || (p.KE != nil) != (ke != nil) || (p.Nonce != nil) != (ni != nil) ||
			(p.Cookie != nil) != (cookie != nil) ||
			ke != nil && (p.KEGroup != ke.Group || !bytes.Equal(p.KE, ke.Data)) ||
			ni != nil && !bytes.Equal(p.Nonce, ni.Data) || cookie != nil && !bytes.Equal(p.Cookie, cookie.Data) {
			t.Fatalf("PeekInit %+v, Parse %+v", p, m.Payloads)
		}
	})
}
