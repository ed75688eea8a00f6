package ike

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"

	"github.com/cgwd/cgwd/pkg/proposal"
)

// Transform types and the transform IDs cgwd supports (see package proposal).
const (
	TransformEncr  = proposal.TransformEncr
	TransformPRF   = proposal.TransformPRF
	TransformInteg = proposal.TransformInteg
	TransformDH    = proposal.TransformDH
	TransformESN   = proposal.TransformESN

	EncrAESCBC   = proposal.EncrAESCBC
	EncrAESGCM16 = proposal.EncrAESGCM16

	PRFHMACSHA1   = proposal.PRFHMACSHA1
	PRFHMACSHA256 = proposal.PRFHMACSHA256
	PRFHMACSHA384 = proposal.PRFHMACSHA384
	PRFHMACSHA512 = proposal.PRFHMACSHA512

	IntegNone          = proposal.IntegNone
	IntegHMACSHA1_96   = proposal.IntegHMACSHA1_96
	IntegHMACSHA256128 = proposal.IntegHMACSHA256128
	IntegHMACSHA384192 = proposal.IntegHMACSHA384192
	IntegHMACSHA512256 = proposal.IntegHMACSHA512256

	ESNNone = proposal.ESNNone
)

func prfHash(id uint16) func() hash.Hash {
	switch id {
	case PRFHMACSHA1:
		return sha1.New
	case PRFHMACSHA256:
		return sha256.New
	case PRFHMACSHA384:
		return sha512.New384
	case PRFHMACSHA512:
		return sha512.New
	}
	return nil
}

// prf is an HMAC-based pseudo-random function.
type prf struct{ h func() hash.Hash }

func (p prf) size() int { return p.h().Size() }

func (p prf) sum(key []byte, data ...[]byte) []byte {
	m := hmac.New(p.h, key)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(nil)
}

// plus is prf+ (RFC 7296 section 2.13): T1 | T2 | ... truncated to n bytes,
// where Ti = prf(K, T(i-1) | S | i).
func (p prf) plus(key, seed []byte, n int) []byte {
	out := make([]byte, 0, n+p.size())
	var t []byte
	for i := 1; len(out) < n; i++ {
		if i > 255 {
			panic("ike: prf+ asked for too much key material") // callers ask for at most a few hundred bytes
		}
		t = p.sum(key, t, seed, []byte{byte(i)})
		out = append(out, t...)
	}
	return out[:n]
}

func integParams(id uint16) (func() hash.Hash, int, int) { // hash, key length, ICV length
	switch id {
	case IntegHMACSHA1_96:
		return sha1.New, 20, 12
	case IntegHMACSHA256128:
		return sha256.New, 32, 16
	case IntegHMACSHA384192:
		return sha512.New384, 48, 24
	case IntegHMACSHA512256:
		return sha512.New, 64, 32
	}
	return nil, 0, 0
}

// skCipher protects the SK payload of one direction.
type skCipher struct {
	gcm     cipher.AEAD
	salt    []byte
	block   cipher.Block
	integ   func() hash.Hash
	intKey  []byte
	icvLen  int
	counter uint64 // GCM explicit IV: never repeats under one key
}

func newSKCipher(encr uint16, encKey []byte, integ uint16, intKey []byte) (*skCipher, error) {
	c := &skCipher{}
	switch encr {
	case EncrAESGCM16:
		k := encKey[:len(encKey)-4]
		b, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		if c.gcm, err = cipher.NewGCM(b); err != nil {
			return nil, err
		}
		c.salt = encKey[len(k):]
		c.icvLen = 16
	case EncrAESCBC:
		b, err := aes.NewCipher(encKey)
		if err != nil {
			return nil, err
		}
		c.block = b
		h, _, icv := integParams(integ)
		if h == nil {
			return nil, fmt.Errorf("integrity transform %d not supported", integ)
		}
		c.integ, c.intKey, c.icvLen = h, intKey, icv
	default:
		return nil, fmt.Errorf("encryption transform %d not supported", encr)
	}
	return c, nil
}

func (c *skCipher) ivLen() int {
	if c.gcm != nil {
		return 8
	}
	return aes.BlockSize
}

// seal encrypts plain (the inner payloads) after head, which holds the IKE
// header and the SK payload header already filled with their final lengths
// (see sealedLen), and returns the whole message.
func (c *skCipher) seal(head, plain []byte) []byte {
	msg := append([]byte(nil), head...)
	if c.gcm != nil {
		c.counter++
		iv := make([]byte, 8)
		for i := range 8 {
			iv[i] = byte(c.counter >> (56 - 8*i))
		}
		nonce := append(append([]byte(nil), c.salt...), iv...)
		pt := append(append([]byte(nil), plain...), 0) // no padding, pad length 0
		msg = append(msg, iv...)
		return c.gcm.Seal(msg, nonce, pt, head)
	}
	iv := make([]byte, 16)
	rand.Read(iv)
	padLen := 15 - len(plain)%16
	pt := append(append([]byte(nil), plain...), make([]byte, padLen)...)
	pt = append(pt, byte(padLen))
	msg = append(msg, iv...)
	ct := make([]byte, len(pt))
	cipher.NewCBCEncrypter(c.block, iv).CryptBlocks(ct, pt)
	msg = append(msg, ct...)
	m := hmac.New(c.integ, c.intKey)
	m.Write(msg)
	return append(msg, m.Sum(nil)[:c.icvLen]...)
}

// sealedLen is the SK payload body length for plain payload bytes.
func (c *skCipher) sealedLen(plainLen int) int {
	if c.gcm != nil {
		return 8 + plainLen + 1 + 16
	}
	return 16 + (plainLen/16+1)*16 + c.icvLen
}

// errICV says an SK payload failed its integrity check: the message was not
// sent by the peer holding the IKE SA's keys, or was changed on the way.
var errICV = errors.New("integrity check of the encrypted payload failed")

// open checks and decrypts the SK body at msg[off:], where msg is the whole
// message, and returns the inner payloads. It checks the ICV before it
// looks at anything else in the body, in constant time (hmac.Equal, or the
// AEAD's own tag check): an ICV failure is errICV, any other failure wraps
// errMalformed, and errInvalidSyntax too once the ICV has passed. It
// allocates at most the plaintext and the MAC state.
func (c *skCipher) open(msg []byte, off int) ([]byte, error) {
	body := msg[off:]
	if len(body) < c.ivLen()+1+c.icvLen {
		return nil, parseErr("encrypted payload too short")
	}
	var pt []byte
	if c.gcm != nil {
		var nonce [12]byte
		copy(nonce[copy(nonce[:], c.salt):], body[:8])
		var err error
		pt, err = c.gcm.Open(nil, nonce[:], body[8:], msg[:off])
		if err != nil {
			return nil, errICV
		}
	} else {
		end := len(msg) - c.icvLen
		m := hmac.New(c.integ, c.intKey)
		m.Write(msg[:end])
		if !hmac.Equal(m.Sum(nil)[:c.icvLen], msg[end:]) {
			return nil, errICV
		}
		ct := body[16 : len(body)-c.icvLen]
		if len(ct) == 0 || len(ct)%16 != 0 {
			return nil, fmt.Errorf("%w %w", parseErr("encrypted payload is not whole blocks"), errInvalidSyntax)
		}
		pt = make([]byte, len(ct))
		cipher.NewCBCDecrypter(c.block, body[:16]).CryptBlocks(pt, ct)
	}
	if len(pt) < 1 || int(pt[len(pt)-1])+1 > len(pt) {
		return nil, fmt.Errorf("%w %w", parseErr("bad padding in encrypted payload"), errInvalidSyntax)
	}
	return pt[:len(pt)-1-int(pt[len(pt)-1])], nil
}
