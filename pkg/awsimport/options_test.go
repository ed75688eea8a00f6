package awsimport

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cgwd/cgwd/pkg/config"
	"github.com/cgwd/cgwd/pkg/proposal"
)

func readOptions(t *testing.T) *Connection {
	t.Helper()
	data, err := os.ReadFile("testdata/aws-cli-options.json")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data, FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func settings(o *TunnelOptions) map[string]string {
	m := map[string]string{}
	for _, s := range o.Settings() {
		m[s.Key] = s.Value
	}
	return m
}

func TestTunnelOptionsParsedAndMapped(t *testing.T) {
	c := readOptions(t)
	o1, o2 := c.Tunnels[0].Options, c.Tunnels[1].Options
	if o1 == nil || o2 == nil {
		t.Fatalf("tunnel options not attached: %+v %+v", o1, o2)
	}
	s1, s2 := settings(o1), settings(o2)
	for k, want := range map[string]string{"ike_version": "any", "ike_lifetime": "28800s", "child_lifetime": "3600s",
		"rekey_margin": "540s", "rekey_fuzz_percent": "100", "replay_window": "1024", "dpd_timeout": "30s", "initiate": "true"} {
		if s1[k] != want {
			t.Errorf("cgw-t1 %s = %q, want %q", k, s1[k], want)
		}
	}
	if s2["ike_version"] != "2" || s2["ike_lifetime"] != "14400s" {
		t.Errorf("cgw-t2: %v", s2)
	}
	if s2["ike_proposals"] != "[aes256gcm16-aes128gcm16-prfsha384-prfsha256-prfsha512-prfsha1-ecp384-modp2048, aes256-aes128-sha384-sha256-sha512-sha1-ecp384-modp2048]" {
		t.Errorf("cgw-t2 ike_proposals %s", s2["ike_proposals"])
	}
	// AWS's defaults allow the weak groups; cgwd leaves them out.
	for _, weak := range []string{"modp1024", "modp1536", "modp1024s160"} {
		if strings.Contains(s1["ike_proposals"]+s1["esp_proposals"], weak+"-") || strings.HasSuffix(s1["esp_proposals"], weak+"]") {
			t.Errorf("weak %s offered: %v", weak, s1)
		}
	}
	yml, err := Render(c, Options{PSKDir: "/etc/cgwd"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(yml), "ike_version: any") || !strings.Contains(string(yml), "rekey_fuzz_percent: 100") {
		t.Errorf("render:\n%s", yml)
	}
	if _, err := Check(c, Options{}); err != nil {
		t.Errorf("cgwd's own rules refuse the import: %v", err)
	}
	if c.IKEv1Notice() != "" {
		t.Error("IKEv1 notice with tunnel options that set ike_version")
	}
}

// Every group AWS can list, alone in a phase, gives proposals cgwd's
// config accepts and that offer that group.
func TestEveryAWSGroupMapsToOneCgwdAccepts(t *testing.T) {
	for _, g := range awsGroups {
		name := proposal.GroupName(g)
		if name == "" {
			t.Errorf("group %d: cgwd has no name for it", g)
			continue
		}
		for _, ike := range []bool{true, false} {
			if ike && g == 5 {
				continue // AWS lists 5 for phase 2 only
			}
			o := &TunnelOptions{RekeyFuzz: -1}
			c := readOptions(t)
			key := "esp_proposals"
			if ike {
				o.Phase1Groups, key = []int{int(g)}, "ike_proposals"
			} else {
				o.Phase2Groups = []int{int(g)}
			}
			v := settings(o)[key]
			for _, p := range strings.Split(strings.Trim(v, "[]"), ", ") {
				if _, err := proposal.Parse(p, ike); err != nil {
					t.Errorf("group %d: %v", g, err)
				}
				if !slices.Contains(strings.Split(p, "-"), name) {
					t.Errorf("group %d: %s lacks %s", g, p, name)
				}
			}
			// and the whole import passes cgwd's config rules with it
			c.Tunnels[0].Options, c.Tunnels[1].Options = o, o
			if _, err := Check(c, Options{}); err != nil {
				t.Errorf("group %d: %v", g, err)
			}
		}
	}
}

func TestTunnelOptionsBadInputNamesTheField(t *testing.T) {
	base, err := os.ReadFile("testdata/aws-cli-options.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ from, to, field string }{
		{`"Value": "AES128-GCM-16"`, `"Value": "DES"`, "Phase1EncryptionAlgorithms"},
		{`"Value": "SHA2-512"`, `"Value": "MD5"`, "Phase1IntegrityAlgorithms"},
		{`"Value": 24`, `"Value": 3`, "Phase1DHGroupNumbers"},
		{`"Phase1LifetimeSeconds": 28800`, `"Phase1LifetimeSeconds": 99999`, "Phase1LifetimeSeconds"},
		{`"DpdTimeoutAction": "clear"`, `"DpdTimeoutAction": "explode"`, "DpdTimeoutAction"},
		{`"StartupAction": "add"`, `"StartupAction": "later"`, "StartupAction"},
		{`"OutsideIpAddress": "203.0.113.10"`, `"OutsideIpAddress": "192.0.2.99"`, "OutsideIpAddress"},
		{`"Value": "ikev1"`, `"Value": "ikev3"`, "IkeVersions"},
	} {
		data := strings.Replace(string(base), tc.from, tc.to, 1)
		if data == string(base) {
			t.Fatalf("%s not in the test data", tc.from)
		}
		_, err := Parse([]byte(data), FormatAuto)
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: error %v does not name %s", tc.to, err, tc.field)
		}
	}
}

func TestDiff(t *testing.T) {
	c := readOptions(t)
	dir := t.TempDir()
	write := func(extra1, extra2 string) *config.Config {
		t.Helper()
		yml, err := Render(c, Options{PSKDir: dir, ASN: 65000, Prefixes: []netip.Prefix{netip.MustParsePrefix("10.10.0.0/16")}})
		if err != nil {
			t.Fatal(err)
		}
		// An older import: no tunnel options, then the settings below.
		s := string(yml)
		cut := func(s, tunnel, extra string) string {
			i := strings.Index(s, "name: "+tunnel)
			j := i + strings.Index(s[i:], "# from AWS's tunnel options")
			k := j + strings.Index(s[j:], "        bgp:")
			return s[:j] + extra + s[k:]
		}
		s = cut(s, "cgw-t1", extra1)
		s = cut(s, "cgw-t2", extra2)
		p := filepath.Join(dir, "cgwd.yaml")
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.LoadSkipSecrets(p)
		if err != nil {
			t.Fatalf("%v\n%s", err, s)
		}
		return cfg
	}
	// cgwd's default ESP proposal (PFS in ecp384) is a mismatch where AWS
	// allows only group 14 in phase 2: rekeys would fail.
	if ms := Diff(write("dpd_timeout: 30s\n", "ike_lifetime: 14400s\n          dpd_timeout: 30s\n"), c); len(ms) != 1 || ms[0].Field != "esp_proposals" {
		t.Errorf("default ESP proposal against group 14 only: %v", ms)
	}
	if ms := Diff(write("dpd_timeout: 30s\n", "ike_lifetime: 14400s\n          dpd_timeout: 30s\n          esp_proposals: [aes256gcm16-modp2048]\n"), c); len(ms) != 0 {
		t.Errorf("matching config: %v", ms)
	}
	ms := Diff(write("ike_version: 2\n          ike_lifetime: 8h\n          child_lifetime: 1h\n          dpd_timeout: 30s\n          initiate: false\n",
		"esp_proposals: [aes128-sha1-modp1536]\n          dpd_timeout: 40s\n          replay_window: 2048\n"), c)
	var got []string
	for _, m := range ms {
		got = append(got, m.Tunnel+" "+m.Field)
		if m.Fix == "" || m.AWS == "" {
			t.Errorf("mismatch without fix or AWS's value: %+v", m)
		}
	}
	want := []string{"cgw-t1 initiate", "cgw-t2 esp_proposals", "cgw-t2 ike_lifetime", "cgw-t2 dpd_timeout", "cgw-t2 replay_window"}
	if !slices.Equal(got, want) {
		t.Errorf("mismatches %q, want %q:\n%v", got, want, ms)
	}
	for _, m := range ms {
		if m.Field == "ike_lifetime" && (m.Have != "28800s" || m.AWS != "14400s" || m.Fix != "ike_lifetime: 14400s") {
			t.Errorf("lifetime mismatch %+v", m)
		}
		if m.Field == "esp_proposals" && !strings.Contains(m.Fix, "modp2048") {
			t.Errorf("proposal fix %+v", m)
		}
	}
	// AWS narrowed to IKEv1: a config on IKEv2 is named.
	c.Tunnels[0].Options.IKEVersions = []string{"ikev1"}
	ms = Diff(write("dpd_timeout: 30s\n", "ike_lifetime: 14400s\n          dpd_timeout: 30s\n          esp_proposals: [aes256gcm16-modp2048]\n"), c)
	if len(ms) != 1 || ms[0].Field != "ike_version" || ms[0].Fix != "ike_version: 1" {
		t.Errorf("version mismatch: %v", ms)
	}
}
