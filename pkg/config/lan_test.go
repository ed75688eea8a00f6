package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lanYAML is the schema's example lan and ha sections for goodYAML.
const lanYAML = `
lan:
  interface: lan0
  peers:
    - name: core
      address: 10.10.100.254
      peer_asn: 65010
      local_address: 10.10.100.1
      keepalive: 3s
      hold_time: 9s
      bfd: {enabled: true, interval: 300ms, multiplier: 3}
  import:
    allow: [10.10.0.0/16]
    aggregate: [10.0.0.0/8]
ha:
  role: secondary
`

func TestLANParsesWithDefaults(t *testing.T) {
	c := parseWith(t, lanYAML)
	if p := c.Validate(); p != nil {
		t.Fatalf("valid lan section rejected:\n%v", p)
	}
	l := c.LAN
	p := l.Peers[0]
	if l.Interface != "lan0" || p.Name != "core" || p.Address.Addr().String() != "10.10.100.254" || p.PeerASN != 65010 ||
		p.LocalAddress.Addr().String() != "10.10.100.1" || p.Keepalive != Duration(3e9) || p.HoldTime != Duration(9e9) {
		t.Errorf("peer = %+v", p)
	}
	if !p.BFD.On() || p.BFD.Interval != Duration(300e6) || p.BFD.Multiplier != 3 || p.IBGP(c.ASN) {
		t.Errorf("peer BFD %+v, ibgp %v", p.BFD, p.IBGP(c.ASN))
	}
	if l.Import.Mode != ImportAdd || c.ImportsReplace() || len(l.Import.Allow) != 1 || l.Import.Aggregate[0].Prefix().String() != "10.0.0.0/8" {
		t.Errorf("import = %+v", l.Import)
	}
	if l.Export.MED != (PathKindValues{DX: 0, VPN: 100}) || l.Export.LocalPref != (PathKindValues{DX: 200, VPN: 100}) {
		t.Errorf("export defaults = %+v", l.Export)
	}
	if c.HA.Role != RoleSecondary || c.HA.Mode != HAActiveStandby || c.HA.StandbyPrepend != 3 || c.HA.StandbyMED != 1000 || !c.HA.Standby() {
		t.Errorf("ha = %+v", c.HA)
	}
}

func TestLANDefaultsWithoutSection(t *testing.T) {
	c := parseWith(t, "")
	if len(c.LAN.Peers) != 0 || c.HA.Role != RolePrimary || c.HA.Standby() || c.LAN.Import.Mode != ImportAdd {
		t.Errorf("lan %+v, ha %+v", c.LAN, c.HA)
	}
	// Peer defaults: 10s/30s, BFD off but 300ms x 3 ready.
	c = parseWith(t, "lan: {interface: lan0, import: {allow: [10.10.0.0/16]}, peers: [{name: core, address: 10.10.0.254, peer_asn: 65000}]}\n")
	if p := c.Validate(); p != nil {
		t.Fatalf("rejected:\n%v", p)
	}
	p := c.LAN.Peers[0]
	if p.Keepalive != Duration(DefaultLANKeepalive) || p.HoldTime != Duration(DefaultLANHoldTime) || p.BFD.On() || p.BFD.Interval != Duration(300e6) || !p.IBGP(c.ASN) {
		t.Errorf("peer defaults %+v", p)
	}
}

func TestLANExplicitZeroKept(t *testing.T) {
	c := parseWith(t, "lan: {export: {med: {vpn: 0}, local_pref: {dx: 0}}}\nha: {standby_prepend: 0, standby_med: 0, mode: active-active}\n")
	if p := c.Validate(); p != nil {
		t.Fatalf("rejected:\n%v", p)
	}
	if c.LAN.Export.MED.VPN != 0 || c.LAN.Export.LocalPref.DX != 0 || c.LAN.Export.LocalPref.VPN != 100 || c.HA.StandbyPrepend != 0 || c.HA.StandbyMED != 0 {
		t.Errorf("explicit zeros replaced: %+v %+v", c.LAN.Export, c.HA)
	}
}

func TestLANValidate(t *testing.T) {
	peer := func(extra string) string {
		return "lan:\n  interface: lan0\n  import: {allow: [10.10.0.0/16]}\n  peers:\n    - {name: core, address: 10.10.100.254, peer_asn: 65010" + extra + "}\n"
	}
	cases := []struct{ name, yaml, want string }{
		{"no interface", "lan: {peers: [{name: core, address: 10.10.100.254, peer_asn: 65010}]}", "lan.interface: is required"},
		{"interface clash", "lan: {interface: cgw-t1}", `lan.interface: "cgw-t1" is already used by vpn[0].tunnels[0].name`},
		{"no name", "lan: {interface: lan0, peers: [{address: 10.10.100.254, peer_asn: 65010}]}", "lan.peers[0].name: is required (it names the session in status, metrics and logs)"},
		{"bad name", "lan: {interface: lan0, peers: [{name: 'core 1', address: 10.10.100.254, peer_asn: 65010}]}", `lan.peers[0].name: "core 1" is not a session name (at most 64 of A-Z a-z 0-9 . _ -)`},
		{"name of a tunnel", "lan: {interface: lan0, peers: [{name: cgw-t2, address: 10.10.100.254, peer_asn: 65010}]}", `lan.peers[0].name: "cgw-t2" is already the name of vpn[0].tunnels[1]`},
		{"name of a dx", "lan: {interface: lan0, peers: [{name: dx1, address: 10.10.100.254, peer_asn: 65010}]}", `lan.peers[0].name: "dx1" is already the name of direct_connect[0]`},
		{"no address", "lan: {interface: lan0, peers: [{name: core, peer_asn: 65010}]}", "lan.peers[0].address: is required"},
		{"bad address", "lan: {interface: lan0, peers: [{name: core, address: core.example, peer_asn: 65010}]}", `lan.peers[0].address: "core.example" is not an IPv4 address`},
		{"v6 address", "lan: {interface: lan0, peers: [{name: core, address: '2001:db8::1', peer_asn: 65010}]}", "lan.peers[0].address: 2001:db8::1 is IPv6 (peer core): cgwd's LAN sessions carry IPv4 unicast with next-hop self and need an IPv4 address"},
		{"multicast address", "lan: {interface: lan0, peers: [{name: core, address: 224.0.0.5, peer_asn: 65010}]}", "lan.peers[0].address: 224.0.0.5 is not a router's address (peer core)"},
		{"address of dx peer", "lan: {interface: lan0, peers: [{name: core, address: 169.254.255.1, peer_asn: 65010}]}", "lan.peers[0].address: 169.254.255.1 is already the peer of direct_connect[0].peer (peer core)"},
		{"same address twice", "lan: {interface: lan0, peers: [{name: a, address: 10.1.1.1, peer_asn: 65010}, {name: b, address: 10.1.1.1, peer_asn: 65010}]}", "lan.peers[1].address: 10.1.1.1 is already the peer of lan.peers[0] (peer b)"},
		{"same name twice", "lan: {interface: lan0, peers: [{name: a, address: 10.1.1.1, peer_asn: 65010}, {name: a, address: 10.1.1.2, peer_asn: 65010}]}", `lan.peers[1].name: "a" is already the name of lan.peers[0]`},
		{"no asn", "lan: {interface: lan0, peers: [{name: core, address: 10.10.100.254}]}", "lan.peers[0].peer_asn: is required (peer core) (iBGP when it equals asn, else eBGP)"},
		{"bad local", peer(", local_address: lan0"), `lan.peers[0].local_address: "lan0" is not an IPv4 address`},
		{"timers", peer(", keepalive: 10s, hold_time: 9s"), "lan.peers[0].keepalive: 10s must be positive and shorter than hold_time 9s"},
		{"hold zero", peer(", hold_time: 0s"), "lan.peers[0].hold_time: 0s is not supported (cgwd's BGP speaker would use 90s); set 3s-65535s or leave it out for the default"},
		{"relative password", peer(", password_file: core.md5"), `lan.peers[0].password_file: "core.md5" must be an absolute path`},
		{"bfd interval", peer(", bfd: {enabled: true, interval: 10ms}"), "lan.peers[0].bfd.interval: 10ms is outside 50ms-10s"},
		{"allow link-local", "lan: {import: {allow: [169.254.0.0/16]}}", "lan.import.allow[0]: 169.254.0.0/16 overlaps 169.254.0.0/16 (tunnel inside and Direct Connect addresses), which is never imported from the LAN"},
		{"allow covering link-local", "lan: {import: {allow: [128.0.0.0/1]}}", "lan.import.allow[0]: 128.0.0.0/1 overlaps 169.254.0.0/16 (tunnel inside and Direct Connect addresses), which is never imported from the LAN"},
		{"allow host bits", "lan: {import: {allow: [10.10.0.1/16]}}", "lan.import.allow[0]: 10.10.0.1/16 has host bits set (did you mean 10.10.0.0/16?)"},
		{"aggregate bad", "lan: {import: {aggregate: [10.0.0.0/33]}}", `lan.import.aggregate[0]: "10.0.0.0/33" is not an IPv4 prefix (e.g. 10.10.0.0/16)`},
		{"replace without peers", "lan: {import: {mode: replace}}", "lan.import.mode: replace advertises the prefixes learned from LAN peers instead of `prefixes`, but lan.peers is empty"},
		{"mode", "lan: {import: {mode: merge}}", `lan.import.mode: "merge" is not one of add, replace`},
		{"role", "ha: {role: tertiary}", `ha.role: "tertiary" is not one of primary, secondary`},
		{"ha mode", "ha: {mode: ecmp}", `ha.mode: "ecmp" is not one of active-standby, active-active`},
		{"standby prepend", "ha: {standby_prepend: 11}", "ha.standby_prepend: 11 is outside 0-10"},
		{"two BFD peers, one address", "lan: {interface: lan0, peers: [{name: a, address: 10.1.1.1, peer_asn: 65010, bfd: {enabled: true}}, {name: b, address: 10.1.1.2, peer_asn: 65010, bfd: {enabled: true}}]}",
			"lan.peers[1].bfd: peer b: BFD to a second LAN peer from the same local address as lan.peers[0] is not supported; give each a local_address of its own"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := parseWith(t, tc.yaml+"\n")
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

// Shape problems name the values an enum takes.
func TestLANEnumShape(t *testing.T) {
	_, err := Parse([]byte(goodYAML + "ha: {role: [a]}\n"))
	if err == nil || !strings.Contains(err.Error(), "ha.role: expected one of primary, secondary, got a list") {
		t.Errorf("err = %v", err)
	}
	_, err = Parse([]byte(goodYAML + "lan: {export: {med: {dx: -1}}}\n"))
	if err == nil || !strings.Contains(err.Error(), "lan.export.med.dx: expected a whole number") {
		t.Errorf("err = %v", err)
	}
}

func TestLANPrefixesFromTheLAN(t *testing.T) {
	// Without static prefixes, LAN peers with an allow list are enough.
	c, err := parseEdited(t, "prefixes: [10.10.0.0/16]\n", "lan: {interface: lan0, import: {allow: [10.10.0.0/16], mode: replace}, peers: [{name: core, address: 10.10.100.254, peer_asn: 65010}]}\n")
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Validate(); p != nil {
		t.Fatalf("rejected:\n%v", p)
	}
	if !c.ImportsReplace() {
		t.Error("not replace")
	}
	c, err = parseEdited(t, "prefixes: [10.10.0.0/16]\n", "lan: {interface: lan0, peers: [{name: core, address: 10.10.100.254, peer_asn: 65010}]}\n")
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Validate(); !strings.Contains(p.Error(), "prefixes: at least one on-prem prefix is required, or lan.import.allow to learn them from the LAN peers") {
		t.Errorf("problems = %v", p)
	}
	// replace: the static prefixes do not count against advertise_limit.
	c, err = parseEdited(t, "prefixes: [10.10.0.0/16]\n", onPrem(150)+"\nlan: {interface: lan0, import: {allow: [10.10.0.0/16], mode: replace}, peers: [{name: core, address: 10.10.100.254, peer_asn: 65010}]}\n")
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Validate(); p != nil {
		t.Fatalf("rejected:\n%v", p)
	}
}

func TestLANWarnings(t *testing.T) {
	c := parseWith(t, "lan: {interface: lan0, import: {mode: replace}, peers: [{name: core, address: 10.10.100.254, peer_asn: 65010}]}\nha: {role: secondary, standby_prepend: 9}\n")
	got := strings.Join(fields(c.Warnings()), " ")
	for _, want := range []string{"lan.import.allow", "prefixes", "ha.standby_prepend"} {
		if !strings.Contains(got, want) {
			t.Errorf("no warning on %s: %v", want, c.Warnings())
		}
	}
	if w := parseWith(t, lanYAML).Warnings(); len(w) != 0 {
		t.Errorf("warnings on the schema's example: %v", w)
	}
}

func TestLANPasswordFileChecked(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "core.md5")
	if err := os.WriteFile(pw, []byte("md5-secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := strings.ReplaceAll(goodYAML, "/KEYFILE", writeKey(t, "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=")) +
		"lan: {interface: lan0, import: {allow: [10.10.0.0/16]}, peers: [{name: core, address: 10.10.100.254, peer_asn: 65010, password_file: " + pw + "}]}\n"
	path := filepath.Join(dir, "cgwd.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), "lan.peers[0].password_file: "+pw+": mode 0644") || strings.Contains(err.Error(), "md5-secret") {
		t.Fatalf("err = %v", err)
	}
}
