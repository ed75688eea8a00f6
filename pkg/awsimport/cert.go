package awsimport

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
)

// A customer gateway created with a private certificate (CreateCustomerGateway
// with CertificateArn, the certificate from a subordinate CA of AWS Private
// CA, imported into ACM) authenticates its tunnels with certificates: AWS's
// inputs then hold no pre-shared key, and AWS's tunnel endpoints sign with
// certificates AWS issues from that CA. No input holds the certificate or
// its key: the operator exports them from ACM (aws acm export-certificate),
// and the config names where they will be.

// Default names of the certificate files, in the directory of the secrets.
const (
	DefaultCertFile = "cgw.pem" // the customer gateway's certificate, then its chain's intermediates
	DefaultKeyFile  = "cgw.key" // its private key, mode 0600
	DefaultCAFile   = "ca.pem"  // the CA certificates AWS's endpoint certificates chain to
)

// CertPaths returns the cert_file, key_file and ca_file a certificate
// tunnel's config names: o's, or the default names in dir.
func (o Options) CertPaths(dir string) (cert, key, ca string) {
	pick := func(p, name string) string {
		if p != "" {
			return p
		}
		return filepath.Join(dir, name)
	}
	return pick(o.CertFile, DefaultCertFile), pick(o.KeyFile, DefaultKeyFile), pick(o.CAFile, DefaultCAFile)
}

// checkCertPaths refuses relative certificate paths, as cgwd's config does.
func (o Options) checkCertPaths() error {
	for _, f := range []struct{ flag, p string }{{"cert file", o.CertFile}, {"key file", o.KeyFile}, {"CA file", o.CAFile}} {
		if f.p != "" && !filepath.IsAbs(f.p) {
			return fmt.Errorf("%s %q is not absolute", f.flag, f.p)
		}
	}
	return nil
}

// renderCertHeader writes, once per config, how to get the files a
// certificate connection needs.
func renderCertHeader(w func(string, ...any), cert, key, ca string) {
	w("# Certificate authentication: AWS gave no pre-shared key, so the customer gateway has a private\n")
	w("# certificate (its CertificateArn, from AWS Private CA). Export it from ACM before starting cgwd:\n")
	w("#   aws acm export-certificate --certificate-arn <the customer gateway's CertificateArn> --passphrase file://pass\n")
	w("# %s: Certificate, then CertificateChain's intermediates (PEM)\n", cert)
	w("# %s: PrivateKey decrypted (openssl pkey -in enc.key -out %s), mode 0600\n", key, key)
	w("# %s: the CA certificates AWS's tunnel endpoint certificates chain to (AWS issues them from your\n", ca)
	w("# private CA: CertificateChain's root, and its subordinate CA if the chain leaves it out)\n")
}

// renderCertTunnel writes a certificate tunnel's authentication keys.
func renderCertTunnel(w func(string, ...any), t *Tunnel, cert, key, ca string) {
	w("          auth: cert\n")
	w("          cert_file: %s\n", quote(cert))
	w("          key_file: %s\n", quote(key))
	w("          ca_file: %s\n", quote(ca))
	w("          # local_id: cgwd identifies itself by its certificate's subject DN\n")
	w("          # remote_id: unset, any certificate that verifies to ca_file is accepted; set AWS's endpoint\n")
	if t.EndpointCertARN != "" {
		w("          # certificate's subject DN to pin it (aws acm describe-certificate --certificate-arn %s)\n", safe(t.EndpointCertARN))
	} else {
		w("          # certificate's subject DN to pin it (its ARN is the VPN connection's VgwTelemetry CertificateArn)\n")
	}
}

// certARN matches an ACM certificate ARN.
var certARN = regexp.MustCompile(`^arn:aws[a-z-]*:acm:[a-z0-9-]{1,32}:[0-9]{12}:certificate/[A-Za-z0-9_-]{1,128}$`)

// setEndpointCert records the endpoint certificate ARN of the tunnel whose
// AWS address is addr (where and field name it in the input). An entry for
// no tunnel of the connection is ignored: telemetry says nothing cgwd needs.
func setEndpointCert(c *Connection, where, field, addr, arn string) error {
	if arn == "" {
		return nil
	}
	if len(arn) > 256 || !certARN.MatchString(arn) {
		return fieldErr(where, field, "%s is not an ACM certificate ARN", safeAny(arn))
	}
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return nil
	}
	for i := range c.Tunnels {
		if c.Tunnels[i].AWSOutside == a {
			c.Tunnels[i].EndpointCertARN = arn
		}
	}
	return nil
}

// cliTelemetry is one entry of the AWS CLI's VgwTelemetry.
type cliTelemetry struct {
	Outside        string `json:"OutsideIpAddress"`
	CertificateArn string `json:"CertificateArn"`
}

// applyTelemetry records the endpoint certificates a telemetry list names
// (list and field: the input's names, for errors).
func applyTelemetry(c *Connection, list, field string, ts []cliTelemetry) error {
	if len(ts) > maxListed {
		return fmt.Errorf("%s lists %d tunnels; a VPN connection has 2", list, len(ts))
	}
	for i, t := range ts {
		if err := setEndpointCert(c, fmt.Sprintf("%s[%d]", list, i), field, t.Outside, t.CertificateArn); err != nil {
			return err
		}
	}
	return nil
}

// tfTelemetry reads Terraform's vgw_telemetry (the resource's attribute,
// when the whole aws_vpn_connection is an output) for endpoint certificates.
func tfTelemetry(m map[string]json.RawMessage, c *Connection) error {
	var ts []struct {
		Outside        string `json:"outside_ip_address"`
		CertificateArn string `json:"certificate_arn"`
	}
	if ok, err := tfList(m, "vgw_telemetry", &ts); !ok {
		return err
	}
	cts := make([]cliTelemetry, len(ts))
	for i, t := range ts {
		cts[i] = cliTelemetry(t)
	}
	return applyTelemetry(c, "vgw_telemetry", "certificate_arn", cts)
}
