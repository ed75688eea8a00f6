// Package certtest makes small test PKIs (root, intermediate, leaves with
// RSA or ECDSA keys) for the tests of certificate authentication.
package certtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Cert is a certificate with its key.
type Cert struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// Spec describes a certificate to issue.
type Spec struct {
	CN       string
	ECDSA    bool // else RSA 2048
	CA       bool
	DNS      []string
	IPs      []net.IP
	From, To time.Time // zero: an hour ago, a day from now
}

// Issue makes a certificate for spec signed by parent (nil: self-signed).
func Issue(t testing.TB, spec Spec, parent *Cert) *Cert {
	t.Helper()
	var key crypto.Signer
	var err error
	if spec.ECDSA {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatal(err)
	}
	if spec.From.IsZero() {
		spec.From = time.Now().Add(-time.Hour)
	}
	if spec.To.IsZero() {
		spec.To = time.Now().Add(24 * time.Hour)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: spec.CN, Organization: []string{"cgwd lab"}},
		NotBefore: spec.From, NotAfter: spec.To, DNSNames: spec.DNS, IPAddresses: spec.IPs,
		BasicConstraintsValid: true, IsCA: spec.CA, KeyUsage: x509.KeyUsageDigitalSignature}
	if spec.CA {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	signer, issuer := key, tmpl
	if parent != nil {
		signer, issuer = parent.Key, parent.Cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &Cert{Cert: c, Key: key}
}

// WriteCerts writes certificates as PEM to dir/name and returns the path.
func WriteCerts(t testing.TB, dir, name string, certs ...*Cert) string {
	t.Helper()
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})...)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// WriteKey writes c's key as PKCS #8 PEM, mode 0600, and returns the path.
func WriteKey(t testing.TB, dir, name string, c *Cert) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
