// Package certauth holds a tunnel's certificate credentials for IKEv2
// certificate authentication (cert_file, key_file, ca_file, as AWS's
// private-certificate customer gateways use) and checks what a peer
// presents: its certificate chain against ca_file, the validity period and
// the identity it claims. Every error names the config field or gives both
// sides' values; none quotes the private key.
package certauth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/cgwd/cgwd/pkg/secret"
)

// Bounds on what is read from files and taken from a peer. A peer's chain
// is looked at before it is authenticated, so its length and each
// certificate's size are capped before anything is parsed.
const (
	// MaxFileSize caps cert_file and ca_file.
	MaxFileSize = 256 << 10
	// MaxPeerChain is the most certificates a peer may send (leaf and
	// intermediates); AWS Private CA chains are two or three deep.
	MaxPeerChain = 4
	// MaxCertLen caps one DER certificate from a peer.
	MaxCertLen = 8192
	// MaxRSABits caps a peer's RSA key, bounding the cost of a verification.
	MaxRSABits = 8192
)

// FieldError is a problem with one config field ("cert_file", "key_file"
// or "ca_file").
type FieldError struct{ Field, Msg string }

func (e *FieldError) Error() string { return e.Field + " " + e.Msg }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Creds are a tunnel's certificate, key and trust anchors.
type Creds struct {
	// Chain is cert_file's certificates, the leaf first.
	Chain []*x509.Certificate
	// Key is the leaf's private key (RSA or ECDSA).
	Key crypto.Signer
	// CAs are ca_file's certificates; each is a trust anchor.
	CAs   []*x509.Certificate
	roots *x509.CertPool
}

// New makes credentials of a chain (leaf first), its key and the trust
// anchors, unchecked; Load reads and checks them from files.
func New(chain []*x509.Certificate, key crypto.Signer, cas []*x509.Certificate) *Creds {
	c := &Creds{Chain: chain, Key: key, CAs: cas, roots: x509.NewCertPool()}
	for _, ca := range cas {
		c.roots.AddCert(ca)
	}
	return c
}

// Load reads and checks the credentials as of now: both certificates
// files parse, the key (a secret file: mode 0600, see pkg/secret) is RSA
// or ECDSA and matches the leaf, the leaf is valid now and its chain
// verifies to ca_file.
func Load(certFile, keyFile, caFile string, now time.Time) (*Creds, error) {
	chain, err := readCerts("cert_file", certFile)
	if err != nil {
		return nil, err
	}
	cas, err := readCerts("ca_file", caFile)
	if err != nil {
		return nil, err
	}
	key, err := readKey(keyFile)
	if err != nil {
		return nil, err
	}
	c := New(chain, key, cas)
	leaf := chain[0]
	if pub, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(key.Public()) {
		return nil, fieldErr("key_file", "%s is not the private key of cert_file's certificate %q", keyFile, leaf.Subject)
	}
	if err := validAt(leaf, now); err != nil {
		return nil, fieldErr("cert_file", "%s: %v", certFile, err)
	}
	if _, err := c.verify(leaf, chain[1:], now); err != nil {
		return nil, fieldErr("cert_file", "%s: %v", certFile, err)
	}
	return c, nil
}

// readCerts reads a PEM file of certificates (or one DER certificate).
func readCerts(field, path string) ([]*x509.Certificate, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fieldErr(field, "%v", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fieldErr(field, "%s: %v", path, err)
	}
	if len(b) > MaxFileSize {
		return nil, fieldErr(field, "%s is larger than %d bytes", path, MaxFileSize)
	}
	var out []*x509.Certificate
	rest := b
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fieldErr(field, "%s: certificate %d: %v", path, len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 && len(bytes.TrimSpace(b)) > 0 && !bytes.Contains(b, []byte("-----BEGIN")) {
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return nil, fieldErr(field, "%s is neither PEM nor a DER certificate: %v", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fieldErr(field, "%s holds no certificate", path)
	}
	return out, nil
}

// readKey reads an RSA or ECDSA private key in PEM (PKCS #8, PKCS #1 or
// SEC 1) from a secret file.
func readKey(path string) (crypto.Signer, error) {
	b, err := secret.Read("key_file", path)
	if err != nil {
		return nil, &FieldError{Field: "key_file", Msg: strings.TrimPrefix(err.Error(), "key_file ")}
	}
	defer clear(b)
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fieldErr("key_file", "%s is not a PEM private key", path)
	}
	defer clear(blk.Bytes)
	var k any
	switch blk.Type {
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	default:
		return nil, fieldErr("key_file", "%s holds a %q PEM block, not a private key", path, blk.Type)
	}
	if err != nil {
		return nil, fieldErr("key_file", "%s: cannot parse the private key", path)
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return k, nil
		}
	}
	return nil, fieldErr("key_file", "%s: only RSA and ECDSA (P-256, P-384, P-521) keys are supported", path)
}

// validAt says why c is not valid at now, or nil.
func validAt(c *x509.Certificate, now time.Time) error {
	switch {
	case now.Before(c.NotBefore):
		return fmt.Errorf("certificate %q is not valid before %s (now %s)", c.Subject, c.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case now.After(c.NotAfter):
		return fmt.Errorf("certificate %q expired at %s (now %s)", c.Subject, c.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// verify checks leaf's chain, with intermediates, to the trust anchors.
func (c *Creds) verify(leaf *x509.Certificate, inter []*x509.Certificate, now time.Time) ([][]*x509.Certificate, error) {
	pool := x509.NewCertPool()
	for _, i := range inter {
		pool.AddCert(i)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: c.roots, Intermediates: pool, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return nil, fmt.Errorf("certificate %q (issuer %q) does not verify to a CA of ca_file (%s): %w",
			leaf.Subject, leaf.Issuer, c.CASubjects(), err)
	}
	return chains, nil
}

// CASubjects lists the trust anchors' subjects, for log lines.
func (c *Creds) CASubjects() string {
	var s []string
	for _, ca := range c.CAs {
		s = append(s, fmt.Sprintf("%q", ca.Subject.String()))
	}
	return strings.Join(s, ", ")
}

// CertReqData is the body of a CERTREQ payload for X.509 signatures
// (RFC 7296 3.7): the SHA-1 hashes of each trust anchor's public key.
func (c *Creds) CertReqData() []byte {
	var b []byte
	for _, ca := range c.CAs {
		h := sha1.Sum(ca.RawSubjectPublicKeyInfo)
		b = append(b, h[:]...)
	}
	return b
}

// ErrNoCert is returned by VerifyPeer for an empty chain.
var ErrNoCert = errors.New("peer sent no certificate (CERT payload)")

// VerifyPeer parses the peer's DER certificates (leaf first), bounded by
// MaxPeerChain and MaxCertLen, and verifies them to ca_file as of now. It
// returns the leaf.
func (c *Creds) VerifyPeer(ders [][]byte, now time.Time) (*x509.Certificate, error) {
	switch {
	case len(ders) == 0:
		return nil, ErrNoCert
	case len(ders) > MaxPeerChain:
		return nil, fmt.Errorf("peer sent %d certificates; at most %d are taken", len(ders), MaxPeerChain)
	}
	certs := make([]*x509.Certificate, len(ders))
	for i, d := range ders {
		if len(d) > MaxCertLen {
			return nil, fmt.Errorf("peer's certificate %d is %d bytes; at most %d are taken", i+1, len(d), MaxCertLen)
		}
		x, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, fmt.Errorf("peer's certificate %d does not parse: %w", i+1, err)
		}
		if k, ok := x.PublicKey.(*rsa.PublicKey); ok && k.N.BitLen() > MaxRSABits {
			return nil, fmt.Errorf("peer's certificate %d has a %d-bit RSA key; at most %d bits are taken", i+1, k.N.BitLen(), MaxRSABits)
		}
		certs[i] = x
	}
	leaf := certs[0]
	if err := validAt(leaf, now); err != nil {
		return nil, fmt.Errorf("peer's %w", err)
	}
	if _, err := c.verify(leaf, certs[1:], now); err != nil {
		return nil, fmt.Errorf("peer's %w", err)
	}
	return leaf, nil
}
