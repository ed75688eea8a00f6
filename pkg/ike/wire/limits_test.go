package wire

// The tests in this file use only what the parser had before the parsing
// limits (Parse, Marshal, Raw), so that they can be run against the old
// parser to show that they fail there.

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/cgwd/cgwd/pkg/ike/internal/allocs"
	"github.com/cgwd/cgwd/pkg/proposal"
)

// within runs f and fails t if it allocated more than AllocBudget(n).
func within(t *testing.T, what string, n int, f func()) {
	t.Helper()
	if got := allocs.Of(f); got > AllocBudget(n) {
		t.Errorf("%s of %d bytes allocated %d bytes, budget %d", what, n, got, AllocBudget(n))
	}
}

// parseWithin parses b without keys within AllocBudget.
func parseWithin(t *testing.T, b []byte) (*Message, error) {
	t.Helper()
	var m *Message
	var err error
	within(t, "Parse", len(b), func() { m, err = Parse(b, nil) })
	return m, err
}

// rawMsg is an unencrypted message of exchange ex (an IKE_SA_INIT request
// when ex is IKESAInit) with payloads ps; Raw payloads of any type carry
// hand-made bodies.
func rawMsg(ex uint8, ps ...Payload) []byte {
	h := Header{SPIi: 0x1122334455667788, Exchange: ex, Flags: FlagInitiator}
	if ex != IKESAInit {
		h.SPIr, h.MsgID = 0x8877665544332211, 1
	}
	b, err := (&Message{Header: h, Payloads: ps}).Marshal(nil)
	if err != nil {
		panic(err)
	}
	return b
}

// raw is a payload of type t with the given body.
func raw(t PayloadType, body ...[]byte) *Raw { return &Raw{PType: t, Body: bytes.Join(body, nil)} }

func rep(n int, p Payload) []Payload {
	ps := make([]Payload, n)
	for i := range ps {
		ps[i] = p
	}
	return ps
}

func u16(v int) []byte { return binary.BigEndian.AppendUint16(nil, uint16(v)) }

func deleteBody(proto, spiSize byte, n int, spis []byte) []byte {
	return append(append([]byte{proto, spiSize}, u16(n)...), spis...)
}

func notifyBody(proto byte, spi []byte, typ int, data []byte) []byte {
	return append(append(append([]byte{proto, byte(len(spi))}, u16(typ)...), spi...), data...)
}

// transformBody is a transform substructure; last is 0 for the last one, 3 otherwise.
func transformBody(last, typ byte, id int, attrs ...[]byte) []byte {
	a := bytes.Join(attrs, nil)
	return append(append(append([]byte{last, 0}, u16(8+len(a))...), append([]byte{typ, 0}, u16(id)...)...), a...)
}

var keyLen128 = []byte{0x80, 14, 0, 128} // TV attribute: key length 128

// aes128 is a valid transform.
func aes128(last byte) []byte {
	return transformBody(last, proposal.TransformEncr, proposal.EncrAESCBC, keyLen128)
}

// proposalBody is a proposal substructure; last is 0 for the last one, 2
// otherwise; nt is the transform count it claims.
func proposalBody(last, proto byte, spi []byte, nt int, transforms ...[]byte) []byte {
	t := bytes.Join(transforms, nil)
	b := append([]byte{last, 0}, u16(8+len(spi)+len(t))...)
	b = append(b, 1, proto, byte(len(spi)), byte(nt))
	return append(append(b, spi...), t...)
}

func tsBody(n int, selectors ...[]byte) []byte {
	return append([]byte{byte(n), 0, 0, 0}, bytes.Join(selectors, nil)...)
}

// selector is a traffic selector of type typ and length l (16 for IPv4, 40 for IPv6).
func selector(typ byte, l int) []byte {
	b := append([]byte{typ, 0}, u16(l)...)
	return append(b, make([]byte, l-4)...)
}

// deleteBomb is an IKE_SA_INIT request of n Delete payloads with SPI size 0
// and 65535 SPIs each: 8 bytes a payload, and before the parsing limits
// about 7.5 MiB of allocation each (64 of them: 540 bytes, ~490 MiB).
func deleteBomb(n int) []byte {
	return rawMsg(IKESAInit, rep(n, raw(PayloadD, deleteBody(ProtoIKE, 0, 65535, nil)))...)
}

func TestDeleteBomb(t *testing.T) {
	if b := deleteBomb(64); len(b) != 540 {
		t.Fatalf("the 64-payload delete bomb is %d bytes, want 540", len(b))
	}
	// 4 payloads, not 64: the old parser allocates ~30 MiB for these.
	b := deleteBomb(4)
	if _, err := parseWithin(t, b); err == nil {
		t.Error("Delete payloads with SPI size 0 and 65535 SPIs accepted")
	}
}

type codecCase struct {
	name string
	msg  []byte
	ok   bool // RFC 7296 allows it and it is within the limits
}

// codecCases are messages at and beyond each per-payload rule and limit.
func codecCases() []codecCase {
	d, n, sa, ts, v := PayloadD, PayloadN, PayloadSA, PayloadTSi, PayloadV
	init := func(ps ...Payload) []byte { return rawMsg(IKESAInit, ps...) }
	info := func(ps ...Payload) []byte { return rawMsg(Informational, ps...) }
	esp4 := func(k int) []byte { return bytes.Repeat([]byte{1, 2, 3, 4}, k) }
	ikeProp := func(last byte) []byte { return proposalBody(last, ProtoIKE, nil, 1, aes128(0)) }
	props := func(k int) []byte {
		var b []byte
		for i := range k {
			last := byte(2)
			if i == k-1 {
				last = 0
			}
			b = append(b, ikeProp(last)...)
		}
		return b
	}
	transforms := func(k int) [][]byte {
		ts := make([][]byte, k)
		for i := range ts {
			ts[i] = aes128(3)
		}
		ts[k-1] = aes128(0)
		return ts
	}
	attrs := func(k int) []byte {
		return transformBody(0, proposal.TransformEncr, proposal.EncrAESCBC, bytes.Repeat(keyLen128, k))
	}
	v4s := func(k int) [][]byte { return rep2(k, selector(7, 16)) }
	bigV := func(total int) []byte { return init(raw(v, make([]byte, total-HeaderLen-4))) }
	var bigBadLen []byte // a payload that overruns the message by one byte
	{
		b := init(raw(v, make([]byte, 8)))
		binary.BigEndian.PutUint16(b[HeaderLen+2:], 4+9)
		bigBadLen = b
	}
	return []codecCase{
		{"delete IKE", info(raw(d, deleteBody(ProtoIKE, 0, 0, nil))), true},
		{"delete IKE with SPI count", info(raw(d, deleteBody(ProtoIKE, 0, 3, nil))), false},
		{"delete IKE with an 8-byte SPI", info(raw(d, deleteBody(ProtoIKE, 8, 1, make([]byte, 8)))), false},
		{"delete ESP", info(raw(d, deleteBody(ProtoESP, 4, 2, esp4(2)))), true},
		{"delete AH", info(raw(d, deleteBody(2, 4, 1, esp4(1)))), true},
		{"delete ESP without SPIs", info(raw(d, deleteBody(ProtoESP, 4, 0, nil))), true},
		{"delete ESP, SPI size 0", info(raw(d, deleteBody(ProtoESP, 0, 65535, nil))), false},
		{"delete ESP, SPI size 3", info(raw(d, deleteBody(ProtoESP, 3, 1, []byte{1, 2, 3}))), false},
		{"delete ESP, SPI size 8", info(raw(d, deleteBody(ProtoESP, 8, 1, make([]byte, 8)))), false},
		{"delete ESP, count beyond the data", info(raw(d, deleteBody(ProtoESP, 4, 3, esp4(2)))), false},
		{"delete ESP, count short of the data", info(raw(d, deleteBody(ProtoESP, 4, 1, esp4(2)))), false},
		{"delete of protocol 7", info(raw(d, deleteBody(7, 4, 1, esp4(1)))), false},
		{"delete of protocol 0", info(raw(d, deleteBody(0, 0, 0, nil))), false},
		{"256 SPIs in one message", info(rep(4, raw(d, deleteBody(ProtoESP, 4, 64, esp4(64))))...), true},
		{"257 SPIs in one message", info(append(rep(4, raw(d, deleteBody(ProtoESP, 4, 64, esp4(64)))),
			raw(d, deleteBody(ProtoESP, 4, 1, esp4(1))))...), false},
		{"notify without SPI", info(raw(n, notifyBody(0, nil, NInitialContact, nil))), true},
		{"notify, ESP SPI", info(raw(n, notifyBody(ProtoESP, esp4(1), NRekeySA, nil))), true},
		{"notify, IKE SPI", info(raw(n, notifyBody(ProtoIKE, make([]byte, 8), NInvalidIKESPI, nil))), true},
		{"notify, 2-byte SPI", info(raw(n, notifyBody(ProtoESP, []byte{1, 2}, NRekeySA, nil))), false},
		{"notify, 8-byte ESP SPI", info(raw(n, notifyBody(ProtoESP, make([]byte, 8), NRekeySA, nil))), false},
		{"notify, 4-byte IKE SPI", info(raw(n, notifyBody(ProtoIKE, esp4(1), NRekeySA, nil))), false},
		{"notify, 4-byte SPI without protocol", info(raw(n, notifyBody(0, esp4(1), NRekeySA, nil))), false},
		{"notify, SPI beyond the payload", info(raw(n, []byte{ProtoESP, 4, 0x40, 9, 1})), false},
		{"cookie of 64 bytes", init(raw(n, notifyBody(0, nil, NCookie, make([]byte, 64)))), true},
		{"cookie of 65 bytes", init(raw(n, notifyBody(0, nil, NCookie, make([]byte, 65)))), false},
		{"empty cookie", init(raw(n, notifyBody(0, nil, NCookie, nil))), false},
		{"KE of 1024 bytes", init(raw(PayloadKE, []byte{0, 18, 0, 0}, make([]byte, 1024))), true},
		{"KE of 1025 bytes", init(raw(PayloadKE, []byte{0, 18, 0, 0}, make([]byte, 1025))), false},
		{"KE of 3 bytes", init(raw(PayloadKE, []byte{0, 18, 0})), false},
		{"nonce of 15 bytes", init(raw(PayloadNonce, make([]byte, 15))), false},
		{"nonce of 257 bytes", init(raw(PayloadNonce, make([]byte, 257))), false},
		{"ID of 3 bytes", info(raw(PayloadIDi, []byte{1, 0, 0})), false},
		{"AUTH of 3 bytes", info(raw(PayloadAuth, []byte{2, 0, 0})), false},
		{"SA", init(raw(sa, ikeProp(0))), true},
		{"SA, 64 proposals", init(raw(sa, props(64))), true},
		{"SA, 65 proposals", init(raw(sa, props(65))), false},
		{"SA, 256 proposals in 4 payloads", init(rep(4, raw(sa, props(64)))...), true},
		{"SA, 257 proposals in 5 payloads", init(append(rep(4, raw(sa, props(64))), raw(sa, props(1)))...), false},
		{"SA, empty", init(raw(sa)), false},
		{"SA, 'more' on the last proposal", init(raw(sa, ikeProp(2))), false},
		{"SA, data after the last proposal", init(raw(sa, ikeProp(0), []byte{0})), false},
		{"SA, Last Substruc 1", init(raw(sa, ikeProp(1))), false},
		{"SA, ESP proposal with SPI", init(raw(sa, proposalBody(0, ProtoESP, esp4(1), 1, aes128(0)))), true},
		{"SA, ESP proposal without SPI", init(raw(sa, proposalBody(0, ProtoESP, nil, 1, aes128(0)))), false},
		{"SA, IKE proposal with 8-byte SPI", init(raw(sa, proposalBody(0, ProtoIKE, make([]byte, 8), 1, aes128(0)))), true},
		{"SA, IKE proposal with 4-byte SPI", init(raw(sa, proposalBody(0, ProtoIKE, esp4(1), 1, aes128(0)))), false},
		{"SA, proposal of protocol 9", init(raw(sa, proposalBody(0, 9, nil, 1, aes128(0)))), false},
		{"SA, 64 transforms", init(raw(sa, proposalBody(0, ProtoIKE, nil, 64, transforms(64)...))), true},
		{"SA, 65 transforms", init(raw(sa, proposalBody(0, ProtoIKE, nil, 65, transforms(65)...))), false},
		{"SA, count of 2 for 1 transform", init(raw(sa, proposalBody(0, ProtoIKE, nil, 2, aes128(0)))), false},
		{"SA, count of 1 for 2 transforms", init(raw(sa, proposalBody(0, ProtoIKE, nil, 1, aes128(0), aes128(0)))), false},
		{"SA, 'more' on the last transform", init(raw(sa, proposalBody(0, ProtoIKE, nil, 1, aes128(3)))), false},
		{"SA, 16 attributes", init(raw(sa, proposalBody(0, ProtoIKE, nil, 1, attrs(16)))), true},
		{"SA, 17 attributes", init(raw(sa, proposalBody(0, ProtoIKE, nil, 1, attrs(17)))), false},
		{"SA, TLV attribute beyond the transform", init(raw(sa, proposalBody(0, ProtoIKE, nil, 1,
			transformBody(0, proposal.TransformEncr, proposal.EncrAESCBC, []byte{0, 1, 0, 9, 1, 2})))), false},
		{"TS, 32 selectors", info(raw(ts, tsBody(32, v4s(32)...))), true},
		{"TS, 33 selectors", info(raw(ts, tsBody(33, v4s(33)...))), false},
		{"TS, 256 selectors in 8 payloads", info(rep(8, raw(ts, tsBody(32, v4s(32)...)))...), true},
		{"TS, IPv6 selector", info(raw(ts, tsBody(2, selector(8, 40), selector(7, 16)))), true},
		{"TS, count beyond the selectors", info(raw(ts, tsBody(2, selector(7, 16)))), false},
		{"TS, count short of the selectors", info(raw(ts, tsBody(1, v4s(2)...))), false},
		{"TS, IPv4 selector of 20 bytes", info(raw(ts, tsBody(1, selector(7, 20)))), false},
		{"TS, IPv6 selector of 16 bytes", info(raw(ts, tsBody(1, selector(8, 16)))), false},
		{"64 payloads", info(rep(64, raw(v))...), true},
		{"65 payloads", info(rep(65, raw(v))...), false},
		{"data after the last payload", fixLen(append(info(raw(v, []byte("x"))), 0)), false},
		{"payload beyond the message", bigBadLen, false},
		{"message of 65535 bytes", bigV(65535), true},
		{"message of 65536 bytes", bigV(65536), false},
		{"message of 65540 bytes", bigV(65540), false},
	}
}

func rep2(k int, b []byte) [][]byte {
	r := make([][]byte, k)
	for i := range r {
		r[i] = b
	}
	return r
}

// fixLen makes the header length of a message that tests grew or shrank
// match again.
func fixLen(b []byte) []byte {
	binary.BigEndian.PutUint32(b[24:], uint32(len(b)))
	return b
}

func TestPayloadRules(t *testing.T) {
	for _, c := range codecCases() {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseWithin(t, c.msg)
			if c.ok && err != nil {
				t.Errorf("rejected: %v", err)
			}
			if !c.ok && err == nil {
				t.Error("accepted")
			}
		})
	}
}
