package ike

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"runtime"
	"testing"

	"github.com/cgwd/cgwd/pkg/ike/wire"
)

// The tests in this file parse SK payloads with cgwd's own ciphers; the
// rest of the codec is tested in package wire.

// within runs f and fails t if it allocated more than wire.AllocBudget(n),
// measured with the runtime's memory statistics.
func within(t *testing.T, what string, n int, f func()) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > wire.AllocBudget(n) {
		t.Errorf("%s of %d bytes allocated %d bytes, budget %d", what, n, got, wire.AllocBudget(n))
	}
}

// wantClass fails t unless err is of exactly one of the classes wire.ErrMalformed and errICV.
func wantClass(t *testing.T, err, class error) {
	t.Helper()
	if !errors.Is(err, class) || errors.Is(err, wire.ErrMalformed) && errors.Is(err, errICV) {
		t.Fatalf("error %q: want it to be %v only", err, class)
	}
}

// testCiphers are SK ciphers under fixed keys, one AEAD and one
// encrypt-then-MAC; each seals and opens with the same keys.
func testCiphers(tb testing.TB) []*skCipher {
	var cs []*skCipher
	for _, s := range []suite{
		{encr: EncrAESGCM16, encrKeyBits: 256, prf: PRFHMACSHA256},
		{encr: EncrAESCBC, encrKeyBits: 128, prf: PRFHMACSHA256, integ: IntegHMACSHA256128},
	} {
		k, err := deriveIKEKeys(s, []byte("gir"), make([]byte, 16), make([]byte, 16), 1, 2, nil, prf{})
		if err != nil {
			tb.Fatal(err)
		}
		cs = append(cs, k.encI)
	}
	return cs
}

// sealRaw makes an INFORMATIONAL message whose SK payload holds chain,
// first payload of type first, whatever chain holds.
func sealRaw(sk *skCipher, first wire.PayloadType, chain []byte) []byte {
	return wire.SealChain(sk, wire.Header{SPIi: 1, SPIr: 2, Exchange: wire.Informational, MsgID: 1}, first, chain)
}

// deleteBomb is the chain of n Delete payloads with SPI size 0 and 65535
// SPIs each, its first payload's type first.
func deleteBomb(n int) []byte {
	ps := make([]wire.Payload, n)
	for i := range ps {
		ps[i] = &wire.Raw{PType: wire.PayloadD, Body: []byte{wire.ProtoIKE, 0, 0xff, 0xff}}
	}
	b, err := marshal(&wire.Message{Payloads: ps}, nil)
	if err != nil {
		panic(err)
	}
	return append([]byte{byte(wire.PayloadD)}, b[wire.HeaderLen:]...)
}

// skSeeds are fuzz seeds: messages of each kind cgwd sends, as datagrams
// and as a payload type byte then a chain, and the delete bomb's chain.
func skSeeds(tb testing.TB) [][]byte {
	ip, _ := ParseProposal("aes128-aes256-sha256-sha1-modp2048-ecp384", true)
	ep, _ := ParseProposal(DefaultESPProposal, false)
	ip.Num, ep.Num, ep.SPI = 1, 1, []byte{1, 2, 3, 4}
	msgs := []*wire.Message{
		{Header: wire.Header{SPIi: 0xabcdef, Exchange: wire.IKESAInit, Flags: wire.FlagInitiator}, Payloads: []wire.Payload{
			&wire.SA{Proposals: []Proposal{ip}}, &wire.KE{Group: 20, Data: make([]byte, 96)}, &wire.Nonce{Data: make([]byte, 32)},
			&wire.Notify{NotifyType: wire.NNATDetectionSourceIP, Data: make([]byte, 20)},
		}},
		{Header: wire.Header{SPIi: 1, SPIr: 2, Exchange: wire.IKEAuth, Flags: wire.FlagInitiator, MsgID: 1}, Payloads: []wire.Payload{
			idPayload(netip.MustParseAddr("198.51.100.2"), false), &wire.Auth{Method: wire.AuthPSK, Data: make([]byte, 48)},
			&wire.SA{Proposals: []Proposal{ep}}, anyTS(false), anyTS(true),
		}},
		{Header: wire.Header{SPIi: 1, SPIr: 2, Exchange: wire.Informational, Flags: wire.FlagResponse, MsgID: 3}, Payloads: []wire.Payload{
			&wire.Delete{Protocol: wire.ProtoESP, SPIs: [][]byte{{1, 2, 3, 4}, {5, 6, 7, 8}}}, &wire.Delete{Protocol: wire.ProtoIKE},
			&wire.Notify{Protocol: wire.ProtoIKE, SPI: make([]byte, 8), NotifyType: wire.NInvalidIKESPI},
		}},
	}
	out := [][]byte{deleteBomb(64)}
	for _, m := range msgs {
		b, err := marshal(m, nil)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b, append([]byte{b[16]}, b[wire.HeaderLen:]...))
	}
	return out
}

// TestSKErrorClasses checks the error classes of SK payloads: without
// keys, tampered, truncated, and verified with malformed content.
func TestSKErrorClasses(t *testing.T) {
	var ec wire.CriticalError
	for _, sk := range testCiphers(t) {
		good := sealRaw(sk, wire.PayloadN, wire.Body(&wire.Notify{NotifyType: wire.NInitialContact}))
		if _, err := parse(good, nil); !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("SK payload without keys: %v", err)
		}
		bad := append([]byte(nil), good...)
		bad[len(bad)-1] ^= 1
		_, err := parse(bad, sk)
		wantClass(t, err, errICV)
		short := append([]byte(nil), good[:wire.HeaderLen+4+8]...)
		binary.BigEndian.PutUint32(short[24:], uint32(len(short)))
		binary.BigEndian.PutUint16(short[wire.HeaderLen+2:], 4+8)
		_, err = parse(short, sk)
		wantClass(t, err, wire.ErrMalformed)
		if errors.Is(err, errInvalidSyntax) {
			t.Errorf("a truncated SK payload counts as verified: %v", err)
		}
		bomb := deleteBomb(4)
		_, err = parse(sealRaw(sk, wire.PayloadType(bomb[0]), bomb[1:]), sk)
		wantClass(t, err, wire.ErrMalformed)
		if !errors.Is(err, errInvalidSyntax) {
			t.Errorf("malformed content of a verified SK payload: %v", err)
		}
		_, err = parse(sealRaw(sk, 200, []byte{0, 0x80, 0, 4}), sk)
		if !errors.As(err, &ec) || !errors.Is(err, errInvalidSyntax) {
			t.Errorf("critical payload inside SK: %v", err)
		}
	}
}
