package config

import (
	"path/filepath"
	"time"

	"github.com/cgwd/cgwd/pkg/certauth"
)

// Authentication methods of an ipsec tunnel.
const (
	AuthPSK  = "psk"
	AuthCert = "cert"
)

// UsesCert reports whether the tunnel authenticates with certificates:
// auth: cert, or no auth and a cert_file.
func (c IPsec) UsesCert() bool {
	return c.Auth == AuthCert || (c.Auth == "" && c.CertFile != "")
}

// CertRemoteID is the identity the peer's certificate must carry (a DN,
// FQDN or IPv4 address as text), or "" when any certificate verifying to
// ca_file will do.
func (c IPsec) CertRemoteID() string {
	if !c.UsesCert() {
		return ""
	}
	return c.RemoteID.String()
}

// ipsecAuth checks the authentication fields of an ipsec section offline
// and reports whether the tunnel uses certificates.
func (v *validator) ipsecAuth(field string, c *IPsec) bool {
	switch c.Auth {
	case "", AuthPSK, AuthCert:
	default:
		v.add(field+".auth", "%q is not psk or cert", c.Auth)
		return false
	}
	certFields := []struct{ name, path string }{{"cert_file", c.CertFile}, {"key_file", c.KeyFile}, {"ca_file", c.CAFile}}
	if !c.UsesCert() {
		for _, f := range certFields {
			if f.path != "" {
				v.add(field+"."+f.name, "is for certificate authentication, but auth is psk")
			}
		}
		return false
	}
	if c.PSKFile != "" {
		v.add(field+".psk_file", "is for pre-shared key authentication, but auth is cert (cert_file is set): remove one")
	}
	for _, f := range certFields {
		switch {
		case f.path == "":
			v.add(field+"."+f.name, "is required for certificate authentication")
		case !filepath.IsAbs(f.path):
			v.add(field+"."+f.name, "%q must be an absolute path", f.path)
		}
	}
	return true
}

// certProblems loads a tunnel's certificate credentials as the daemon
// will, so that check-config names an unreadable file, a key that does not
// match the certificate, a certificate outside its validity period or a
// chain that does not verify to ca_file.
func certProblems(field string, c *IPsec) Problems {
	if !c.UsesCert() || !filepath.IsAbs(c.CertFile) || !filepath.IsAbs(c.KeyFile) || !filepath.IsAbs(c.CAFile) {
		return nil // Validate reports those
	}
	creds, err := certauth.Load(c.CertFile, c.KeyFile, c.CAFile, time.Now())
	if err != nil {
		if fe, ok := err.(*certauth.FieldError); ok {
			return Problems{{Field: field + "." + fe.Field, Msg: fe.Msg}}
		}
		return Problems{{Field: field + ".cert_file", Msg: err.Error()}}
	}
	if id := c.CertRemoteID(); id != "" && certauth.IsDN(id) && certauth.DNEqual(id, creds.Chain[0].Subject.String()) {
		return Problems{{Field: field + ".remote_id", Msg: "is cert_file's own subject: remote_id names the peer"}}
	}
	return nil
}
