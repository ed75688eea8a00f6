package ike

import (
	"encoding/binary"
	"errors"
)

// initPeek holds slices into the datagram; it allocates nothing.
type initPeek struct {
	cookie  []byte
	keGroup uint16
	ke      []byte
	nonce   []byte
	hasSA   bool
}

// peekInit reads what the responder checks before it keeps any state for
// an IKE_SA_INIT request: the COOKIE, KE and nonce, and whether an SA
// payload is there. It walks the outer payload chain (at most 64 payloads)
// without allocating; the full parse comes only after the cookie check.
func peekInit(b []byte) (initPeek, error) {
	var pk initPeek
	if _, err := ParseHeader(b); err != nil {
		return pk, err
	}
	next, off := PayloadType(b[16]), headerLen
	for n := 0; next != PayloadNone; n++ {
		if n >= 64 || len(b)-off < 4 {
			return pk, errors.New("bad payload chain")
		}
		cur := next
		next = PayloadType(b[off])
		plen := int(binary.BigEndian.Uint16(b[off+2:]))
		if plen < 4 || off+plen > len(b) {
			return pk, errors.New("bad payload length")
		}
		body := b[off+4 : off+plen]
		switch cur {
		case PayloadSK:
			return pk, errors.New("SK in IKE_SA_INIT")
		case PayloadSA:
			pk.hasSA = true
		case PayloadKE:
			if len(body) < 4 {
				return pk, errors.New("short KE")
			}
			pk.keGroup, pk.ke = binary.BigEndian.Uint16(body), body[4:]
		case PayloadNonce:
			pk.nonce = body
		case PayloadN:
			if len(body) >= 4 && binary.BigEndian.Uint16(body[2:]) == NCookie && int(body[1]) <= len(body)-4 {
				pk.cookie = body[4+int(body[1]):]
			}
		}
		off += plen
	}
	return pk, nil
}
