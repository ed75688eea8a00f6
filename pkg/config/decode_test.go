package config

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// decodeCases are files with mistakes in their shape, and every problem
// Parse must report for each, in order, with field path and line.
var decodeCases = []struct {
	name, yaml string
	want       []string
}{
	{"unknown top-level key", "asn: 65000\nprefixs: [10.0.0.0/8]\n",
		[]string{"line 2, column 1: prefixs: unknown key `prefixs`, did you mean `prefixes`?"}},
	{"unknown nested key", "asn: 65000\nvpn:\n  - name: x\n    tunels: []\n",
		[]string{"line 4, column 5: vpn[0].tunels: unknown key `tunels`, did you mean `tunnels`?"}},
	{"unknown key far from any", "asn: 65000\nlog: {colour: red}\n",
		[]string{"line 2, column 7: log.colour: unknown key `colour` (known here: format, level)"}},
	{"duplicate key", "asn: 1\nasn: 2\n",
		[]string{"line 2, column 1: asn: key `asn` is given twice (first on line 1)"}},
	{"number expected", "vpn:\n  - tunnels:\n      - mtu: big\n",
		[]string{`line 3, column 14: vpn[0].tunnels[0].mtu: expected a whole number, got "big"`}},
	{"list expected", "prefixes: 10.0.0.0/8\nvpn: {name: x}\n",
		[]string{
			`line 1, column 11: prefixes: expected a list, got "10.0.0.0/8"`,
			"line 2, column 6: vpn: expected a list, got a mapping",
		}},
	{"mapping expected", "bgp: yes\n",
		[]string{`line 1, column 6: bgp: expected a mapping (key: value), got "yes"`}},
	{"bool expected", "fail_closed: maybe\n",
		[]string{`line 1, column 14: fail_closed: expected true or false, got "maybe"`}},
	{"custom type given a list", "router_id: [1, 2]\nlog: {level: {a: 1}}\n",
		[]string{
			"line 1, column 12: router_id: expected an IP address, got a list",
			"line 2, column 14: log.level: expected one of debug, info, warn, error, got a mapping",
		}},
	{"custom type message kept", "vpn:\n  - tunnels:\n      - wireguard: {persistent_keepalive: soon}\n",
		[]string{`line 3, column 43: vpn[0].tunnels[0].wireguard.persistent_keepalive: "soon" is not a duration (e.g. 25s)`}},
	{"several at once", "asn: \"abc\"\nprefixs:\n  - 10.0.0.0/8\nvpn:\n  - name: x\n    tunels: []\n    gateway: [vgw]\n",
		[]string{
			`line 1, column 6: asn: "abc" is not an ASN (0-4294967295, or asdot X.Y)`,
			"line 2, column 1: prefixs: unknown key `prefixs`, did you mean `prefixes`?",
			"line 6, column 5: vpn[0].tunels: unknown key `tunels`, did you mean `tunnels`?",
			"line 7, column 14: vpn[0].gateway: expected one of vgw, tgw, got a list",
		}},
	{"syntax error", "asn: 65000\n  prefixes: [10.0.0.0/8]\n",
		[]string{"line 2: not valid YAML: mapping values are not allowed in this context"}},
	{"tab indentation", "asn: 65000\nvpn:\n\t- name: x\n",
		[]string{"line 3: not valid YAML: found character that cannot start any token"}},
	{"not a mapping", "- asn: 65000\n",
		[]string{"line 1, column 1: expected a mapping of settings (asn: ..., prefixes: ...), got a list"}},
}

func TestParseReportsShapeProblems(t *testing.T) {
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			var probs Problems
			if !errors.As(err, &probs) {
				t.Fatalf("want Problems, got %v", err)
			}
			if got := strings.Split(probs.Error(), "\n"); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", probs, strings.Join(tc.want, "\n"))
			}
		})
	}
}

// goTypeName matches what yaml.v3 and reflect would print of a Go type.
var goTypeName = regexp.MustCompile(`\b(u?int\d*|float\d*|string|bool|struct|map|config\.\w+|\*?[A-Z]\w*Config)\b|!!|\[\]`)

// quoted matches the file's own text as a message quotes it.
var quoted = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|`[^`]*`")

// namesGoType returns the Go type name msg shows, outside what it quotes.
func namesGoType(msg string) string {
	return goTypeName.FindString(quoted.ReplaceAllString(msg, `""`))
}

func TestShapeProblemsNameNoGoTypes(t *testing.T) {
	extra := []string{
		"asn: [1]\n", "asn: {a: 1}\n", "prefixes: [[10.0.0.0/8]]\n", "metrics: {listen: [a]}\n",
		"vpn:\n  - tunnels:\n      - bgp: {prepend: x, hold_time: [1]}\n", "firewall: 3\n",
		"direct_connect:\n  - bgp: {communities: [{a: 1}]}\n", "failover: [1]\n", "pprof: {listen: {}}\n",
		"vpn:\n  - tunnels:\n      - {ipsec: {ike_proposals: a}, wireguard: {listen_port: -1.5}, bfd: {multiplier: 1e9999}}\n",
	}
	inputs := extra
	for _, tc := range decodeCases {
		inputs = append(inputs, tc.yaml)
	}
	for _, in := range inputs {
		_, err := Parse([]byte(in))
		if err == nil {
			t.Errorf("%q: no problem reported", in)
			continue
		}
		var probs Problems
		if !errors.As(err, &probs) {
			t.Errorf("%q: want Problems, got %v", in, err)
		}
		for _, p := range probs {
			if m := namesGoType(p.Msg); m != "" || p.Line == 0 {
				t.Errorf("%q: %q names Go type %q or has no line", in, p, m)
			}
		}
	}
}

// TestLoadKeepsCheckingAfterShapeProblems: Validate still runs on what
// decoded, and does not repeat a field already reported.
func TestLoadKeepsCheckingAfterShapeProblems(t *testing.T) {
	src := strings.Replace(goodYAML, "asn: 65000", "asn: abc\nrouter_ip: 10.0.0.1", 1)
	src = strings.Replace(src, "inside: 169.254.11.0/30", "inside: 169.254.11.0/29", 1)
	src = strings.Replace(src, "persistent_keepalive: 25s", "persistent_keepalive: [25s]", 1)
	path := filepath.Join(t.TempDir(), "cgwd.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadSkipSecrets(path)
	var probs Problems
	if !errors.As(err, &probs) {
		t.Fatalf("want Problems, got %v", err)
	}
	got := probs.Error()
	for _, want := range []string{
		`line 2, column 6: asn: "abc" is not an ASN`,
		"line 3, column 1: router_ip: unknown key `router_ip`, did you mean `router_id`?",
		"line 15, column 33: vpn[0].tunnels[0].wireguard.persistent_keepalive: expected a duration (e.g. 25s), got a list",
		"line 19, column 17: vpn[0].tunnels[1].inside: 169.254.11.0/29 is not a /30", // from Validate, located
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "asn:"); n != 1 {
		t.Errorf("asn reported %d times:\n%s", n, got)
	}
}

func TestParseAliasesAndMerges(t *testing.T) {
	src := strings.Replace(goodYAML, "      - name: cgw-t2\n        kind: ipsec\n", "      - &t2\n        name: cgw-t2\n        kind: ipsec\n", 1)
	src = strings.Replace(src, "direct_connect:", "  - name: vpn2\n    tunnels:\n      - {<<: *t2, name: cgw-t3, outside: {local: 198.51.100.2, remote: 203.0.113.30}, inside: 169.254.12.0/30}\n      - {<<: [*t2], name: cgw-t4, outside: {local: 198.51.100.2, remote: 203.0.113.40}, inside: 169.254.13.0/30}\ndirect_connect:", 1)
	c, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.VPN[1].Tunnels[1]; got.Name != "cgw-t4" || got.Kind != KindIPsec || got.IPsec == nil {
		t.Errorf("merged tunnel: %+v", got)
	}

	// Aliases nested along the config's lists (a billion laughs): the
	// walk stops at its budget instead of expanding every value.
	list := func(item string) string { return "[" + strings.Repeat(item+", ", 49) + item + "]" }
	laughs := "c: &c " + list(`"1:1"`) + "\nt: &t {bgp: {communities: *c}}\nv: &v {tunnels: " + list("*t") + "}\nvpn: " + list("*v") + "\n"
	_, err = Parse([]byte(laughs))
	if err == nil || !strings.Contains(err.Error(), "unknown key `c`") || !strings.Contains(err.Error(), "stopped checking") {
		t.Fatalf("laughs: %v", err)
	}
}

// FuzzParse: any file gives a config or problems, never a panic, and no
// problem names a Go type.
func FuzzParse(f *testing.F) {
	f.Add(goodYAML)
	for _, tc := range decodeCases {
		f.Add(tc.yaml)
	}
	f.Fuzz(func(t *testing.T, src string) {
		c, err := Parse([]byte(src))
		if err == nil {
			c.Validate()
			return
		}
		var probs Problems
		if !errors.As(err, &probs) {
			probs = Problems{{Msg: err.Error()}}
		}
		for _, p := range probs {
			if m := namesGoType(p.Msg); m != "" {
				t.Errorf("%q: %q names Go type %q", src, p, m)
			}
		}
	})
}
