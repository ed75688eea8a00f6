package wire

import (
	"encoding/binary"
	"fmt"
)

// IKE fragmentation (RFC 7383): an encrypted message too large for the
// path travels as several messages, each with one Encrypted Fragment (SKF)
// payload that is sealed on its own. Each fragment's ICV is checked before
// anything of it is kept.

// PayloadSKF is the Encrypted Fragment payload.
const PayloadSKF PayloadType = 53

// NFragmentationSupported announces RFC 7383 support in IKE_SA_INIT.
const NFragmentationSupported = 16430

// MaxFragments is the most fragments cgwd reassembles one message from.
const MaxFragments = 32

// Fragment is one opened SKF payload.
type Fragment struct {
	Num, Total uint16
	// Next is the type of the first inner payload (fragment 1 only).
	Next PayloadType
	// Plain is the decrypted fragment of the inner payload chain.
	Plain []byte
}

// skfHead is the IKE header, the SKF payload header and its fragment
// number and count.
const skfHead = HeaderLen + 4 + 4

// ParseFragment decodes and opens b, a message whose only payload is an
// SKF payload. It fails on anything else, a number outside 1..total, a
// total over MaxFragments, or a bad ICV.
func ParseFragment(b []byte, sk Cipher) (Fragment, error) {
	var f Fragment
	if _, err := ParseHeader(b); err != nil {
		return f, err
	}
	if PayloadType(b[16]) != PayloadSKF || len(b) < skfHead {
		return f, ParseError("not an encrypted fragment")
	}
	if int(binary.BigEndian.Uint16(b[HeaderLen+2:])) != len(b)-HeaderLen {
		return f, ParseError("encrypted fragment is not the only payload")
	}
	f.Next = PayloadType(b[HeaderLen])
	f.Num, f.Total = binary.BigEndian.Uint16(b[HeaderLen+4:]), binary.BigEndian.Uint16(b[HeaderLen+6:])
	switch {
	case f.Num == 0 || f.Num > f.Total:
		return f, ParseError("fragment number outside 1..total")
	case f.Total > MaxFragments:
		return f, ParseError("more than 32 fragments")
	case f.Num != 1 && f.Next != PayloadNone:
		return f, ParseError("next payload set on a fragment after the first")
	}
	if sk == nil {
		return f, ParseError("encrypted fragment but no keys")
	}
	plain, err := sk.Open(b, skfHead)
	if err != nil {
		return f, err
	}
	f.Plain = plain
	return f, nil
}

// ParseInner decodes a reassembled inner payload chain whose first payload
// has type next, within the parsing limits. Its errors wrap
// ErrInvalidSyntax: the fragments were verified.
func ParseInner(next PayloadType, b []byte) ([]Payload, error) {
	var q quota
	ps, err := parseChain(next, b, &q)
	if err != nil {
		return nil, fmt.Errorf("%w %w", err, ErrInvalidSyntax)
	}
	return ps, nil
}

// SealFragment makes fragment num of total of a message with header h,
// holding plain (part of the inner chain whose first payload has type
// first, named in fragment 1 only).
func SealFragment(sk Cipher, h Header, first PayloadType, num, total uint16, plain []byte) []byte {
	if num != 1 {
		first = PayloadNone
	}
	n := 8 + sk.SealedLen(len(plain))
	head := AppendHeader(nil, h, PayloadSKF, HeaderLen+n)
	head = append(head, byte(first), 0)
	head = be16(head, uint16(n))
	head = be16(head, num)
	head = be16(head, total)
	return sk.Seal(head, plain)
}

// Fragments seals payloads ps as the encrypted content of a message with
// header h: one datagram when it fits in maxLen bytes, else RFC 7383
// fragments of at most maxLen bytes each. It returns nil when that would
// take more than MaxFragments fragments.
func Fragments(sk Cipher, h Header, ps []Payload, maxLen int) [][]byte {
	first, chain := encodeChain(ps)
	if HeaderLen+4+sk.SealedLen(len(chain)) <= maxLen {
		return [][]byte{SealChain(sk, h, first, chain)}
	}
	room := maxLen - skfHead // for the SKF payload's IV, content, padding and ICV
	n := room - sk.SealedLen(0)
	for n > 0 && sk.SealedLen(n) > room {
		n--
	}
	if n <= 0 || (len(chain)+n-1)/n > MaxFragments {
		return nil
	}
	total := uint16((len(chain) + n - 1) / n)
	out := make([][]byte, 0, total)
	for i := uint16(0); i < total; i++ {
		part := chain[int(i)*n : min(int(i+1)*n, len(chain))]
		out = append(out, SealFragment(sk, h, first, i+1, total, part))
	}
	return out
}
