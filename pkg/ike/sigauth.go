package ike

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"github.com/cgwd/cgwd/pkg/ike/wire"
)

// Signature AUTH payloads (RFC 7296 2.15, RFC 7427, RFC 4754): what is
// signed is the same octets a PSK AUTH covers; the methods are RFC 7427's
// digital signature when the peer announced a hash we share, else the
// classic RSA (SHA-1) or ECDSA (hash by curve) method.

// sigOctets is RFC 7296 2.15's signed octets: the IKE_SA_INIT message of
// the signer, the other side's nonce and prf(SK_p, ID body).
func sigOctets(p prf, initMsg, peerNonce, skP, idBody []byte) []byte {
	return slices.Concat(initMsg, peerNonce, p.sum(skP, idBody))
}

// sigHashes are the RFC 7427 hashes cgwd verifies and signs with.
var sigHashes = []uint16{wire.HashSHA256, wire.HashSHA384, wire.HashSHA512}

func hashOf(n uint16) crypto.Hash {
	switch n {
	case wire.HashSHA256:
		return crypto.SHA256
	case wire.HashSHA384:
		return crypto.SHA384
	case wire.HashSHA512:
		return crypto.SHA512
	}
	return 0
}

// sigHashNotify is the SIGNATURE_HASH_ALGORITHMS notify cgwd sends.
func sigHashNotify() *wire.Notify {
	var b []byte
	for _, h := range sigHashes {
		b = binary.BigEndian.AppendUint16(b, h)
	}
	return &wire.Notify{NotifyType: wire.NSignatureHashAlgorithms, Data: b}
}

// peerSigHashes reads the hashes the peer's IKE_SA_INIT message announced.
func peerSigHashes(m *wire.Message) []uint16 {
	n := m.Notify(wire.NSignatureHashAlgorithms)
	if n == nil {
		return nil
	}
	var out []uint16
	for i := 0; i+2 <= len(n.Data) && len(out) < 16; i += 2 {
		out = append(out, binary.BigEndian.Uint16(n.Data[i:]))
	}
	return out
}

// Object identifiers of RFC 7427's AlgorithmIdentifiers.
var (
	oidSHA256WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidSHA384WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidSHA512WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	oidECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSAWithSHA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSAWithSHA512 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
)

type sigAlg struct {
	oid  asn1.ObjectIdentifier
	rsa  bool
	hash crypto.Hash
}

var sigAlgs = []sigAlg{
	{oidSHA256WithRSA, true, crypto.SHA256}, {oidSHA384WithRSA, true, crypto.SHA384}, {oidSHA512WithRSA, true, crypto.SHA512},
	{oidECDSAWithSHA256, false, crypto.SHA256}, {oidECDSAWithSHA384, false, crypto.SHA384}, {oidECDSAWithSHA512, false, crypto.SHA512},
}

type algorithmIdentifier struct {
	Algorithm  asn1.ObjectIdentifier
	Parameters asn1.RawValue `asn1:"optional"`
}

// der is the AlgorithmIdentifier's encoding: RSA's with NULL parameters,
// ECDSA's without (RFC 7427 appendix A).
func (a sigAlg) der() []byte {
	ai := algorithmIdentifier{Algorithm: a.oid}
	if a.rsa {
		ai.Parameters = asn1.NullRawValue
	}
	b, _ := asn1.Marshal(ai)
	return b
}

// curveHash is the hash that goes with an ECDSA curve, and the classic
// AUTH method of that pair.
func curveHash(c elliptic.Curve) (crypto.Hash, uint8) {
	switch c {
	case elliptic.P384():
		return crypto.SHA384, wire.AuthECDSA384
	case elliptic.P521():
		return crypto.SHA512, wire.AuthECDSA521
	}
	return crypto.SHA256, wire.AuthECDSA256
}

// signAuth makes our AUTH payload over octets with key: RFC 7427 when
// the peer announced a hash we can use, else the classic method.
func signAuth(key crypto.Signer, peerHashes []uint16, octets []byte) (*wire.Auth, error) {
	var want crypto.Hash
	var classic uint8
	ec, isEC := key.Public().(*ecdsa.PublicKey)
	if isEC {
		want, classic = curveHash(ec.Curve)
	} else {
		want, classic = crypto.SHA256, wire.AuthRSA
	}
	peerHas := func(h crypto.Hash) bool {
		return slices.ContainsFunc(peerHashes, func(n uint16) bool { return hashOf(n) == h })
	}
	if !peerHas(want) && !isEC {
		for _, h := range []crypto.Hash{crypto.SHA384, crypto.SHA512} {
			if peerHas(h) {
				want = h
				break
			}
		}
	}
	if !peerHas(want) {
		// The classic methods: RSA with SHA-1, ECDSA with r||s.
		if !isEC {
			want = crypto.SHA1
		}
		sig, err := rawSign(key, want, octets, !isEC)
		if err != nil {
			return nil, err
		}
		return &wire.Auth{Method: classic, Data: sig}, nil
	}
	i := slices.IndexFunc(sigAlgs, func(a sigAlg) bool { return a.rsa == !isEC && a.hash == want })
	alg := sigAlgs[i].der()
	h := want.New()
	h.Write(octets)
	sig, err := key.Sign(rand.Reader, h.Sum(nil), want)
	if err != nil {
		return nil, err
	}
	return &wire.Auth{Method: wire.AuthDigSig, Data: slices.Concat([]byte{byte(len(alg))}, alg, sig)}, nil
}

// rawSign signs octets for a classic method: PKCS #1 v1.5 for RSA, the
// fixed-size r||s of RFC 4754 for ECDSA.
func rawSign(key crypto.Signer, hash crypto.Hash, octets []byte, isRSA bool) ([]byte, error) {
	return signDigest(key, digest(hash, octets), hash, isRSA)
}

// signDigest signs the digest d, made with hash (0: d is signed as it
// is, as IKEv1 signs its HASH_I and HASH_R), in PKCS #1 v1.5 for RSA and
// in the fixed-size r||s of RFC 4754 for ECDSA.
func signDigest(key crypto.Signer, d []byte, hash crypto.Hash, isRSA bool) ([]byte, error) {
	sig, err := key.Sign(rand.Reader, d, hash)
	if err != nil || isRSA {
		return sig, err
	}
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(sig, &rs); err != nil {
		return nil, err
	}
	size := (key.Public().(*ecdsa.PublicKey).Curve.Params().BitSize + 7) / 8
	out := make([]byte, 2*size)
	rs.R.FillBytes(out[:size])
	rs.S.FillBytes(out[size:])
	return out, nil
}

// verifyRS checks an RFC 4754 r||s signature over the digest d.
func verifyRS(pub *ecdsa.PublicKey, d, sig []byte) error {
	size := (pub.Curve.Params().BitSize + 7) / 8
	if len(sig) != 2*size {
		return errBadSignature
	}
	r, s := new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])
	if !ecdsa.Verify(pub, d, r, s) {
		return errBadSignature
	}
	return nil
}

// errBadSignature: the AUTH payload does not verify with the key of the
// peer's certificate.
var errBadSignature = errors.New("signature does not verify with the peer's certificate")

// verifyAuth checks the peer's signature AUTH over octets with the public
// key of its certificate leaf.
func verifyAuth(leaf *x509.Certificate, a *wire.Auth, octets []byte) error {
	switch pub := leaf.PublicKey.(type) {
	case *rsa.PublicKey:
		switch a.Method {
		case wire.AuthRSA:
			return rsaVerify(pub, crypto.SHA1, octets, a.Data)
		case wire.AuthDigSig:
			alg, sig, err := splitDigSig(a.Data)
			if err != nil {
				return err
			}
			if !alg.rsa {
				return fmt.Errorf("peer signed with ECDSA (%v) but its certificate has an RSA key", alg.oid)
			}
			return rsaVerify(pub, alg.hash, octets, sig)
		}
	case *ecdsa.PublicKey:
		hash, classic := curveHash(pub.Curve)
		switch a.Method {
		case classic:
			return verifyRS(pub, digest(hash, octets), a.Data)
		case wire.AuthDigSig:
			alg, sig, err := splitDigSig(a.Data)
			if err != nil {
				return err
			}
			if alg.rsa {
				return fmt.Errorf("peer signed with RSA (%v) but its certificate has an ECDSA key", alg.oid)
			}
			if !ecdsa.VerifyASN1(pub, digest(alg.hash, octets), sig) {
				return errBadSignature
			}
			return nil
		}
	default:
		return fmt.Errorf("peer's certificate has a %T key; cgwd verifies RSA and ECDSA", leaf.PublicKey)
	}
	return fmt.Errorf("AUTH method %d does not fit the peer's %s certificate key (cgwd takes 1, 9, 10, 11 and 14)",
		a.Method, x509.PublicKeyAlgorithm(leaf.PublicKeyAlgorithm))
}

func digest(h crypto.Hash, b []byte) []byte {
	d := h.New()
	d.Write(b)
	return d.Sum(nil)
}

func rsaVerify(pub *rsa.PublicKey, h crypto.Hash, octets, sig []byte) error {
	if rsa.VerifyPKCS1v15(pub, h, digest(h, octets), sig) != nil {
		return errBadSignature
	}
	return nil
}

// splitDigSig splits an RFC 7427 AUTH body into its algorithm and
// signature.
func splitDigSig(b []byte) (sigAlg, []byte, error) {
	if len(b) < 1 || len(b) < 1+int(b[0]) {
		return sigAlg{}, nil, errors.New("digital signature AUTH shorter than its AlgorithmIdentifier")
	}
	var ai algorithmIdentifier
	if rest, err := asn1.Unmarshal(b[1:1+int(b[0])], &ai); err != nil || len(rest) != 0 {
		return sigAlg{}, nil, errors.New("digital signature AUTH with a malformed AlgorithmIdentifier")
	}
	i := slices.IndexFunc(sigAlgs, func(a sigAlg) bool { return a.oid.Equal(ai.Algorithm) })
	if i < 0 {
		return sigAlg{}, nil, fmt.Errorf("digital signature algorithm %v is not one cgwd verifies (RSA PKCS #1 v1.5 or ECDSA with SHA-256/384/512)", ai.Algorithm)
	}
	return sigAlgs[i], b[1+int(b[0]):], nil
}
