package ike

import (
	"crypto/x509"
	"log/slog"
	"time"

	"github.com/cgwd/cgwd/pkg/certauth"
)

// checkPeerCert checks what the peer of a certificate tunnel presents, for
// both IKE versions, before its signature is looked at: its certificates
// (ders, leaf first, bounded by certauth) verify to the trust anchors of c
// now, the leaf carries the identity the peer claimed in its ID payload
// (idType and idData; IKEv1 and IKEv2 number the types alike) and, when
// remoteID is set, that one. It returns the leaf, or what to log with its
// arguments, both sides' values named.
func checkPeerCert(c *certauth.Creds, remoteID string, ders [][]byte, idType uint8, idData []byte) (*x509.Certificate, string, []any) {
	peerID := certauth.IDString(idType, idData)
	leaf, err := c.VerifyPeer(ders, time.Now())
	if err != nil {
		return nil, "peer's certificate not accepted (AUTHENTICATION_FAILED)", []any{"peer_id", peerID, "err", err, "ca_file", c.CASubjects()}
	}
	if err := certauth.BindsID(leaf, idType, idData); err != nil {
		return nil, "peer's identity is not its certificate's (AUTHENTICATION_FAILED)", []any{"err", err}
	}
	if remoteID != "" && !certauth.MatchesRemoteID(leaf, remoteID) {
		return nil, "peer's certificate is not remote_id's (AUTHENTICATION_FAILED)", []any{"peer_id", peerID,
			"peer_subject", leaf.Subject.String(), "peer_dns", leaf.DNSNames, "peer_addresses", leaf.IPAddresses, "remote_id", remoteID}
	}
	return leaf, "", nil
}

// logPeerCert logs a peer authenticated by its certificate leaf and its
// signature of method.
func logPeerCert(log *slog.Logger, peerID string, leaf *x509.Certificate, method uint8) {
	log.Info("peer authenticated by certificate", "peer_id", peerID, "peer_subject", leaf.Subject.String(),
		"issuer", leaf.Issuer.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "auth_method", method)
}
