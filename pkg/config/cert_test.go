package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/certauth/certtest"
)

// certYAML is goodYAML with tunnel 1 authenticating with certificates.
func certYAML(t *testing.T, ipsec string) string {
	t.Helper()
	y := strings.Replace(goodYAML, "psk_file: /KEYFILE", ipsec, 1)
	key := writeKey(t, "c2VjcmV0LWtleS1tYXRlcmlhbC1mb3ItYS10ZXN0ISE=")
	return strings.ReplaceAll(y, "/KEYFILE", key)
}

func loadYAML(t *testing.T, y string) error {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cgwd.yaml")
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	return err
}

// check-config names the field of every certificate problem it can find
// offline; auth is inferred from cert_file and remote_id may be a DN.
func TestLoadChecksCertificates(t *testing.T) {
	dir := t.TempDir()
	root := certtest.Issue(t, certtest.Spec{CN: "Lab Root", CA: true, ECDSA: true}, nil)
	other := certtest.Issue(t, certtest.Spec{CN: "Other Root", CA: true}, nil)
	leaf := certtest.Issue(t, certtest.Spec{CN: "cgw.lab"}, root)
	ecLeaf := certtest.Issue(t, certtest.Spec{CN: "cgw-ec.lab", ECDSA: true}, root)
	old := certtest.Issue(t, certtest.Spec{CN: "old", From: time.Now().Add(-48 * time.Hour), To: time.Now().Add(-time.Hour)}, root)
	cert, key := certtest.WriteCerts(t, dir, "c.pem", leaf), certtest.WriteKey(t, dir, "c.key", leaf)
	ca, otherCA := certtest.WriteCerts(t, dir, "ca.pem", root), certtest.WriteCerts(t, dir, "other.pem", other)
	ecKey := certtest.WriteKey(t, dir, "ec.key", ecLeaf)
	oldCert, oldKey := certtest.WriteCerts(t, dir, "old.pem", old), certtest.WriteKey(t, dir, "old.key", old)
	ipsec := func(cert, key, ca string, more ...string) string {
		s := "cert_file: " + cert + "\n          key_file: " + key + "\n          ca_file: " + ca
		for _, m := range more {
			s += "\n          " + m
		}
		return s
	}
	if err := loadYAML(t, certYAML(t, ipsec(cert, key, ca, `remote_id: "CN=aws.lab, O=cgwd lab"`))); err != nil {
		t.Fatalf("good certificate config: %v", err)
	}
	const f = "vpn[0].tunnels[1].ipsec."
	for _, tc := range []struct{ name, ipsec, want string }{
		{"unreadable cert", ipsec(dir+"/none.pem", key, ca), f + "cert_file: open " + dir + "/none.pem: no such file"},
		{"key of another cert", ipsec(cert, ecKey, ca), f + "key_file: " + ecKey + " is not the private key"},
		{"expired", ipsec(oldCert, oldKey, ca), f + `cert_file: ` + oldCert + `: certificate "CN=old,O=cgwd lab" expired at`},
		{"wrong CA", ipsec(cert, key, otherCA), f + `cert_file: ` + cert + `: certificate "CN=cgw.lab,O=cgwd lab" (issuer "CN=Lab Root,O=cgwd lab") does not verify to a CA of ca_file ("CN=Other Root,O=cgwd lab")`},
		{"no key", ipsec(cert, "", ca), f + "key_file: is required for certificate authentication"},
		{"relative ca", ipsec(cert, key, "ca.pem"), f + `ca_file: "ca.pem" must be an absolute path`},
		{"psk and cert", ipsec(cert, key, ca, "psk_file: "+key), f + "psk_file: is for pre-shared key authentication, but auth is cert"},
		{"cert with auth psk", "auth: psk\n          psk_file: " + key + "\n          ca_file: " + ca, f + "ca_file: is for certificate authentication, but auth is psk"},
		{"unknown auth", "auth: rsa\n          psk_file: " + key, f + `auth: "rsa" is not psk or cert`},
		{"own DN as remote_id", ipsec(cert, key, ca, `remote_id: "O=cgwd lab, CN=cgw.lab"`), f + "remote_id: is cert_file's own subject"},
		{"fragment size", ipsec(cert, key, ca, "ike_fragment_size: 100"), f + "ike_fragment_size: 100 is not in 576..9000"},
		{"FQDN remote_id with psk", "psk_file: " + key + "\n          remote_id: aws.lab", f + `remote_id: "aws.lab" is not an IPv4 address`},
	} {
		err := loadYAML(t, certYAML(t, tc.ipsec))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want %q, got %v", tc.name, tc.want, err)
		}
	}
}
