package ike

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"fmt"

	"github.com/cgwd/cgwd/pkg/certauth"
	"github.com/cgwd/cgwd/pkg/ike/wire1"
)

// IKEv1 main mode with signatures (RFC 2409 5.1; ECDSA by RFC 4754), for
// tunnels with Config.Cert. The authentication method is one attribute of
// the phase 1 transform and both ends sign with it, so it follows from our
// key: RSA signatures (3) for an RSA key, ECDSA-256, -384 or -521 (9, 10,
// 11) for an ECDSA key on that curve; a peer whose key is of another kind
// is refused with both methods named. SKEYID is prf(Ni_b | Nr_b, g^xy);
// each side signs its HASH_I or HASH_R (with ECDSA computed with the
// method's hash, not the negotiated one, as RFC 4754 and strongSwan do)
// in a SIG payload after its ID (its certificate's subject DN) and its
// chain in CERT payloads; messages 3 and 4 carry CR payloads naming the
// trust anchors' DNs, as strongSwan sends them. The peer is checked as in
// IKEv2 (checkPeerCert): chain to ca_file, validity, the identity it
// claims and remote_id, and only then its signature.

// v1AuthName names an IKEv1 authentication method cgwd speaks, or "".
func v1AuthName(m uint16) string {
	switch m {
	case v1AuthPSK:
		return "psk"
	case v1AuthRSASig:
		return "rsa-sig"
	case v1AuthECDSA256:
		return "ecdsa-256"
	case v1AuthECDSA384:
		return "ecdsa-384"
	case v1AuthECDSA521:
		return "ecdsa-521"
	}
	return ""
}

// v1ECDSAMethod is the ECDSA method of curve c, or 0.
func v1ECDSAMethod(c elliptic.Curve) uint16 {
	switch c {
	case elliptic.P256():
		return v1AuthECDSA256
	case elliptic.P384():
		return v1AuthECDSA384
	case elliptic.P521():
		return v1AuthECDSA521
	}
	return 0
}

// v1AuthMethod is the method cgwd proposes and accepts: PSK, or the
// signature method of the certificate's key.
func v1AuthMethod(cfg Config) (uint16, error) {
	if cfg.Cert == nil {
		return v1AuthPSK, nil
	}
	switch k := cfg.Cert.Key.Public().(type) {
	case *rsa.PublicKey:
		return v1AuthRSASig, nil
	case *ecdsa.PublicKey:
		if m := v1ECDSAMethod(k.Curve); m != 0 {
			return m, nil
		}
	}
	return 0, fmt.Errorf("IKEv1 signs with RSA or ECDSA (P-256, P-384, P-521) keys; key_file's is %s", keyName(cfg.Cert.Key.Public()))
}

// keyName names a public key's kind for log lines.
func keyName(pub any) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d-bit", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	}
	return fmt.Sprintf("%T", pub)
}

// v1AuthPRF is the PRF of HASH_I and HASH_R under method m: the
// negotiated p, or for ECDSA the HMAC of the method's hash.
func v1AuthPRF(m uint16, p prf) prf {
	switch m {
	case v1AuthECDSA256:
		return prf{sha256.New}
	case v1AuthECDSA384:
		return prf{sha512.New384}
	case v1AuthECDSA521:
		return prf{sha512.New}
	}
	return p
}

// v1CertReqs are the CR payloads of main mode messages 3 and 4: one per
// trust anchor, naming its DN (RFC 4945 3.2.4).
func (s *V1Session) v1CertReqs() []wire1.Payload {
	if s.cfg.Cert == nil {
		return nil
	}
	var ps []wire1.Payload
	for _, ca := range s.cfg.Cert.CAs {
		ps = append(ps, &wire1.CertReq{CertType: wire1.CertX509Sig, CA: ca.RawSubject})
	}
	return ps
}

// ourID is our phase 1 ID: local_id's address, or with certificates our
// certificate's subject DN.
func (s *V1Session) ourID() *wire1.ID {
	if s.cfg.Cert != nil {
		return &wire1.ID{IDType: wire1.IDDN, ProtoID: 17, Port: 500, Data: s.cfg.Cert.Chain[0].RawSubject}
	}
	a := s.cfg.LocalID.As4()
	return &wire1.ID{IDType: wire1.IDIPv4Addr, ProtoID: 17, Port: 500, Data: a[:]}
}

// ourAuth is what authenticates us in main mode message 5 (initiator) or
// 6: our ID and HASH, or our ID, CERT payloads (leaf first) and SIG.
func (s *V1Session) ourAuth(sa *v1SA) ([]wire1.Payload, error) {
	id := s.ourID()
	hash := sa.keys.hashR
	if sa.initiator {
		hash = sa.keys.hashI
	}
	h := hash(wire1.Body(id))
	if s.cfg.Cert == nil {
		return []wire1.Payload{id, &wire1.Hash{Data: h}}, nil
	}
	sig, err := signDigest(s.cfg.Cert.Key, h, 0, sa.suite.auth == v1AuthRSASig)
	if err != nil {
		return nil, fmt.Errorf("cannot sign with key_file's key: %w", err)
	}
	ps := []wire1.Payload{id}
	for _, x := range s.cfg.Cert.Chain {
		ps = append(ps, &wire1.Cert{Encoding: wire1.CertX509Sig, Data: x.Raw})
	}
	return append(ps, &wire1.Sig{Data: sig}), nil
}

// verifyV1Cert authenticates the peer of a certificate tunnel by its main
// mode message 5 or 6 (payloads m); want computes the HASH_I or HASH_R
// (name) it must have signed. It returns "" or what to log, with its
// arguments.
func (s *V1Session) verifyV1Cert(sa *v1SA, m mmPayloads, want func([]byte) []byte, name string) (string, []any) {
	if m.id == nil {
		return "peer's main mode message has no ID payload (AUTHENTICATION_FAILED)", []any{"auth", "cert"}
	}
	peerID := certauth.IDString(m.id.IDType, m.id.Data)
	if m.sig == nil {
		return "peer sent no SIG payload, this tunnel authenticates with certificates (AUTHENTICATION_FAILED)",
			[]any{"peer_id", peerID, "peer_sent_hash", m.hash != nil, "auth_method", v1AuthName(sa.suite.auth)}
	}
	leaf, msg, args := checkPeerCert(s.cfg.Cert, s.cfg.RemoteCertID, m.certs, m.id.IDType, m.id.Data)
	if msg != "" {
		return msg, args
	}
	if err := v1VerifySig(leaf, sa.suite.auth, want(m.idBody), m.sig); err != nil {
		s.drops.add(DropBadICV)
		return "peer's " + name + " signature does not verify (AUTHENTICATION_FAILED)", []any{"peer_id", peerID,
			"peer_subject", leaf.Subject.String(), "auth_method", v1AuthName(sa.suite.auth), "err", err}
	}
	logPeerCert(s.log, peerID, leaf, uint8(sa.suite.auth))
	return "", nil
}

// v1VerifySig checks the peer's SIG payload, made under method, over hash
// with the key of its certificate leaf.
func v1VerifySig(leaf *x509.Certificate, method uint16, hash, sig []byte) error {
	switch pub := leaf.PublicKey.(type) {
	case *rsa.PublicKey:
		if method == v1AuthRSASig {
			if rsa.VerifyPKCS1v15(pub, 0, hash, sig) != nil {
				return errBadSignature
			}
			return nil
		}
	case *ecdsa.PublicKey:
		if method == v1ECDSAMethod(pub.Curve) {
			return verifyRS(pub, hash, sig)
		}
	}
	return fmt.Errorf("the peer's certificate has a %s key, but the negotiated IKEv1 method is %s: IKEv1 has both ends sign with one method, so both keys must be of one kind",
		keyName(leaf.PublicKey), v1AuthName(method))
}
