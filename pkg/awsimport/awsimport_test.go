package awsimport

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/config"
	"github.com/cgwd/cgwd/pkg/ike"
	"github.com/cgwd/cgwd/pkg/secret"
)

// The made-up PSKs of the test corpus: no output or error may contain them.
var testPSKs = []string{"Tunnel1.Secret_Key.made.up.AAAA", "Tunnel2.Secret_Key.made.up.BBBB", "Tunnel1-Secret+Key/made=up", "0Tunnel1.Secret", "has space in it"}

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func noSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, p := range testPSKs {
		if strings.Contains(s, p) {
			t.Fatalf("%s contains a pre-shared key: %q", what, s)
		}
	}
	if strings.Contains(s, "Secret_Key") || strings.Contains(s, "made.up") {
		t.Fatalf("%s contains part of a pre-shared key: %q", what, s)
	}
}

func TestParseXML(t *testing.T) {
	c, err := Parse(read(t, "vgw.xml"), FormatXML)
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != "vpn-0a1b2c3d4e5f60718" || c.CustomerGatewayID != "cgw-0123456789abcdef0" || c.GatewayID != "vgw-0fedcba9876543210" || c.Type != "ipsec.1" {
		t.Errorf("ids: %+v", c)
	}
	// The file lists 203.0.113.200 first; cgw-t1 must be the lower address.
	t1, t2 := c.Tunnels[0], c.Tunnels[1]
	if t1.AWSOutside != netip.MustParseAddr("203.0.113.10") || t2.AWSOutside != netip.MustParseAddr("203.0.113.200") {
		t.Fatalf("tunnels not ordered by AWS outside address: %s, %s", t1.AWSOutside, t2.AWSOutside)
	}
	if t1.PSK.Reveal() != "Tunnel1.Secret_Key.made.up.AAAA" || t2.PSK.Reveal() != "Tunnel2.Secret_Key.made.up.BBBB" {
		t.Error("PSKs not carried with their tunnels")
	}
	if t1.Inside != netip.MustParsePrefix("169.254.10.0/30") || t1.AWSInside != netip.MustParseAddr("169.254.10.1") || t1.CGWInside != netip.MustParseAddr("169.254.10.2") {
		t.Errorf("inside: %s %s %s", t1.Inside, t1.AWSInside, t1.CGWInside)
	}
	if t1.CGWOutside != netip.MustParseAddr("198.51.100.2") || t1.CGWASN != 65000 || t1.AWSASN != 64512 || t1.HoldTime != 30 {
		t.Errorf("outside/bgp: %+v", t1)
	}
	wantIKE := IKE{Authentication: "sha1", Encryption: "aes-128-cbc", LifetimeSec: 28800, PFS: "group2", Mode: "main"}
	if t1.IKE != wantIKE {
		t.Errorf("ike = %+v, want %+v", t1.IKE, wantIKE)
	}
	wantIPsec := IPsec{Protocol: "esp", Authentication: "hmac-sha1-96", Encryption: "aes-128-cbc", LifetimeSec: 3600, PFS: "group2",
		Mode: "tunnel", TCPMSS: 1379, ClearDFBit: "true", FragBeforeEnc: "true", DPDIntervalSec: 10, DPDRetries: 3}
	if t1.IPsec != wantIPsec {
		t.Errorf("ipsec = %+v, want %+v", t1.IPsec, wantIPsec)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		noSecret(t, "formatted connection "+verb, fmt.Sprintf(verb, c))
	}
}

func TestFormatsAgree(t *testing.T) {
	ref, err := Parse(read(t, "vgw.xml"), FormatXML)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ file, format string }{
		{"vgw.xml", FormatAuto},
		{"aws-cli.json", FormatXML},
		{"aws-cli.json", FormatAuto},
		{"terraform-plain.json", FormatTerraform},
		{"terraform-output.json", FormatTerraform},
		{"terraform-nested.json", FormatTerraform},
		{"terraform-output.json", FormatAuto},
	} {
		t.Run(tc.file+"/"+tc.format, func(t *testing.T) {
			c, err := Parse(read(t, tc.file), tc.format)
			if err != nil {
				t.Fatal(err)
			}
			if c.ID != ref.ID || c.GatewayID != ref.GatewayID {
				t.Errorf("ids %q %q, want %q %q", c.ID, c.GatewayID, ref.ID, ref.GatewayID)
			}
			for i := range c.Tunnels {
				g, w := c.Tunnels[i], ref.Tunnels[i]
				if g.AWSOutside != w.AWSOutside || g.Inside != w.Inside || g.AWSInside != w.AWSInside || g.CGWInside != w.CGWInside ||
					g.AWSASN != w.AWSASN || g.HoldTime != w.HoldTime || g.PSK.Reveal() != w.PSK.Reveal() {
					t.Errorf("tunnel %d differs from the XML's", i+1)
				}
			}
		})
	}
}

func TestBadInputs(t *testing.T) {
	for _, tc := range []struct{ file, format, want string }{
		{"one-tunnel.xml", FormatXML, "vpn_connection has 1 ipsec_tunnel elements; an AWS VPN connection has exactly 2"},
		{"bad-cidr.xml", FormatXML, `ipsec_tunnel[2]: AWS inside address: "169.254.10.300" is not an IPv4 address`},
		{"not-30.xml", FormatXML, "ipsec_tunnel[1]: inside network_cidr: /29 is not /30"},
		{"wrong-pair.xml", FormatXML, "ipsec_tunnel[2]: inside addresses: AWS 169.254.10.1 and customer gateway 169.254.10.6 are not the first and second usable addresses of one /30"},
		{"reserved-inside.xml", FormatXML, "vpn[0].tunnels[0].inside: 169.254.3.0/30 is in a range AWS reserves"},
		{"psk-illegal.xml", FormatXML, "ipsec_tunnel[2]: ike.pre_shared_key: has a character AWS does not allow at position 8 (only letters, digits, '.' and '_')"},
		{"psk-short.xml", FormatXML, "ipsec_tunnel[2]: ike.pre_shared_key: is 5 characters long; AWS pre-shared keys are 8 to 64"},
		{"psk-zero.xml", FormatXML, "ipsec_tunnel[2]: ike.pre_shared_key: starts with '0'"},
		{"psk-missing.xml", FormatXML, "ipsec_tunnel[2]: ike.pre_shared_key: is missing"},
		{"missing-vgw-outside.xml", FormatXML, "ipsec_tunnel[2]: vpn_gateway.tunnel_outside_address: is missing"},
		{"same-endpoint.xml", FormatXML, "both tunnels have the same AWS outside address 203.0.113.10"},
		{"bad-asn.xml", FormatXML, `ipsec_tunnel[1]: vpn_gateway.bgp.asn: "AS64512" is not an ASN`},
		{"not-esp.xml", FormatXML, `ipsec_tunnel[1]: ipsec.protocol: "ah" is not esp`},
		{"wrong-root.xml", FormatXML, "expected element type <vpn_connection> but have <vpn_connections>"},
		{"truncated.xml", FormatXML, "XML syntax error on line 53: unexpected EOF"},
		{"billion-laughs.xml", FormatXML, "line 2: <!DOCTYPE is not allowed: cgwd refuses DTDs and entity declarations"},
		{"xxe.xml", FormatXML, "line 2: <!DOCTYPE is not allowed"},
		{"undeclared-entity.xml", FormatXML, "XML syntax error on line 94, in the pre-shared key (its text is not shown)"},
		{"latin1.xml", FormatXML, `XML: xml: encoding "ISO-8859-1" declared but Decoder.CharsetReader is nil`},
		{"terraform-missing-tunnel.json", FormatTerraform, "tunnel2: tunnel2_address: is missing"},
		{"terraform-psk-illegal.json", FormatTerraform, "tunnel2: tunnel2_preshared_key: has a character AWS does not allow at position 4"},
		{"terraform-reserved-inside.json", FormatTerraform, "vpn[0].tunnels[0].inside: 169.254.5.0/30 is in a range AWS reserves"},
		{"terraform-syntax.json", FormatTerraform, "terraform JSON: JSON ends early (truncated?)"},
		{"terraform-plain.json", "yaml", `format "yaml" is not one of auto, xml, terraform`},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var path string
			if strings.HasPrefix(tc.file, "terraform-plain") {
				path = tc.file
			} else {
				path = filepath.Join("bad", tc.file)
			}
			c, err := Parse(read(t, path), tc.format)
			if err == nil {
				// Rules shared with check-config apply after parsing.
				_, err = Check(c, Options{})
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error\n  %v\nwant it to contain\n  %s", err, tc.want)
			}
			noSecret(t, "error", err.Error())
		})
	}
}

func TestHugeInputRefused(t *testing.T) {
	good := read(t, "vgw.xml")
	pad := bytes.Repeat([]byte("<!-- padding -->\n"), MaxInputSize/16)
	huge := append(append([]byte{}, good...), pad...)
	for _, f := range []string{FormatXML, FormatTerraform, FormatAuto} {
		_, err := Parse(huge, f)
		if err == nil || !strings.Contains(err.Error(), "more than the 1048576") {
			t.Errorf("format %s: err = %v, want a size error", f, err)
		}
	}
}

func TestRenderRoundTrip(t *testing.T) {
	c, err := Parse(read(t, "vgw.xml"), FormatXML)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	o := Options{
		Prefixes:     []netip.Prefix{netip.MustParsePrefix("10.10.0.0/16"), netip.MustParsePrefix("10.20.0.0/16")},
		LocalAddress: netip.MustParseAddr("192.0.2.7"),
	}
	missing, err := Check(c, o)
	if err != nil || len(missing) != 0 {
		t.Fatalf("Check: missing %v, err %v", missing, err)
	}
	files, err := WriteDir(dir, c, o, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("wrote %v", files)
	}
	yml, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	noSecret(t, "cgwd.yaml", string(yml))
	cfg, err := config.Load(filepath.Join(dir, ConfigFile)) // with the secret-file checks
	if err != nil {
		t.Fatalf("config.Load of the imported config: %v\n%s", err, yml)
	}
	if cfg.ASN != 65000 || len(cfg.Prefixes) != 2 || cfg.Prefixes[1].String() != "10.20.0.0/16" || len(cfg.VPN) != 1 || cfg.VPN[0].Name != "vpn-0a1b2c3d4e5f60718" {
		t.Fatalf("config: %+v", cfg)
	}
	for i, tun := range cfg.VPN[0].Tunnels {
		want := c.Tunnels[i]
		if tun.Name != TunnelName(i) || tun.Kind != "ipsec" || tun.Outside.Local.String() != "192.0.2.7" || tun.Outside.Remote.String() != want.AWSOutside.String() ||
			tun.Inside.String() != want.Inside.String() || tun.MTUConfigured() || tun.BGP.PeerASN != 64512 {
			t.Errorf("tunnel %d: %+v", i, tun)
		}
		if tun.IPsec.LocalID.String() != "198.51.100.2" || tun.IPsec.RemoteID.String() != want.AWSOutside.String() {
			t.Errorf("tunnel %d behind NAT: local_id %q, remote_id %q, want AWS's customer gateway address 198.51.100.2 and %s",
				i, tun.IPsec.LocalID, tun.IPsec.RemoteID, want.AWSOutside)
		}
		if time.Duration(tun.BGP.HoldTime) != 30*time.Second {
			t.Errorf("tunnel %d: hold_time %v", i, time.Duration(tun.BGP.HoldTime))
		}
		psk, err := secret.Read("psk_file", tun.IPsec.PSKFile)
		if err != nil || string(psk) != want.PSK.Reveal() {
			t.Errorf("tunnel %d: PSK file %s does not hold its tunnel's key (err %v)", i, tun.IPsec.PSKFile, err)
		}
		fi, err := os.Stat(tun.IPsec.PSKFile)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("tunnel %d: PSK file mode %v, want 0600 (err %v)", i, fi.Mode().Perm(), err)
		}
	}
	if !strings.Contains(string(yml), "cgw-t1 is 203.0.113.10, cgw-t2 is 203.0.113.200") {
		t.Errorf("the config does not say how tunnels are ordered:\n%s", yml)
	}
	ip := cfg.VPN[0].Tunnels[0].IPsec
	if time.Duration(ip.IKELifetime) != 8*time.Hour || time.Duration(ip.ChildLifetime) != time.Hour ||
		time.Duration(ip.DPDDelay) != 10*time.Second || time.Duration(ip.DPDTimeout) != 30*time.Second {
		t.Errorf("AWS lifetimes/DPD not mapped: %+v", ip)
	}
	if len(ip.IKEProposals) != 0 || len(ip.ESPProposals) != 0 {
		t.Errorf("AWS's listed proposals were copied: %v %v", ip.IKEProposals, ip.ESPProposals)
	}
	// The commented-out proposals are valid cgwd proposals for AWS's algorithms.
	for _, tc := range []struct {
		key  string
		ike  bool
		want string
	}{{"ike_proposals", true, "aes128-sha1-modp1024"}, {"esp_proposals", false, "aes128-sha1-modp1024"}} {
		line := "# " + tc.key + ": [" + tc.want + "]"
		if !strings.Contains(string(yml), line) {
			t.Errorf("no %q in\n%s", line, yml)
		}
		if _, err := ike.ParseProposal(tc.want, tc.ike); err != nil {
			t.Errorf("suggested %s: %v", tc.key, err)
		}
	}
}

func TestStrongSwanNames(t *testing.T) {
	for _, tc := range []struct {
		enc, integ, group string
		isIKE             bool
		want              string
	}{
		{"aes-256-gcm-16", "sha2-384", "group20", true, "aes256gcm16-prfsha384-ecp384"},
		{"aes-256-gcm-16", "", "group20", false, "aes256gcm16-ecp384"},
		{"aes-128-cbc", "hmac-sha256-128", "group14", false, "aes128-sha256-modp2048"},
		{"aes-256-cbc", "sha2-512", "group21", true, "aes256-sha512-ecp521"},
	} {
		got, ok := strongSwan(tc.enc, tc.integ, tc.group, tc.isIKE)
		if !ok || got != tc.want {
			t.Errorf("%s/%s/%s: %q %v, want %q", tc.enc, tc.integ, tc.group, got, ok, tc.want)
			continue
		}
		if _, err := ike.ParseProposal(got, tc.isIKE); err != nil {
			t.Errorf("%s: %v", got, err)
		}
	}
	if _, ok := strongSwan("3des", "md5", "group1", true); ok {
		t.Error("translated unknown algorithms")
	}
}

// TestEveryAWSGroupMapsToOneCgwdSpeaks: each DH group AWS can list, as
// "groupN" or "N", becomes a proposal cgwd parses, for IKE and for ESP PFS,
// naming that very group.
func TestEveryAWSGroupMapsToOneCgwdSpeaks(t *testing.T) {
	for _, g := range awsGroups {
		for _, name := range []string{fmt.Sprintf("group%d", g), fmt.Sprint(g)} {
			for _, isIKE := range []bool{true, false} {
				got, ok := strongSwan("aes-128-cbc", "sha2-256", name, isIKE)
				if !ok {
					t.Errorf("%s (IKE %v): not translated", name, isIKE)
					continue
				}
				p, err := ike.ParseProposal(got, isIKE)
				if err != nil {
					t.Errorf("%s -> %q: %v", name, got, err)
					continue
				}
				var dh []uint16
				for _, x := range p.Transforms {
					if x.Type == ike.TransformDH {
						dh = append(dh, x.ID)
					}
				}
				if len(dh) != 1 || dh[0] != g {
					t.Errorf("%s -> %q: DH groups %v", name, got, dh)
				}
			}
		}
	}
}

func TestWriteDirRefusesOverwrite(t *testing.T) {
	c, err := Parse(read(t, "vgw.xml"), FormatXML)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	psk := PSKPath(dir, 1)
	if err := os.WriteFile(psk, []byte("keep me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = WriteDir(dir, c, Options{}, false)
	if err == nil || !strings.Contains(err.Error(), psk+" already exist(s); pass --force to overwrite") {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(psk); string(b) != "keep me\n" {
		t.Fatal("existing file changed")
	}
	if _, err := os.Stat(filepath.Join(dir, ConfigFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("cgwd.yaml written although the import was refused")
	}
	if _, err := WriteDir(dir, c, Options{}, true); err != nil {
		t.Fatalf("with force: %v", err)
	}
	b, _ := os.ReadFile(psk)
	fi, _ := os.Stat(psk)
	if string(b) != c.Tunnels[1].PSK.Reveal()+"\n" || fi.Mode().Perm() != 0o600 {
		t.Fatalf("forced overwrite: mode %v", fi.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 3 {
		t.Fatalf("%d files in the out dir, want 3 (no temporary files left)", len(ents))
	}
}

// Without the flags, exactly the facts AWS does not know are missing, and
// check-config names them.
func TestMissingFacts(t *testing.T) {
	for _, tc := range []struct {
		file, format string
		o            Options
		want         []string
	}{
		{"vgw.xml", FormatXML, Options{}, []string{"prefixes"}},
		{"terraform-output.json", FormatTerraform, Options{}, []string{"asn", "prefixes", "vpn[0].tunnels[0].outside.local", "vpn[0].tunnels[1].outside.local"}},
		{"terraform-output.json", FormatTerraform, Options{ASN: 65010, LocalAddress: netip.MustParseAddr("192.0.2.7")}, []string{"prefixes"}},
		{"terraform-output.json", FormatTerraform, Options{ASN: 65010, LocalAddress: netip.MustParseAddr("192.0.2.7"), Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, nil},
	} {
		t.Run(tc.file, func(t *testing.T) {
			c, err := Parse(read(t, tc.file), tc.format)
			if err != nil {
				t.Fatal(err)
			}
			missing, err := Check(c, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range missing {
				got = append(got, p.Field)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("missing %v, want %v", got, tc.want)
			}
			yml, err := Render(c, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "cgwd.yaml")
			if err := os.WriteFile(path, yml, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = config.LoadSkipSecrets(path)
			var probs config.Problems
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("check-config: %v", err)
				}
				return
			}
			if !errors.As(err, &probs) || len(probs) != len(tc.want) {
				t.Fatalf("check-config: %v, want exactly %v", err, tc.want)
			}
		})
	}
}

func TestTransitGateway(t *testing.T) {
	c, err := Parse(read(t, "tgw.xml"), FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	if c.GatewayID != "tgw-0aaaabbbbccccdddd" {
		t.Fatalf("gateway %q", c.GatewayID)
	}
	yml, err := Render(c, Options{Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(yml)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.VPN[0].Gateway != "tgw" {
		t.Fatalf("gateway %q, want tgw", cfg.VPN[0].Gateway)
	}
}

func TestQuoteUntrustedID(t *testing.T) {
	c, err := Parse(read(t, "vgw.xml"), FormatXML)
	if err != nil {
		t.Fatal(err)
	}
	c.ID = "vpn-1\n  evil: [x] # \"quoted\""
	yml, err := Render(c, Options{Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(yml)
	if err != nil {
		t.Fatalf("%v\n%s", err, yml)
	}
	if cfg.VPN[0].Name != c.ID {
		t.Fatalf("name %q", cfg.VPN[0].Name)
	}
}

// Without NAT (no --local-address, or the address AWS knows) the identities
// are left to their defaults, the outside addresses.
func TestRenderNoNATLeavesIDsDefault(t *testing.T) {
	c, err := Parse(read(t, "vgw.xml"), FormatXML)
	if err != nil {
		t.Fatal(err)
	}
	for _, local := range []netip.Addr{{}, netip.MustParseAddr("198.51.100.2")} {
		yml, err := Render(c, Options{LocalAddress: local})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(yml), "local_id") || strings.Contains(string(yml), "remote_id") {
			t.Errorf("--local-address %v: identities written without NAT:\n%s", local, yml)
		}
	}
}
