package config

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cgwd/cgwd/pkg/secret"
)

const goodYAML = `
asn: 65000
prefixes: [10.10.0.0/16]
vpn:
  - name: vpn1
    tunnels:
      - name: cgw-t1
        kind: wireguard
        outside: {local: 198.51.100.2, remote: 203.0.113.10}
        inside: 169.254.10.0/30
        wireguard:
          private_key_file: /KEYFILE
          peer_public_key: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
          persistent_keepalive: 25s
      - name: cgw-t2
        kind: ipsec
        outside: {local: 198.51.100.2, remote: 203.0.113.20}
        inside: 169.254.11.0/30
        ipsec:
          psk_file: /KEYFILE
direct_connect:
  - interface: dx0
    local: 169.254.255.2/30
    peer: 169.254.255.1
`

func TestParseValidGetsDefaults(t *testing.T) {
	c, err := Parse([]byte(goodYAML))
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Validate(); p != nil {
		t.Fatalf("valid config rejected:\n%v", p)
	}
	t1 := c.VPN[0].Tunnels[0]
	if t1.MTU != DefaultTunnelMTU || t1.BGP.PeerASN != 64512 || t1.WireGuard.ListenPort != 51820 {
		t.Errorf("defaults not applied: %+v", t1)
	}
	if got := c.VPN[0].Tunnels[0].WireGuard.PersistentKeepalive; got != Duration(25e9) {
		t.Errorf("keepalive = %v", got)
	}
	aws, local := t1.InsideAddrs()
	if aws.String() != "169.254.10.1/30" || local.String() != "169.254.10.2/30" {
		t.Errorf("InsideAddrs = %v %v", aws, local)
	}
	if *t1.BGP.Prepend != 1 || *c.VPN[0].Tunnels[1].BGP.Prepend != 2 || t1.BGP.HoldTime != Duration(30e9) || t1.BGP.MaxPrefixes != 1000 || t1.BGP.AdvertiseLimit != 100 {
		t.Errorf("tunnel BGP defaults: %+v", t1.BGP)
	}
	if dx := c.DirectConnect[0].BGP; dx.HoldTime != Duration(90e9) || dx.Keepalive != Duration(30e9) || *dx.Prepend != 0 {
		t.Errorf("DX BGP defaults: %+v", dx)
	}
	if c.DirectConnect[0].Name != "dx1" || c.ControlSocket != DefaultControlSocket || c.Metrics.Listen != DefaultMetricsListen {
		t.Errorf("defaults not applied: %+v", c)
	}
}

func TestSecondVPNWithOwnPortsIsValid(t *testing.T) {
	c, err := parseEdited(t, "direct_connect:", secondVPN("203.0.113.30", "listen_port: 51830", "listen_port: 51831")+"direct_connect:")
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Validate(); p != nil {
		t.Fatalf("valid config rejected:\n%v", p)
	}
}

func TestValidateBadConfigs(t *testing.T) {
	cases := []struct {
		name, from, to string
		want           string
	}{
		{"reserved inside", "169.254.11.0/30", "169.254.1.0/30", "vpn[0].tunnels[1].inside: 169.254.1.0/30 is in a range AWS reserves"},
		{"reserved metadata inside", "169.254.11.0/30", "169.254.169.252/30", "vpn[0].tunnels[1].inside: 169.254.169.252/30 is in a range AWS reserves"},
		{"not a /30", "169.254.10.0/30", "169.254.10.0/29", "vpn[0].tunnels[0].inside: 169.254.10.0/29 is not a /30"},
		{"not link-local", "169.254.10.0/30", "10.0.0.0/30", "vpn[0].tunnels[0].inside: 10.0.0.0/30 is not inside 169.254.0.0/16"},
		{"host bits", "169.254.10.0/30", "169.254.10.1/30", "vpn[0].tunnels[0].inside: 169.254.10.1/30 has host bits set (did you mean 169.254.10.0/30?)"},
		{"overlap", "169.254.11.0/30", "169.254.10.0/30", "vpn[0].tunnels[1].inside: 169.254.10.0/30 overlaps vpn[0].tunnels[0].inside"},
		{"bad prefix", "10.10.0.0/16", "10.10.0.0/33", `prefixes[0]: "10.10.0.0/33" is not an IPv4 prefix (e.g. 10.10.0.0/16)`},
		{"asn missing", "asn: 65000\n", "", "asn: is required (the customer gateway's ASN, e.g. 65000)"},
		{"asn trans", "asn: 65000", "asn: 23456", "asn: 23456 is not a usable ASN"},
		{"bad kind", "kind: ipsec", "kind: gre", `vpn[0].tunnels[1].kind: "gre" is not one of wireguard, ipsec`},
		{"dup name", "name: cgw-t2", "name: cgw-t1", `vpn[0].tunnels[1].name: "cgw-t1" is already used by vpn[0].tunnels[0].name`},
		{"long name", "name: cgw-t2", "name: cgw-tunnel-number-2", `vpn[0].tunnels[1].name: "cgw-tunnel-number-2" is longer than 15 bytes, the Linux limit for interface names`},
		{"bad outside", "remote: 203.0.113.20", "remote: aws.example", `vpn[0].tunnels[1].outside.remote: "aws.example" is not an IPv4 address`},
		{"bad key", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "short", "vpn[0].tunnels[0].wireguard.peer_public_key: is not a base64 32-byte key"},
		{"missing psk", "psk_file: /KEYFILE", "psk_file: ''", "vpn[0].tunnels[1].ipsec.psk_file: is required"},
		{"local_id is remote", "psk_file: /KEYFILE", "psk_file: /KEYFILE\n          local_id: 203.0.113.20", "vpn[0].tunnels[1].ipsec.local_id: 203.0.113.20 is also the remote identity: each end needs its own"},
		{"local_id is AWS's", "psk_file: /KEYFILE", "psk_file: /KEYFILE\n          local_id: 203.0.113.20\n          remote_id: 192.0.2.1", "vpn[0].tunnels[1].ipsec.local_id: 203.0.113.20 is the AWS endpoint's address (outside.remote): local_id is this gateway's public address"},
		{"remote_id is ours", "psk_file: /KEYFILE", "psk_file: /KEYFILE\n          remote_id: 198.51.100.2\n          local_id: 192.0.2.7", "vpn[0].tunnels[1].ipsec.remote_id: 198.51.100.2 is this gateway's address (outside.local): remote_id is the AWS endpoint's outside address"},
		{"dx peer outside", "peer: 169.254.255.1", "peer: 169.254.254.1", "direct_connect[0].peer: 169.254.254.1 is not another address in 169.254.255.0/30"},
		{"log level", "asn: 65000", "asn: 65000\nlog: {level: loud}", `log.level: "loud" is not one of debug, info, warn, error`},
		{"metrics", "asn: 65000", "asn: 65000\nmetrics: {listen: 9477}", `metrics.listen: "9477" is not host:port or off`},
		{"bad community", "    peer: 169.254.255.1\n", "    peer: 169.254.255.1\n    bgp: {communities: [7224-7100]}\n", `direct_connect[0].bgp.communities[0]: "7224-7100" is not a community (e.g. 7224:7100)`},
		{"keepalive >= hold", "    peer: 169.254.255.1\n", "    peer: 169.254.255.1\n    bgp: {keepalive: 30s, hold_time: 9s}\n", "direct_connect[0].bgp.keepalive: 30s must be positive and shorter than hold_time 9s"},
		{"bad allow", "    peer: 169.254.255.1\n", "    peer: 169.254.255.1\n    bgp: {allow: [10.200.0.0/8]}\n", "direct_connect[0].bgp.allow[0]: 10.200.0.0/8 has host bits set (did you mean 10.0.0.0/8?)"},
		{"route protocol", "asn: 65000", "asn: 65000\nbgp: {route_protocol: 2}", "bgp.route_protocol: 2 is outside 5-255 (0-4 belong to the kernel)"},
		{"gateway", "  - name: vpn1\n", "  - name: vpn1\n    gateway: cgw\n", `vpn[0].gateway: "cgw" is not one of vgw, tgw`},
		{"relative psk", "psk_file: /KEYFILE", "psk_file: keys/t2.psk", `vpn[0].tunnels[1].ipsec.psk_file: "keys/t2.psk" must be an absolute path`},
		{"relative key", "private_key_file: /KEYFILE", "private_key_file: t1.key", `vpn[0].tunnels[0].wireguard.private_key_file: "t1.key" must be an absolute path`},
		{"relative password", "    peer: 169.254.255.1\n", "    peer: 169.254.255.1\n    bgp: {password_file: dx.pw}\n", `direct_connect[0].bgp.password_file: "dx.pw" must be an absolute path`},
		{"same endpoint", "remote: 203.0.113.20", "remote: 203.0.113.10", "vpn[0].tunnels[1].outside.remote: 203.0.113.10 is already the endpoint of vpn[0].tunnels[0]; every tunnel goes to its own AWS endpoint"},
		{"same endpoint across vpns", "direct_connect:", secondVPN("203.0.113.10", "", "") + "direct_connect:", "vpn[1].tunnels[0].outside.remote: 203.0.113.10 is already the endpoint of vpn[0].tunnels[0]; every tunnel goes to its own AWS endpoint"},
		{"default wireguard ports collide", "direct_connect:", secondVPN("203.0.113.30", "", "") + "direct_connect:", "vpn[1].tunnels[0].wireguard.listen_port: 51820 is already used by vpn[0].tunnels[0] (tunnel N of every VPN connection defaults to 51820+N-1; set listen_port)"},
		{"explicit wireguard ports collide", "direct_connect:", secondVPN("203.0.113.30", "listen_port: 51830", "listen_port: 51830") + "direct_connect:", "vpn[1].tunnels[1].wireguard.listen_port: 51830 is already used by vpn[1].tunnels[0] (tunnel N of every VPN connection defaults to 51820+N-1; set listen_port)"},
		{"ibgp tunnel", "asn: 65000", "asn: 64512", "vpn[0].tunnels[0].bgp.peer_asn: 64512 equals asn: cgwd speaks eBGP only, the peer needs another ASN"},
		{"ibgp dx", "    peer: 169.254.255.1\n", "    peer: 169.254.255.1\n    bgp: {peer_asn: 65000}\n", "direct_connect[0].bgp.peer_asn: 65000 equals asn: cgwd speaks eBGP only, the peer needs another ASN"},
		{"one tunnel", "      - name: cgw-t2\n        kind: ipsec\n        outside: {local: 198.51.100.2, remote: 203.0.113.20}\n        inside: 169.254.11.0/30\n        ipsec:\n          psk_file: /KEYFILE\n", "", "vpn[0].tunnels: an AWS VPN connection has exactly 2 tunnels, got 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseEdited(t, tc.from, tc.to)
			if err != nil {
				t.Fatal(err)
			}
			probs := c.Validate()
			for _, p := range probs {
				if p.String() == tc.want {
					return
				}
			}
			t.Errorf("want problem %q, got:\n%v", tc.want, probs)
		})
	}
}

// secondVPN is a second VPN connection of two WireGuard tunnels for
// goodYAML, the first to remote1, with extra keys in their wireguard blocks.
func secondVPN(remote1, wg1, wg2 string) string {
	return `  - name: vpn2
    tunnels:
      - name: cgw-t3
        kind: wireguard
        outside: {local: 198.51.100.2, remote: ` + remote1 + `}
        inside: 169.254.12.0/30
        wireguard: {private_key_file: /KEYFILE, peer_public_key: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=, ` + wg1 + `}
      - name: cgw-t4
        kind: wireguard
        outside: {local: 198.51.100.2, remote: 203.0.113.40}
        inside: 169.254.13.0/30
        wireguard: {private_key_file: /KEYFILE, peer_public_key: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=, ` + wg2 + `}
`
}

// parseEdited parses goodYAML with its first from replaced by to.
func parseEdited(t *testing.T, from, to string) (*Config, error) {
	t.Helper()
	src := strings.Replace(goodYAML, from, to, 1)
	if src == goodYAML {
		t.Fatalf("replacement %q not found", from)
	}
	return Parse([]byte(src))
}

func TestParseRejectsUnknownFields(t *testing.T) {
	_, err := Parse([]byte("asn: 65000\nprefix: [10.0.0.0/8]\n"))
	if err == nil || err.Error() != "line 2, column 1: prefix: unknown key `prefix`, did you mean `prefixes`?" {
		t.Fatalf("err = %v", err)
	}
	if _, err := Parse(nil); err == nil || err.Error() != "config is empty" {
		t.Fatalf("empty: err = %v", err)
	}
}

func TestLoadSecretFilePermissions(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "t1.key")
	const keyText = "c2VjcmV0LWtleS1tYXRlcmlhbC1mb3ItYS10ZXN0ISE="
	if err := os.WriteFile(key, []byte(keyText+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "cgwd.yaml")
	if err := os.WriteFile(cfgPath, []byte(strings.ReplaceAll(goodYAML, "/KEYFILE", key)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(cfgPath)
	want := "vpn[0].tunnels[0].wireguard.private_key_file: " + key + ": mode 0644 allows group/other access; chmod 600"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("want %q, got %v", want, err)
	}
	if strings.Contains(err.Error(), keyText) {
		t.Fatal("error leaks the secret")
	}
	if err := os.Chmod(key, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(cfgPath); err != nil {
		t.Fatalf("private key file rejected: %v", err)
	}
	got, err := secret.Read("private_key_file", key)
	if err != nil || string(got) != keyText {
		t.Fatalf("secret.Read = %q, %v", got, err)
	}
}

func TestExamplesAreValid(t *testing.T) {
	files, _ := filepath.Glob("../../deploy/examples/*.yaml")
	if len(files) == 0 {
		t.Fatal("no deploy/examples/*.yaml")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Parse(data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if p := c.Validate(); p != nil {
			t.Errorf("%s:\n%v", f, p)
		}
	}
}

func TestLogLevelSlog(t *testing.T) {
	for l, want := range map[LogLevel]slog.Level{LogDebug: slog.LevelDebug, LogInfo: slog.LevelInfo, LogWarn: slog.LevelWarn, LogError: slog.LevelError} {
		if got := l.Slog(); got != want {
			t.Errorf("%s: %v, want %v", l, got, want)
		}
	}
}
