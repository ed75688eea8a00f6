package ike

import (
	"fmt"

	"github.com/cgwd/cgwd/pkg/certauth"
	"github.com/cgwd/cgwd/pkg/ike/wire"
)

// Certificate authentication in IKE_AUTH (RFC 7296 2.15 and 3.6-3.8,
// RFC 7427), for tunnels with Config.Cert: cgwd identifies itself by its
// certificate's subject DN, sends its chain in CERT payloads and a
// signature AUTH, asks for the peer's with CERTREQ, and accepts the peer
// once its chain verifies to the trust anchors, its certificate carries
// the identity it claimed (and remote_id, when configured) and its AUTH
// verifies with that certificate. Each refusal is one log line with both
// sides' values.

// certInitPayloads are what IKE_SA_INIT carries for certificate
// authentication: the SIGNATURE_HASH_ALGORITHMS notify, and, from the
// responder, CERTREQ.
func (s *Session) certInitPayloads(responder bool) []wire.Payload {
	if s.cfg.Cert == nil {
		return nil
	}
	var ps []wire.Payload
	if !s.noSigHashes {
		ps = append(ps, sigHashNotify())
	}
	if responder {
		ps = append(ps, &wire.CertReq{Encoding: wire.CertX509Sig, Data: s.cfg.Cert.CertReqData()})
	}
	return ps
}

// ourAuth is our ID and AUTH payloads for IKE_AUTH and, with
// certificates, our CERT payloads (and CERTREQ from the initiator).
func (s *Session) ourAuth(sa *ikeSA, initiator bool) (*wire.ID, *wire.Auth, []wire.Payload, error) {
	initMsg, peerNonce, skP := sa.initResp, sa.ni, sa.keys.pr
	if initiator {
		initMsg, peerNonce, skP = sa.initReq, sa.nr, sa.keys.pi
	}
	if s.cfg.Cert == nil {
		id := idPayload(s.cfg.LocalID, !initiator)
		return id, &wire.Auth{Method: wire.AuthPSK, Data: pskAuth(sa.keys.prf, s.cfg.PSK, initMsg, peerNonce, skP, wire.Body(id))}, nil, nil
	}
	c := s.cfg.Cert
	id := &wire.ID{Responder: !initiator, IDType: wire.IDDN, Data: c.Chain[0].RawSubject}
	auth, err := signAuth(c.Key, sa.peerHashes, sigOctets(sa.keys.prf, initMsg, peerNonce, skP, wire.Body(id)))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cannot sign AUTH with key_file's key: %w", err)
	}
	var extra []wire.Payload
	for _, x := range c.Chain {
		extra = append(extra, &wire.Cert{Encoding: wire.CertX509Sig, Data: x.Raw})
	}
	if initiator {
		extra = append(extra, &wire.CertReq{Encoding: wire.CertX509Sig, Data: c.CertReqData()})
	}
	return id, auth, extra, nil
}

// pskPeerUsesCert names a peer that signs its AUTH while this tunnel uses a
// pre-shared key, or returns "".
func pskPeerUsesCert(id *wire.ID, auth *wire.Auth) (string, []any) {
	if auth.Method == wire.AuthPSK {
		return "", nil
	}
	return "peer authenticates with certificates, this tunnel with a pre-shared key (AUTHENTICATION_FAILED): set cert_file, key_file and ca_file, or the peer's PSK",
		[]any{"peer_id", idString(id), "peer_auth_method", auth.Method, "auth", "psk"}
}

// verifyCertAuth authenticates the peer of a certificate tunnel by the
// IKE_AUTH message m carrying its id and auth; peerInit says the peer is
// the initiator. It returns "" or what to log, with its arguments.
func (s *Session) verifyCertAuth(sa *ikeSA, m *wire.Message, id *wire.ID, auth *wire.Auth, peerInit bool) (string, []any) {
	c := s.cfg.Cert
	peerID := idString(id)
	if auth.Method == wire.AuthPSK {
		return "peer authenticates with a pre-shared key, this tunnel with certificates (AUTHENTICATION_FAILED)",
			[]any{"peer_id", peerID, "peer_auth", "psk", "auth", "cert"}
	}
	var ders [][]byte
	for _, p := range m.Payloads {
		if x, ok := p.(*wire.Cert); ok && x.Encoding == wire.CertX509Sig && len(ders) <= certauth.MaxPeerChain {
			ders = append(ders, x.Data)
		}
	}
	leaf, msg, args := checkPeerCert(c, s.cfg.RemoteCertID, ders, id.IDType, id.Data)
	if msg != "" {
		return msg, args
	}
	subject := leaf.Subject.String()
	initMsg, peerNonce, skP := sa.initResp, sa.ni, sa.keys.pr
	if peerInit {
		initMsg, peerNonce, skP = sa.initReq, sa.nr, sa.keys.pi
	}
	if err := verifyAuth(leaf, auth, sigOctets(sa.keys.prf, initMsg, peerNonce, skP, wire.Body(id))); err != nil {
		return "peer's AUTH signature does not verify (AUTHENTICATION_FAILED)", []any{"peer_id", peerID,
			"peer_subject", subject, "auth_method", auth.Method, "err", err}
	}
	logPeerCert(s.log, peerID, leaf, auth.Method)
	return "", nil
}
