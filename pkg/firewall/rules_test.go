package firewall

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// testSpec is a gateway with a WireGuard tunnel (with BFD), an IPsec tunnel
// and a Direct Connect link, locked down with SSH from two prefixes.
func testSpec() Spec {
	return Spec{
		Table: "cgwd", WAN: "wan0",
		Tunnels: []Tunnel{
			{Netdev: "cgw-t1", Remote: netip.MustParseAddr("203.0.113.10"), UDPPorts: []uint16{51820}, Peer: netip.MustParseAddr("169.254.10.1"), BFD: true, MTU: 1420},
			{Netdev: "cgw-t2", Remote: netip.MustParseAddr("203.0.113.20"), UDPPorts: []uint16{500, 4500}, Peer: netip.MustParseAddr("169.254.11.1"), MTU: 1400},
		},
		DirectConnect: []Link{{Interface: "dx0", Peer: netip.MustParseAddr("169.254.255.1"), BFD: true}},
		AllowSSHFrom:  []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.51.100.7/32")},
		ICMPRate:      20, ICMPPer: time.Second,
		BGPPort: 179,
	}
}

func render(rs []Rule, chain string) []string {
	var out []string
	for _, r := range rs {
		if r.Chain == chain {
			out = append(out, r.String())
		}
	}
	return out
}

func TestRulesInput(t *testing.T) {
	got := render(Rules(testSpec()), ChainInput)
	want := []string{
		`iifname "wan0" icmp type echo-request limit rate over 20/second counter drop comment "ICMP echo over the rate limit"`,
		`iifname "wan0" icmpv6 type echo-request limit rate over 20/second counter drop comment "ICMP echo over the rate limit"`,
		`ct state established,related accept comment "return traffic"`,
		`iifname "lo" accept`,
		`iifname "cgw-t1" ip saddr 169.254.10.1 tcp dport 179 counter accept comment "BGP from tunnel cgw-t1"`,
		`iifname "cgw-t1" ip saddr 169.254.10.1 udp dport 3784 counter accept comment "BFD from tunnel cgw-t1"`,
		`iifname "cgw-t1" ip saddr 169.254.10.1 udp dport 3785 counter accept comment "BFD from tunnel cgw-t1"`,
		`iifname "cgw-t2" ip saddr 169.254.11.1 tcp dport 179 counter accept comment "BGP from tunnel cgw-t2"`,
		`iifname "dx0" ip saddr 169.254.255.1 tcp dport 179 counter accept comment "BGP from Direct Connect dx0"`,
		`iifname "dx0" ip saddr 169.254.255.1 udp dport 3784 counter accept comment "BFD from Direct Connect dx0"`,
		`iifname "dx0" ip saddr 169.254.255.1 udp dport 3785 counter accept comment "BFD from Direct Connect dx0"`,
		`tcp dport 179 counter drop comment "BGP from anyone else"`,
		`udp dport 3784 counter drop comment "BFD from anyone else"`,
		`udp dport 3785 counter drop comment "BFD from anyone else"`,
		`iifname "wan0" ip saddr 203.0.113.10 udp dport 51820 counter accept comment "underlay of tunnel cgw-t1"`,
		`iifname "wan0" ip saddr 203.0.113.20 udp dport 500 counter accept comment "underlay of tunnel cgw-t2"`,
		`iifname "wan0" ip saddr 203.0.113.20 udp dport 4500 counter accept comment "underlay of tunnel cgw-t2"`,
		`iifname "wan0" ip saddr 192.0.2.0/24 tcp dport 22 counter accept comment "SSH"`,
		`iifname "wan0" ip saddr 198.51.100.7 tcp dport 22 counter accept comment "SSH"`,
		`iifname "wan0" icmpv6 type nd-router-solicit accept`,
		`iifname "wan0" icmpv6 type nd-router-advert accept`,
		`iifname "wan0" icmpv6 type nd-neighbor-solicit accept`,
		`iifname "wan0" icmpv6 type nd-neighbor-advert accept`,
		`iifname "wan0" meta l4proto icmp limit rate 20/second accept`,
		`iifname "wan0" meta l4proto ipv6-icmp limit rate 20/second accept`,
		`iifname "wan0" counter drop comment "default deny inbound on WAN"`,
	}
	if d := diff(got, want); d != "" {
		t.Error(d)
	}
}

func TestRulesForwardAndMSS(t *testing.T) {
	rs := Rules(testSpec())
	if d := diff(render(rs, ChainForward), []string{
		`iifname "wan0" ct state established,related accept`,
		`iifname "wan0" counter drop comment "default deny inbound on WAN"`,
	}); d != "" {
		t.Error(d)
	}
	if d := diff(render(rs, ChainMSS), []string{
		`oifname "cgw-t1" tcp flags syn / syn,rst tcp option maxseg size > 1380 tcp option maxseg size set 1380`,
		`iifname "cgw-t1" tcp flags syn / syn,rst tcp option maxseg size > 1380 tcp option maxseg size set 1380`,
		`oifname "cgw-t2" tcp flags syn / syn,rst tcp option maxseg size > 1360 tcp option maxseg size set 1360`,
		`iifname "cgw-t2" tcp flags syn / syn,rst tcp option maxseg size > 1360 tcp option maxseg size set 1360`,
	}); d != "" {
		t.Error(d)
	}
}

// Without SSH prefixes, without a BGP listener and without BFD no rule
// accepts SSH, BGP or BFD; BGP and BFD are still dropped from strangers.
func TestRulesMinimal(t *testing.T) {
	y := testSpec()
	y.AllowSSHFrom = nil
	y.Tunnels[0].BFD = false
	y.DirectConnect[0].BFD = false
	y.BGPPort = 0 // bgp: {listen_port: -1}
	for _, r := range Rules(y) {
		s := r.String()
		if r.Verdict == Accept && (strings.Contains(s, "dport 22") || strings.Contains(s, "dport 179") || strings.Contains(s, "dport 378")) {
			t.Errorf("unexpected rule %s", s)
		}
	}
	got := render(Rules(y), ChainInput)
	if !slices.Contains(got, `tcp dport 179 counter drop comment "BGP from anyone else"`) {
		t.Errorf("BGP not dropped:\n%s", strings.Join(got, "\n"))
	}
}

func TestExprsMatchRendering(t *testing.T) {
	// Spot checks of the bytecode; the kernel round trip in nft_test.go
	// checks every rule against nft's own decoding.
	typ := uint8(135)
	for _, tc := range []struct {
		r    Rule
		want int
	}{
		{Rule{Verdict: Accept}, 1},
		{Rule{IIf: "wan0", Counter: true, Verdict: Drop}, 4},
		{Rule{IIf: "wan0", SAddr: netip.MustParsePrefix("192.0.2.0/24"), Proto: ProtoTCP, DPort: 22}, 12},
		{Rule{IIf: "wan0", SAddr: netip.MustParsePrefix("192.0.2.1/32"), Proto: ProtoTCP, DPort: 22}, 11},
		{Rule{Proto: ProtoICMPv6, ICMPType: &typ}, 5},
		{Rule{OIf: "t", Proto: ProtoTCP, SYN: true, Verdict: ClampMSS, MSS: 1380}, 11},
	} {
		if got := len(tc.r.Exprs()); got != tc.want {
			t.Errorf("%s: %d expressions, want %d", tc.r, got, tc.want)
		}
	}
}

func diff(got, want []string) string {
	if slices.Equal(got, want) {
		return ""
	}
	return "got:\n  " + strings.Join(got, "\n  ") + "\nwant:\n  " + strings.Join(want, "\n  ")
}
