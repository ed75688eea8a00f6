package awsimport

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cgwd/cgwd/pkg/config"
)

// The certificate fixtures: a customer gateway created with a private
// certificate gets no pre-shared key in any input.
var certInputs = []struct {
	file, format string
	arns         bool // the input names AWS's endpoint certificates
}{
	{"vgw-cert.xml", FormatXML, false},
	{"aws-cli-cert.json", FormatAuto, true},
	{"terraform-cert.json", FormatTerraform, true},
}

const endpointARN = "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-0000-4000-8000-00000000000"

// Every input kind without a pre-shared key imports as a certificate
// connection: auth: cert with the three files, no psk_file and no
// address identities, which cgwd's parser and rules accept.
func TestCertInputsImportAsCertificateTunnels(t *testing.T) {
	for _, in := range certInputs {
		t.Run(in.file, func(t *testing.T) {
			c, err := Parse(read(t, in.file), in.format)
			if err != nil {
				t.Fatal(err)
			}
			if !c.Cert() {
				t.Fatal("not a certificate connection")
			}
			for i, tn := range c.Tunnels {
				if !tn.Cert || !tn.PSK.IsZero() {
					t.Errorf("tunnel %d: cert %v, PSK given %v", i, tn.Cert, !tn.PSK.IsZero())
				}
				want := ""
				if in.arns {
					want = endpointARN + string(rune('1'+i)) // cgw-t1 is 203.0.113.10, ...0001
				}
				if tn.EndpointCertARN != want {
					t.Errorf("tunnel %d: endpoint certificate %q, want %q", i, tn.EndpointCertARN, want)
				}
			}
			// Behind NAT too: with certificates no local_id/remote_id is written.
			o := Options{ASN: 65000, Prefixes: []netip.Prefix{netip.MustParsePrefix("10.10.0.0/16")}, LocalAddress: netip.MustParseAddr("192.0.2.7")}
			yml, err := Render(c, o)
			if err != nil {
				t.Fatal(err)
			}
			s := string(yml)
			for _, want := range []string{"auth: cert\n", `cert_file: "/etc/cgwd/cgw.pem"`, `key_file: "/etc/cgwd/cgw.key"`, `ca_file: "/etc/cgwd/ca.pem"`,
				"aws acm export-certificate", "mode 0600"} {
				if !strings.Contains(s, want) {
					t.Errorf("no %q in\n%s", want, s)
				}
			}
			for _, bad := range []string{"psk_file", "\n          local_id:", "\n          remote_id:"} {
				if strings.Contains(s, bad) {
					t.Errorf("%q in a certificate config:\n%s", bad, s)
				}
			}
			if in.arns && !strings.Contains(s, "describe-certificate --certificate-arn "+endpointARN+"1") {
				t.Errorf("endpoint certificate ARN not named:\n%s", s)
			}
			cfg, err := config.Parse(yml)
			if err != nil {
				t.Fatalf("cgwd's parser refuses it: %v\n%s", err, s)
			}
			if p := cfg.Validate(); len(p) > 0 {
				t.Fatalf("cgwd's rules refuse it: %v\n%s", p, s)
			}
			for i, tn := range cfg.VPN[0].Tunnels {
				// As AWS's tunnel options say (the CLI JSON's); the XML
				// and Terraform name no versions: cgwd's default, IKEv2.
				version := config.IKEv2
				if o := c.Tunnels[i].Options; o != nil {
					version = config.IKEVersion(settings(o)["ike_version"])
				}
				ip := tn.IPsec.WithDefaults()
				if !ip.UsesCert() || ip.PSKFile != "" || ip.CertRemoteID() != "" || ip.IKEVersion != version {
					t.Errorf("%s: cert %v psk_file %q remote %q version %s", tn.Name, ip.UsesCert(), ip.PSKFile, ip.CertRemoteID(), ip.IKEVersion)
				}
			}
			if _, err := Check(c, o); err != nil {
				t.Errorf("Check: %v", err)
			}
		})
	}
}

// Flags name the certificate files; relative ones are refused as cgwd's
// config would refuse them.
func TestCertPaths(t *testing.T) {
	c, err := Parse(read(t, "vgw-cert.xml"), FormatXML)
	if err != nil {
		t.Fatal(err)
	}
	yml, err := Render(c, Options{PSKDir: "/srv/cgwd", CAFile: "/etc/pki/aws-ca.pem"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`cert_file: "/srv/cgwd/cgw.pem"`, `key_file: "/srv/cgwd/cgw.key"`, `ca_file: "/etc/pki/aws-ca.pem"`} {
		if !strings.Contains(string(yml), want) {
			t.Errorf("no %q in\n%s", want, yml)
		}
	}
	if _, err := Render(c, Options{KeyFile: "cgw.key"}); err == nil || !strings.Contains(err.Error(), `key file "cgw.key" is not absolute`) {
		t.Errorf("relative key file: %v", err)
	}
}

// WriteDir writes no PSK file for a certificate connection, and a
// certificate tunnel's IKE versions map as a PSK tunnel's do (IKEv1 signs
// main mode too).
func TestCertWriteDirAndVersions(t *testing.T) {
	c, err := Parse(read(t, "aws-cli-cert.json"), FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "out")
	written, err := WriteDir(dir, c, Options{}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(written) != 1 || filepath.Base(written[0]) != ConfigFile {
		t.Errorf("wrote %v", written)
	}
	if s := settings(c.Tunnels[0].Options); s["ike_version"] != "any" {
		t.Errorf("cert tunnel with ikev1 and ikev2: ike_version %s, want any", s["ike_version"])
	}
	// AWS narrowed to IKEv1: ike_version 1 with certificates passes cgwd's
	// own rules.
	c.Tunnels[0].Options.IKEVersions = []string{"ikev1"}
	if s := settings(c.Tunnels[0].Options); s["ike_version"] != "1" {
		t.Errorf("cert tunnel with ikev1 only: ike_version %s, want 1", s["ike_version"])
	}
	if _, err := Check(c, Options{}); err != nil {
		t.Errorf("IKEv1-only certificate tunnel refused: %v", err)
	}
}

// A certificate gateway may have no address in AWS: the XML then has none
// and outside.local is left for --local-address. A PSK gateway still needs one.
func TestCertGatewayWithoutAddress(t *testing.T) {
	noAddr := func(name string) []byte {
		s := strings.Replace(string(read(t, name)), "<ip_address>198.51.100.2</ip_address>", "<ip_address></ip_address>", 1)
		if s == string(read(t, name)) {
			t.Fatalf("%s: no customer gateway address to remove", name)
		}
		return []byte(s)
	}
	c, err := Parse(noAddr("vgw-cert.xml"), FormatXML)
	if err != nil {
		t.Fatal(err)
	}
	missing, err := Check(c, Options{Prefixes: []netip.Prefix{netip.MustParsePrefix("10.10.0.0/16")}})
	if err != nil || len(missing) != 1 || !strings.HasSuffix(missing[0].Field, ".outside.local") {
		t.Errorf("missing %v, err %v", missing, err)
	}
	if _, err := Parse(noAddr("vgw.xml"), FormatXML); err == nil || !strings.Contains(err.Error(), "customer_gateway.tunnel_outside_address: is missing") {
		t.Errorf("PSK gateway without address: %v", err)
	}
}

func TestCertBadInputs(t *testing.T) {
	for _, tc := range []struct{ file, from, to, want string }{
		// One tunnel with a key, one without: not a certificate gateway, a key is missing.
		{"terraform-cert.json", `"tunnel1_preshared_key": ""`, `"tunnel1_preshared_key": "Tunnel1.Secret_Key.made.up.AAAA"`,
			"tunnel2: tunnel2_preshared_key: is missing, while tunnel1 has one"},
		{"aws-cli-cert.json", `certificate/0a1b2c3d-0000-4000-8000-000000000002`, `certificate/../../etc`,
			`VgwTelemetry[1]: CertificateArn: "arn:aws:acm:eu-west-1:123456789012:certi..." is not an ACM certificate ARN`},
		{"terraform-cert.json", `"certificate_arn": "arn:aws:acm`, `"certificate_arn": "arn:aws:iam`, "vgw_telemetry[0]: certificate_arn:"},
	} {
		data := strings.Replace(string(read(t, tc.file)), tc.from, tc.to, 1)
		if data == string(read(t, tc.file)) {
			t.Fatalf("%s: %s not in it", tc.file, tc.from)
		}
		_, err := Parse([]byte(data), FormatAuto)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.file, err, tc.want)
		}
		if err != nil {
			noSecret(t, "error", err.Error())
		}
	}
}

// Diff names a config that authenticates otherwise than AWS does.
func TestDiffNamesAuthentication(t *testing.T) {
	dir := t.TempDir()
	load := func(file string) *config.Config {
		c, err := Parse(read(t, file), FormatAuto)
		if err != nil {
			t.Fatal(err)
		}
		yml, err := Render(c, Options{PSKDir: dir, ASN: 65000, Prefixes: []netip.Prefix{netip.MustParsePrefix("10.10.0.0/16")}})
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, file+".yaml")
		if err := os.WriteFile(p, yml, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.LoadSkipSecrets(p)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	pskCfg, certCfg := load("vgw.xml"), load("vgw-cert.xml")
	cert, err := Parse(read(t, "vgw-cert.xml"), FormatXML)
	if err != nil {
		t.Fatal(err)
	}
	psk, err := Parse(read(t, "vgw.xml"), FormatXML)
	if err != nil {
		t.Fatal(err)
	}
	if ms := Diff(certCfg, cert); len(ms) != 0 {
		t.Errorf("certificate config against its own import: %v", ms)
	}
	ms := Diff(pskCfg, cert)
	if len(ms) != 2 || ms[0].Field != "auth" || ms[0].Have != "psk" || !strings.HasPrefix(ms[0].Fix, "auth: cert") {
		t.Errorf("PSK config, AWS says certificates: %v", ms)
	}
	if ms := Diff(certCfg, psk); len(ms) != 2 || ms[1].Field != "auth" || !strings.HasPrefix(ms[1].Fix, "psk_file") {
		t.Errorf("certificate config, AWS gives PSKs: %v", ms)
	}
}
