package ike

import (
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"sync"
)

// ErrDHPublicValue says a peer's KE payload does not hold a valid public
// value of its group: the wrong length, 0, 1, p-1 or more (MODP), a value
// outside the prime-order subgroup (RFC 5114 groups 22-24), or a point
// not on the curve (ECP). Such a value could leak bits of our private
// exponent or force a predictable shared secret, so the exchange fails.
var ErrDHPublicValue = errors.New("invalid Diffie-Hellman public value")

// dhKey is one side's ephemeral Diffie-Hellman key.
type dhKey interface {
	public() []byte
	shared(peer []byte) ([]byte, error)
}

// newDH makes an ephemeral key for an IKE DH group.
func newDH(group uint16) (dhKey, error) {
	switch group {
	case 19:
		return newECDH(ecdh.P256())
	case 20:
		return newECDH(ecdh.P384())
	case 21:
		return newECDH(ecdh.P521())
	}
	m, ok := modpParams()[group]
	if !ok {
		return nil, fmt.Errorf("DH group %d not supported", group)
	}
	// The private exponent x is in [2, n-1]: n is the order q of g's
	// subgroup for the RFC 5114 groups, 2^exponentBits for a safe prime.
	n := m.q
	if n == nil {
		n = new(big.Int).Lsh(big.NewInt(1), uint(exponentBits[group]))
	}
	x, err := rand.Int(rand.Reader, new(big.Int).Sub(n, big.NewInt(2)))
	if err != nil {
		return nil, err
	}
	x.Add(x, big.NewInt(2))
	return &modpKey{group: group, m: m, x: x}, nil
}

// exponentBits is the private exponent size of each safe-prime group: the
// larger size RFC 3526 section 8 asks for (twice its higher strength
// estimate), and for group 2, which it does not list, twice the 80 bits NIST
// SP 800-57 gives a 1024-bit modulus. A full-size exponent would add no
// strength and cost up to 16 times as much per exchange (modp8192: half a
// second of CPU), which an unauthenticated IKE_SA_INIT could make cgwd spend.
var exponentBits = map[uint16]int{2: 160, 5: 240, 14: 320, 15: 420, 16: 480, 17: 540, 18: 620}

// modp is a parsed MODP group; q is nil for a safe prime.
type modp struct{ p, g, q, pMinus1 *big.Int }

// modpParams parses modpGroups once.
var modpParams = sync.OnceValue(func() map[uint16]*modp {
	out := make(map[uint16]*modp, len(modpGroups))
	for id, h := range modpGroups {
		m := &modp{p: hexInt(h.p), g: hexInt(h.g)}
		if h.q != "" {
			m.q = hexInt(h.q)
		}
		m.pMinus1 = new(big.Int).Sub(m.p, big.NewInt(1))
		out[id] = m
	}
	return out
})

func hexInt(s string) *big.Int {
	n, ok := new(big.Int).SetString(s, 16)
	if !ok {
		panic("ike: bad MODP constant " + s) // compiled-in, checked by modp_test.go
	}
	return n
}

type modpKey struct {
	group uint16
	m     *modp
	x     *big.Int
}

func (k *modpKey) size() int { return (k.m.p.BitLen() + 7) / 8 }

func (k *modpKey) public() []byte {
	return new(big.Int).Exp(k.m.g, k.x, k.m.p).FillBytes(make([]byte, k.size()))
}

func (k *modpKey) shared(peer []byte) ([]byte, error) {
	if len(peer) != k.size() {
		return nil, fmt.Errorf("%w: group %d value is %d bytes, want %d", ErrDHPublicValue, k.group, len(peer), k.size())
	}
	y := new(big.Int).SetBytes(peer)
	if err := k.m.check(y); err != nil {
		return nil, fmt.Errorf("%w: group %d: %s", ErrDHPublicValue, k.group, err)
	}
	return new(big.Int).Exp(y, k.x, k.m.p).FillBytes(make([]byte, k.size())), nil
}

// check validates a peer's public value y: 1 < y < p-1 (which rules out
// the elements of order 1 and 2), and for a group with a prime-order
// subgroup y^q = 1 mod p, so y lies in that subgroup (RFC 2785 section
// 3.1; NIST SP 800-56A 5.6.2.3.1).
func (m *modp) check(y *big.Int) error {
	if y.Cmp(big.NewInt(1)) <= 0 || y.Cmp(m.pMinus1) >= 0 {
		return errors.New("not in 2..p-2")
	}
	if m.q != nil && new(big.Int).Exp(y, m.q, m.p).Cmp(big.NewInt(1)) != 0 {
		return errors.New("not in the prime-order subgroup")
	}
	return nil
}

type ecKey struct{ k *ecdh.PrivateKey }

func newECDH(c ecdh.Curve) (dhKey, error) {
	k, err := c.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return &ecKey{k}, nil
}

// public is x | y without the 0x04 prefix (RFC 5903 section 7).
func (e *ecKey) public() []byte { return e.k.PublicKey().Bytes()[1:] }

func (e *ecKey) shared(peer []byte) ([]byte, error) {
	pub, err := e.k.Curve().NewPublicKey(append([]byte{4}, peer...))
	if err != nil {
		return nil, fmt.Errorf("%w: ECP point: %w", ErrDHPublicValue, err)
	}
	return e.k.ECDH(pub) // the x coordinate, as RFC 5903 wants
}
