package wire1

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

	"github.com/cgwd/cgwd/pkg/ike/internal/allocs"
)

// sample are payload chains as cgwd's IKEv1 exchanges send them.
func sample() [][]Payload {
	phase1 := &SA{DOI: DOIIPsec, Situation: SitIdentityOnly, Proposals: []Proposal{{Num: 1, Protocol: ProtoISAKMP,
		Transforms: []Transform{
			{Num: 1, ID: 1, Attrs: []Attr{{Type: 1, Basic: true, Value: 7}, {Type: 14, Basic: true, Value: 256},
				{Type: 2, Basic: true, Value: 4}, {Type: 3, Basic: true, Value: 1}, {Type: 4, Basic: true, Value: 14},
				{Type: 11, Basic: true, Value: 1}, {Type: 12, Data: []byte{0, 0, 0x70, 0x80}}}},
			{Num: 2, ID: 1, Attrs: []Attr{{Type: 1, Basic: true, Value: 7}}},
		}}}}
	quick := &SA{DOI: DOIIPsec, Situation: SitIdentityOnly, Proposals: []Proposal{{Num: 1, Protocol: ProtoESP, SPI: []byte{1, 2, 3, 4},
		Transforms: []Transform{{Num: 1, ID: 20, Attrs: []Attr{{Type: 4, Basic: true, Value: 3}, {Type: 6, Basic: true, Value: 256}}}}}}}
	return [][]Payload{
		{phase1, &VendorID{Data: bytes.Repeat([]byte{0x4a}, 16)}},
		{&KE{Data: bytes.Repeat([]byte{9}, 256)}, &Nonce{Data: bytes.Repeat([]byte{7}, 32)}, &NATD{Data: make([]byte, 32)}, &NATD{Data: make([]byte, 32)}},
		{&ID{IDType: IDIPv4Addr, Data: []byte{198, 51, 100, 2}}, &Hash{Data: make([]byte, 32)},
			&Notify{DOI: DOIIPsec, Protocol: ProtoISAKMP, SPI: make([]byte, 16), NotifyType: NInitialContact, Data: []byte{}}},
		{&Hash{Data: make([]byte, 32)}, quick, &Nonce{Data: make([]byte, 32)},
			&ID{IDType: IDIPv4AddrSubnet, Data: make([]byte, 8)}, &ID{IDType: IDIPv4AddrSubnet, Data: make([]byte, 8)}},
		{&Hash{Data: make([]byte, 20)}, &Delete{DOI: DOIIPsec, Protocol: ProtoESP, SPIs: [][]byte{{1, 2, 3, 4}, {5, 6, 7, 8}}}},
		{&Hash{Data: make([]byte, 20)}, &Notify{DOI: DOIIPsec, Protocol: ProtoISAKMP, SPI: make([]byte, 16), NotifyType: NRUThere, Data: []byte{0, 0, 0, 1}}},
		{&KE{Data: bytes.Repeat([]byte{9}, 256)}, &Nonce{Data: bytes.Repeat([]byte{7}, 32)},
			&CertReq{CertType: CertX509Sig, CA: bytes.Repeat([]byte{0x30}, 60)}, &CertReq{CertType: CertX509Sig}},
		{&ID{IDType: IDDN, Data: bytes.Repeat([]byte{0x31}, 40)}, &Cert{Encoding: CertX509Sig, Data: bytes.Repeat([]byte{0x30}, 900)},
			&Cert{Encoding: CertX509Sig, Data: bytes.Repeat([]byte{0x30}, 800)}, &Sig{Data: make([]byte, 256)}},
		{&Raw{PType: PayloadNATOA, Body: []byte{1, 0, 0, 0, 192, 0, 2, 1}}},
	}
}

func TestRoundTrip(t *testing.T) {
	for i, ps := range sample() {
		h := Header{ICookie: 1, RCookie: 2, Exchange: ExchMain, MsgID: uint32(i)}
		b := Marshal(h, ps)
		got, first, err := ParseHeader(b)
		if err != nil || got != h {
			t.Fatalf("%d: header %v %+v", i, err, got)
		}
		c, err := ParseChain(first, b[HeaderLen:], false)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if !reflect.DeepEqual(normal(c.Payloads), normal(ps)) {
			t.Fatalf("%d: round trip differs\n%#v\n%#v", i, c.Payloads, ps)
		}
		for j, raw := range c.Raw {
			var next PayloadType
			if j+1 < len(ps) {
				next = ps[j+1].Type()
			}
			if !bytes.Equal(raw, EncodePayload(ps[j], next)) {
				t.Fatalf("%d: raw payload %d differs", i, j)
			}
		}
	}
}

// normal re-encodes ps and parses them again: nil and empty slices differ
// only in Go.
func normal(ps []Payload) []Payload {
	first, chain := EncodeChain(ps)
	c, err := ParseChain(first, chain, false)
	if err != nil {
		panic(err)
	}
	return c.Payloads
}

func TestRejects(t *testing.T) {
	good := Marshal(Header{ICookie: 1}, sample()[0])
	v2 := bytes.Clone(good)
	v2[17] = 0x20
	short := bytes.Clone(good)
	binary.BigEndian.PutUint32(short[24:], uint32(len(good)-1))
	for name, b := range map[string][]byte{"short": good[:20], "ikev2": v2, "length": short} {
		if _, _, err := ParseHeader(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A proposal whose transform count lies, a nonce of 4 bytes, bytes
	// after the chain, transforms outside an SA, a delete with no SPI.
	sa := Body(sample()[0][0])
	sa[8+7]++
	for name, c := range map[string][]byte{
		"count":    append([]byte{0, 0, 0, byte(4 + len(sa))}, sa...),
		"nonce":    EncodePayload(&Nonce{Data: []byte{1, 2, 3, 4}}, 0),
		"trailing": append(EncodePayload(&KE{Data: []byte{1}}, 0), 0),
		"outside":  EncodePayload(&Raw{PType: PayloadT, Body: []byte{1, 1, 0, 0}}, 0),
		"delete":   EncodePayload(&Raw{PType: PayloadD, Body: []byte{0, 0, 0, 1, 3, 4, 0, 0}}, 0),
		"cert":     EncodePayload(&Cert{Encoding: CertX509Sig, Data: make([]byte, maxCertLen+1)}, 0),
		"certs":    chainOf(PayloadCert, maxCerts+1, &Cert{Encoding: CertX509Sig, Data: []byte{0x30}}),
		"certreq":  EncodePayload(&CertReq{CertType: CertX509Sig, CA: make([]byte, maxCRLen+1)}, 0),
		"certreqs": chainOf(PayloadCR, maxCertReqs+1, &CertReq{CertType: CertX509Sig}),
		"sig":      EncodePayload(&Sig{}, 0),
	} {
		first := PayloadSA
		switch name {
		case "nonce":
			first = PayloadNonce
		case "trailing":
			first = PayloadKE
		case "outside":
			first = PayloadT
		case "delete":
			first = PayloadD
		case "cert", "certs":
			first = PayloadCert
		case "certreq", "certreqs":
			first = PayloadCR
		case "sig":
			first = PayloadSig
		}
		if _, err := ParseChain(first, c, false); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := ParseChain(PayloadKE, append(EncodePayload(&KE{Data: []byte{1}}, 0), 0, 0, 3), true); err != nil {
		t.Errorf("padding after a decrypted chain: %v", err)
	}
}

// TestLimits: a datagram of many tiny proposals, transforms and attributes
// is refused at maxItems, within the allocation budget.
func TestLimits(t *testing.T) {
	var ts []Transform
	for i := range 200 {
		ts = append(ts, Transform{Num: uint8(i), ID: 1, Attrs: []Attr{{Type: 1, Basic: true, Value: 7}}})
	}
	sa := &SA{DOI: 1, Situation: 1, Proposals: []Proposal{{Num: 1, Protocol: 1, Transforms: ts}}}
	first, chain := EncodeChain([]Payload{sa})
	within(t, "ParseChain", len(chain), func() {
		if _, err := ParseChain(first, chain, false); !errors.Is(err, ErrMalformed) {
			t.Errorf("400 items: %v", err)
		}
	})
}

// chainOf is a chain of n copies of p, of type t.
func chainOf(t PayloadType, n int, p Payload) []byte {
	var b []byte
	for i := range n {
		next := t
		if i == n-1 {
			next = PayloadNone
		}
		b = append(b, EncodePayload(p, next)...)
	}
	return b
}

// TestCertLimits: the largest message of certificates the codec takes, and
// one CERT payload more, stay within the allocation budget.
func TestCertLimits(t *testing.T) {
	big := &Cert{Encoding: CertX509Sig, Data: make([]byte, maxCertLen)}
	for _, n := range []int{maxCerts, maxCerts + 1} {
		chain := chainOf(PayloadCert, n, big)
		within(t, "ParseChain", len(chain), func() {
			_, err := ParseChain(PayloadCert, chain, false)
			if (err == nil) != (n == maxCerts) {
				t.Errorf("%d CERT payloads: %v", n, err)
			}
		})
	}
}

func within(t *testing.T, what string, n int, f func()) {
	t.Helper()
	if got := allocs.Of(f); got > AllocBudget(n) {
		t.Errorf("%s of %d bytes allocated %d bytes, budget %d", what, n, got, AllocBudget(n))
	}
}

// FuzzParse holds every datagram to AllocBudget, every error to
// ErrMalformed, and whatever parses to a round trip.
func FuzzParse(f *testing.F) {
	for i, ps := range sample() {
		f.Add(Marshal(Header{ICookie: 1, RCookie: uint64(i), Exchange: ExchQuick}, ps))
	}
	f.Add(make([]byte, HeaderLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c *Chain
		var err error
		within(t, "Parse", len(b), func() {
			var first PayloadType
			if _, first, err = ParseHeader(b); err == nil {
				c, err = ParseChain(first, b[HeaderLen:], false)
			}
		})
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error of another class: %v", err)
			}
			return
		}
		first, chain := EncodeChain(c.Payloads)
		got, err := ParseChain(first, chain, false)
		if err != nil || !reflect.DeepEqual(got.Payloads, c.Payloads) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzParseChain fuzzes a decrypted chain (padding allowed), a type byte first.
func FuzzParseChain(f *testing.F) {
	for _, ps := range sample() {
		first, chain := EncodeChain(ps)
		f.Add(append([]byte{byte(first)}, chain...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		var err error
		within(t, "ParseChain", len(b), func() { _, err = ParseChain(PayloadType(b[0]), b[1:], true) })
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error of another class: %v", err)
		}
	})
}
