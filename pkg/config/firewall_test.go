package config

import (
	"strings"
	"testing"
	"time"
)

func TestFirewallDefaultsOff(t *testing.T) {
	c, err := Parse([]byte(goodYAML))
	if err != nil {
		t.Fatal(err)
	}
	if c.Firewall.Enabled || c.Firewall.ICMPRate.String() != DefaultICMPRate || len(c.Firewall.AllowSSHFrom) != 0 {
		t.Errorf("firewall defaults: %+v", c.Firewall)
	}
}

func TestFirewallValidate(t *testing.T) {
	cases := []struct {
		name, section string
		want          []string // every problem, in order; nil means valid
	}{
		{"valid", "firewall: {enabled: true, wan_interface: wan0, allow_ssh_from: [192.0.2.0/24], icmp_rate: 5/minute}", nil},
		{"off needs no interface", "firewall: {enabled: false}", nil},
		{"missing wan", "firewall: {enabled: true}",
			[]string{"firewall.wan_interface: is required when the firewall is enabled (the netdev facing the internet, e.g. eth0)"}},
		{"wan is a tunnel", "firewall: {enabled: true, wan_interface: cgw-t2}",
			[]string{`firewall.wan_interface: "cgw-t2" is tunnel vpn[0].tunnels[1]; the WAN interface carries the tunnels`}},
		{"wan is dx", "firewall: {enabled: true, wan_interface: dx0}",
			[]string{`firewall.wan_interface: "dx0" is Direct Connect link direct_connect[0]'s interface`}},
		{"bad wan name", "firewall: {enabled: true, wan_interface: a-very-long-interface-name}",
			[]string{`firewall.wan_interface: "a-very-long-interface-name" is not a valid interface name`}},
		{"bad ssh prefix and rate", "firewall: {enabled: true, wan_interface: wan0, allow_ssh_from: [192.0.2.0/24, 192.0.2.1/24, nope], icmp_rate: 10/fortnight}",
			[]string{
				"firewall.allow_ssh_from[1]: 192.0.2.1/24 has host bits set (did you mean 192.0.2.0/24?)",
				`firewall.allow_ssh_from[2]: "nope" is not an IPv4 prefix (e.g. 10.10.0.0/16)`,
				`firewall.icmp_rate: "10/fortnight" is not a rate like 10/second (1-1000000 per second, minute or hour)`,
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(goodYAML + tc.section + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range c.Validate() {
				got = append(got, p.String())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestFirewallUnknownFieldRejected(t *testing.T) {
	if _, err := Parse([]byte(goodYAML + "firewall: {enabled: true, wan: eth0}\n")); err == nil || !strings.Contains(err.Error(), "wan") {
		t.Errorf("unknown field accepted: %v", err)
	}
}

func TestParseRate(t *testing.T) {
	for s, want := range map[string]struct {
		n   uint64
		per time.Duration
	}{"10/second": {10, time.Second}, "1/minute": {1, time.Minute}, "1000000/hour": {1000000, time.Hour}} {
		n, per, err := ParseRate(s)
		if err != nil || n != want.n || per != want.per {
			t.Errorf("ParseRate(%q) = %d, %v, %v", s, n, per, err)
		}
	}
	for _, s := range []string{"", "10", "0/second", "-1/second", "10/sec", "1000001/second", "/second", "x/second", "10/second/2"} {
		if _, _, err := ParseRate(s); err == nil {
			t.Errorf("ParseRate(%q) accepted", s)
		}
	}
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"10/second", "1/minute", "1000000/hour", "0/second", "10/fortnight", "/", "", "99999999999999999999/second"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, per, err := ParseRate(s)
		if err != nil {
			if !strings.Contains(err.Error(), "is not a rate") {
				t.Fatalf("error %q does not say what is wrong", err)
			}
			return
		}
		if n < 1 || n > 1_000_000 || (per != time.Second && per != time.Minute && per != time.Hour) {
			t.Fatalf("ParseRate(%q) = %d, %v", s, n, per)
		}
	})
}
