package config

import (
	"strings"
	"testing"
)

func TestNumbers(t *testing.T) {
	const dxPeer = "    peer: 169.254.255.1\n"
	cases := []struct {
		name, from, to string
		parseErr       string // wanted Parse error, or
		problem        string // wanted Validate problem, or
		check          func(*Config) bool
	}{
		{name: "asdot asn", from: "asn: 65000", to: "asn: 64086.59904", check: func(c *Config) bool { return c.ASN == 64086*65536+59904 }},
		{name: "asdot trailing zero", from: "asn: 65000", to: "asn: 1.10", check: func(c *Config) bool { return c.ASN == 65546 }},
		{name: "quoted asdot peer_asn", from: dxPeer, to: dxPeer + "    bgp: {peer_asn: \"1.1\"}\n", check: func(c *Config) bool { return c.DirectConnect[0].BGP.PeerASN == 65537 }},
		{name: "asplain 4-byte", from: "asn: 65000", to: "asn: 4200000000", check: func(c *Config) bool { return c.ASN == 4200000000 }},
		{name: "asdot part too big", from: "asn: 65000", to: "asn: 1.65536", parseErr: `asn: "1.65536" is not an ASN`},
		{name: "negative asn", from: "asn: 65000", to: "asn: -1", parseErr: `asn: "-1" is not an ASN`},
		{name: "fractional mtu", from: "        inside: 169.254.10.0/30\n", to: "        inside: 169.254.10.0/30\n        mtu: 1436.9\n", parseErr: "vpn[0].tunnels[0].mtu: 1436.9 is not a whole number"},
		{name: "fractional prepend", from: dxPeer, to: dxPeer + "    bgp: {prepend: 1.5}\n", parseErr: "direct_connect[0].bgp.prepend: 1.5 is not a whole number"},
		{name: "asn 0", from: "asn: 65000", to: "asn: 0", problem: "asn: 0 is not a usable ASN"},
		{name: "peer_asn 0", from: dxPeer, to: dxPeer + "    bgp: {peer_asn: 0}\n", problem: "direct_connect[0].bgp.peer_asn: 0 is not a usable ASN"},
		{name: "hold_time 0", from: dxPeer, to: dxPeer + "    bgp: {hold_time: 0}\n", problem: "direct_connect[0].bgp.hold_time: 0s is not supported (cgwd's BGP speaker would use 90s); set 3s-65535s or leave it out for the default"},
		{name: "max_prefixes 0", from: dxPeer, to: dxPeer + "    bgp: {max_prefixes: 0}\n", problem: "direct_connect[0].bgp.max_prefixes: 0 would mean no limit, which cgwd does not allow; set 1-10000000 or leave it out for AWS's quota (VPN vgw 1000, tgw 5000; DX 1000)"},
		{name: "null keeps default", from: dxPeer, to: dxPeer + "    bgp: {peer_asn: null, max_prefixes: ~}\n", check: func(c *Config) bool {
			return c.DirectConnect[0].BGP.PeerASN == DefaultAWSASN && c.DirectConnect[0].BGP.MaxPrefixes == DefaultMaxPrefixesDX
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseEdited(t, tc.from, tc.to)
			if tc.parseErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.parseErr) {
					t.Fatalf("want parse error %q, got %v", tc.parseErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			probs := c.Validate()
			if tc.check != nil {
				if !tc.check(c) {
					t.Errorf("wrong value decoded: %+v", c)
				}
				if probs != nil {
					t.Errorf("unexpected problems:\n%v", probs)
				}
				return
			}
			for _, p := range probs {
				if p.String() == tc.problem {
					return
				}
			}
			t.Errorf("want problem %q, got:\n%v", tc.problem, probs)
		})
	}
}
