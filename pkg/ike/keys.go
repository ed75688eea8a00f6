package ike

import (
	"encoding/binary"
	"fmt"
)

// ikeKeys are the keys of an IKE SA (RFC 7296 section 2.14).
type ikeKeys struct {
	prf                prf
	d, ai, ar, ei, er  []byte
	pi, pr             []byte
	encI, encR         *skCipher // SK payload ciphers: initiator-to-responder, back
	suite              suite
	spiI, spiR         uint64
	nonceI, nonceR     []byte
	sharedSecretLength int
}

// deriveIKEKeys computes SKEYSEED and the SK_* keys. With oldSKd set (an
// IKE SA rekey) SKEYSEED = prf(SK_d(old), g^ir | Ni | Nr), else
// prf(Ni | Nr, g^ir).
func deriveIKEKeys(s suite, gir, ni, nr []byte, spiI, spiR uint64, oldSKd []byte, oldPRF prf) (*ikeKeys, error) {
	if err := s.check(true); err != nil {
		return nil, err
	}
	p := prf{prfHash(s.prf)}
	var seed []byte
	if oldSKd != nil {
		seed = oldPRF.sum(oldSKd, gir, ni, nr)
	} else {
		seed = p.sum(append(append([]byte(nil), ni...), nr...), gir)
	}
	var spis [16]byte
	binary.BigEndian.PutUint64(spis[:], spiI)
	binary.BigEndian.PutUint64(spis[8:], spiR)
	S := append(append(append([]byte(nil), ni...), nr...), spis[:]...)
	ps, il, el := p.size(), s.integKeyLen(), s.encKeyLen()
	km := p.plus(seed, S, 3*ps+2*il+2*el)
	k := &ikeKeys{prf: p, suite: s, spiI: spiI, spiR: spiR, nonceI: ni, nonceR: nr, sharedSecretLength: len(gir)}
	take := func(n int) []byte { b := km[:n]; km = km[n:]; return b }
	k.d, k.ai, k.ar, k.ei, k.er, k.pi, k.pr = take(ps), take(il), take(il), take(el), take(el), take(ps), take(ps)
	var err error
	if k.encI, err = newSKCipher(s.encr, k.ei, s.integ, k.ai); err != nil {
		return nil, fmt.Errorf("SK cipher: %w", err)
	}
	if k.encR, err = newSKCipher(s.encr, k.er, s.integ, k.ar); err != nil {
		return nil, fmt.Errorf("SK cipher: %w", err)
	}
	return k, nil
}

// childKeys is KEYMAT split per direction (RFC 7296 section 2.17): the
// initiator-to-responder keys come first, encryption before integrity.
func childKeys(k *ikeKeys, s suite, gir, ni, nr []byte) (iToR, rToI []byte) {
	n := s.encKeyLen() + s.integKeyLen()
	seed := append(append(append([]byte(nil), gir...), ni...), nr...)
	km := k.prf.plus(k.d, seed, 2*n)
	return km[:n], km[n:]
}

// pskAuth computes the AUTH payload for a pre-shared key (RFC 7296 section
// 2.15): prf(prf(PSK, "Key Pad for IKEv2"), initMsg | peerNonce | prf(SK_p, IDbody)).
func pskAuth(p prf, psk, initMsg, peerNonce, skP, idBody []byte) []byte {
	key := p.sum(psk, []byte("Key Pad for IKEv2"))
	return p.sum(key, initMsg, peerNonce, p.sum(skP, idBody))
}
