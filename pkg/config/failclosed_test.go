package config

import (
	"net/netip"
	"strings"
	"testing"
)

func TestFailClosedDefaultsOn(t *testing.T) {
	c, err := Parse([]byte(goodYAML))
	if err != nil {
		t.Fatal(err)
	}
	if !c.FailClosedOn() || len(c.AWSPrefixList()) != 0 {
		t.Errorf("fail closed %v, aws prefixes %v; want on, none", c.FailClosedOn(), c.AWSPrefixList())
	}
	c, err = Parse([]byte(strings.Replace(goodYAML, "asn: 65000", "asn: 65000\nfail_closed: false\naws_prefixes: [10.200.0.0/16, 10.201.0.0/16]", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Validate(); p != nil {
		t.Fatalf("valid config rejected:\n%v", p)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.200.0.0/16"), netip.MustParsePrefix("10.201.0.0/16")}
	if got := c.AWSPrefixList(); c.FailClosedOn() || len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("fail closed %v, aws prefixes %v", c.FailClosedOn(), got)
	}
}

func TestFailClosedBadAWSPrefixes(t *testing.T) {
	for _, tc := range []struct{ prefixes, want string }{
		{"[10.200.0.1/16]", "aws_prefixes[0]: 10.200.0.1/16 has host bits set (did you mean 10.200.0.0/16?)"},
		{"[10.200.0.0/16, vpc]", `aws_prefixes[1]: "vpc" is not an IPv4 prefix (e.g. 10.10.0.0/16)`},
		{"[10.0.0.0/8]", "aws_prefixes[0]: 10.0.0.0/8 overlaps prefixes[0] 10.10.0.0/16 (on-prem)"},
		{"[169.254.0.0/16]", "aws_prefixes[0]: 169.254.0.0/16 overlaps 169.254.0.0/16 (tunnel inside and Direct Connect addresses)"},
		{"[0.0.0.0/0]", "aws_prefixes[0]: 0.0.0.0/0 overlaps 169.254.0.0/16 (tunnel inside and Direct Connect addresses)"},
		{"[203.0.113.0/24]", "aws_prefixes[0]: 203.0.113.0/24 contains vpn[0].tunnels[1].outside.remote 203.0.113.20: the tunnel's underlay would be unreachable while the tunnels are down"},
	} {
		c, err := Parse([]byte(strings.Replace(goodYAML, "asn: 65000", "asn: 65000\naws_prefixes: "+tc.prefixes, 1)))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, p := range c.Validate() {
			found = found || p.String() == tc.want
		}
		if !found {
			t.Errorf("aws_prefixes %s: want problem %q, got:\n%v", tc.prefixes, tc.want, c.Validate())
		}
	}
}
