package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cgwd/cgwd/pkg/config"
)

// TestConfigDump: every default is visible, those that depend on position
// too, and no secret's bytes appear, only the files' paths; the output reads
// back as the same config.
func TestConfigDump(t *testing.T) {
	dir := t.TempDir()
	const psk = "psk-secret-bytes-0123456789abcdef"
	const wgKey = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
	for name, content := range map[string]string{"t1.psk": psk, "t2.psk": psk + "2", "bgp.pw": "md5-password-bytes", "wg.key": wgKey} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "cgwd.yaml")
	cfgText := `asn: 65000
prefixes: [10.10.0.0/16]
vpn:
  - tunnels:
      - {name: t1, kind: ipsec, outside: {local: 198.51.100.2, remote: 203.0.113.10}, inside: 169.254.10.0/30,
         ipsec: {psk_file: ` + dir + `/t1.psk}, bgp: {password_file: ` + dir + `/bgp.pw}}
      - {name: t2, kind: ipsec, outside: {local: 198.51.100.2, remote: 203.0.113.20}, inside: 169.254.11.0/30,
         ipsec: {psk_file: ` + dir + `/t2.psk}, bfd: {enabled: true}}
  - gateway: tgw
    tunnels:
      - {name: w1, kind: wireguard, outside: {local: 198.51.100.2, remote: 203.0.113.30}, inside: 169.254.12.0/30,
         wireguard: {private_key_file: ` + dir + `/wg.key, peer_public_key: 3xd6QDnVzLTIvwcfWD3W8lCaW2Sv7hCqHn0KRIEmm0Q=}}
      - {name: w2, kind: wireguard, outside: {local: 198.51.100.2, remote: 203.0.113.40}, inside: 169.254.13.0/30,
         wireguard: {private_key_file: ` + dir + `/wg.key, peer_public_key: k0JN1n4Pv8nqwtQvs1jB52Yf4UjZc9wRJwx4t5jC5GE=}}
lan:
  interface: lan0
  peers: [{name: core, address: 10.10.100.254, peer_asn: 65010, password_file: ` + dir + `/bgp.pw}]
  import: {allow: [10.10.0.0/16]}
`
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI("config", "dump", path)
	if code != exitOK {
		t.Fatalf("config dump: exit %d\n%s", code, errOut)
	}
	for _, secret := range []string{psk, "md5-password-bytes", wgKey} {
		if strings.Contains(out, secret) {
			t.Errorf("config dump shows a secret's bytes (%q):\n%s", secret, out)
		}
	}
	for _, want := range []string{
		"router_id: 169.254.10.2\n", "fail_closed: true\n", "control_socket: /run/cgwd/cgwd.sock\n",
		"name: vpn1\n", "name: vpn2\n", "gateway: tgw\n", "mode: active-standby\n",
		"psk_file: " + dir + "/t1.psk\n", "password_file: " + dir + "/bgp.pw\n", "private_key_file: " + dir + "/wg.key\n",
		"prepend: 1\n", "prepend: 2\n", // tunnel 2 is the standby
		"listen_port: 51820\n", "listen_port: 51821\n", "remote_port: 51820\n",
		"max_prefixes: 1000\n", "max_prefixes: 5000\n", // vgw, tgw: what AWS may send
		"advertise_limit: 100\n", "advertise_limit: 1000\n", // vgw, tgw: what AWS accepts
		"ike_lifetime: 8h0m0s\n", "rekey_margin: 9m0s\n", "local_id: 198.51.100.2\n", "remote_id: 203.0.113.20\n",
		"cookie_threshold: 10\n", "half_open_limit: 16\n", "hold_time: 30s\n", "hold_down: 10s\n",
		"lan:\n  interface: lan0\n", "peer_asn: 65010\n", "keepalive: 10s\n", "mode: add\n", "med:\n      dx: 0\n      vpn: 100\n",
		"local_pref:\n      dx: 200\n      vpn: 100\n", "role: primary\n", "mode: active-standby\n", "standby_prepend: 3\n", "standby_med: 1000\n",
		"icmp_rate: 10/second\n", "grpc_listen: unix:///run/cgwd/gobgp.sock\n", "pprof:\n  listen: \"off\"\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("config dump lacks %q:\n%s", want, out)
		}
	}
	// Probes are on by default only where BFD is off: t2 turned BFD on.
	if n := strings.Count(out, "    probe:\n          enabled: true\n"); n != 3 {
		t.Errorf("%d tunnels with probes on, want 3 (all but t2):\n%s", n, out)
	}
	for _, absent := range []string{"wireguard:\n          private_key_file: \"\"", "ipsec: null", "null"} {
		if strings.Contains(out, absent) {
			t.Errorf("config dump has %q:\n%s", absent, out)
		}
	}

	// The dump is a config: it reads back to the same dump.
	back, err := config.Parse([]byte(out))
	if err != nil {
		t.Fatalf("the dump does not parse: %v\n%s", err, out)
	}
	if probs := back.Validate(); len(probs) > 0 {
		t.Errorf("the dump does not validate: %v", probs)
	}
	var again strings.Builder
	if err := back.Dump(&again); err != nil {
		t.Fatal(err)
	}
	if again.String() != out {
		t.Errorf("dump of the dump differs:\n%s\nwant:\n%s", again.String(), out)
	}
}

func TestConfigDumpUsage(t *testing.T) {
	if code, _, _ := runCLI("config"); code != exitUsage {
		t.Errorf("config without dump: exit %d, want %d", code, exitUsage)
	}
	if code, _, _ := runCLI("config", "show"); code != exitUsage {
		t.Errorf("config show: exit %d, want %d", code, exitUsage)
	}
	if code, _, errOut := runCLI("config", "dump", "a.yaml", "b.yaml"); code != exitUsage || !strings.Contains(errOut, `unexpected argument "b.yaml"`) {
		t.Errorf("two files: exit %d\n%s", code, errOut)
	}
	code, _, errOut := runCLI("config", "dump", filepath.Join(t.TempDir(), "missing.yaml"))
	if code != exitUsage || !strings.Contains(errOut, "missing.yaml") {
		t.Errorf("missing file: exit %d\n%s", code, errOut)
	}
}
