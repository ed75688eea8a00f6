package daemon

import (
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/config"
	"github.com/cgwd/cgwd/pkg/firewall"
	"github.com/cgwd/cgwd/pkg/ike"
)

const firewallYAML = `
asn: 65000
prefixes: [10.10.0.0/16]
vpn:
  - tunnels:
      - name: cgw-t1
        kind: wireguard
        outside: {local: 198.51.100.2, remote: 203.0.113.10}
        inside: 169.254.10.0/30
        wireguard: {private_key_file: /k, peer_public_key: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=, listen_port: 51820}
        bfd: {enabled: true}
      - name: cgw-t2
        kind: ipsec
        outside: {local: 198.51.100.2, remote: 203.0.113.20}
        inside: 169.254.11.0/30
        mtu: 1400
        ipsec: {psk_file: /k}
direct_connect:
  - interface: dx0
    local: 169.254.255.2/30
    peer: 169.254.255.1
firewall:
  enabled: true
  wan_interface: wan0
  allow_ssh_from: [192.0.2.0/24, 198.51.100.7/32]
  icmp_rate: 20/second
`

// The firewall's spec is what the config says, each tunnel with the
// underlay ports of its kind.
func TestFirewallSpec(t *testing.T) {
	c, err := config.Parse([]byte(firewallYAML))
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Validate(); p != nil {
		t.Fatal(p)
	}
	s := firewallSpec(c)
	want := firewall.Spec{
		Table: "cgwd", WAN: "wan0",
		Tunnels: []firewall.Tunnel{
			{Netdev: "cgw-t1", Remote: netip.MustParseAddr("203.0.113.10"), UDPPorts: []uint16{51820}, Peer: netip.MustParseAddr("169.254.10.1"), BFD: true, MTU: 1420},
			{Netdev: "cgw-t2", Remote: netip.MustParseAddr("203.0.113.20"), UDPPorts: []uint16{500, 4500}, Peer: netip.MustParseAddr("169.254.11.1"), MTU: 1400},
		},
		DirectConnect: []firewall.Link{{Interface: "dx0", Peer: netip.MustParseAddr("169.254.255.1"), BFD: true}},
		AllowSSHFrom:  []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.51.100.7/32")},
		ICMPRate:      20, ICMPPer: time.Second,
		BGPPort: 179,
	}
	if s.Table != want.Table || s.WAN != want.WAN || !slices.EqualFunc(s.Tunnels, want.Tunnels, func(a, b firewall.Tunnel) bool {
		return a.Netdev == b.Netdev && a.Remote == b.Remote && slices.Equal(a.UDPPorts, b.UDPPorts) && a.Peer == b.Peer && a.BFD == b.BFD && a.MTU == b.MTU
	}) || !slices.Equal(s.DirectConnect, want.DirectConnect) || !slices.Equal(s.AllowSSHFrom, want.AllowSSHFrom) ||
		s.ICMPRate != want.ICMPRate || s.ICMPPer != want.ICMPPer || s.BGPPort != want.BGPPort {
		t.Errorf("firewallSpec =\n%+v\nwant\n%+v", s, want)
	}
}

// Mapping parses no string: a config whose addresses, prefixes and
// communities are garbage (as Validate would refuse them) maps without a
// panic. Before config held typed values, routingConfig called
// netip.MustParse* on these strings.
func TestMappingParsesNoString(t *testing.T) {
	c, err := config.Parse([]byte(`
asn: 65000
router_id: gw.example
prefixes: [10.0.0.0/33]
aws_prefixes: [vpc]
vpn:
  - mode: ecmp
    tunnels:
      - {name: cgw-t1, kind: wireguard, inside: inside, outside: {local: here, remote: there}, wireguard: {private_key_file: /k, peer_public_key: x}}
direct_connect:
  - interface: dx0
    local: 169.254.255.2
    peer: aws
    bgp: {communities: [7224-7100], allow: [everything]}
firewall: {enabled: true, wan_interface: wan0, allow_ssh_from: [anyone], icmp_rate: fast}
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Validate() == nil {
		t.Fatal("Validate accepted the garbage")
	}
	if _, _, _, err := routingConfig(c, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	firewallSpec(c)
}

// Each ike_version maps to its engine version; any is the engine's
// IKEv2-then-IKEv1 Runner, with an IKEv1-capable proposal by default.
func TestIKEVersionMapsToEngine(t *testing.T) {
	psk := t.TempDir() + "/psk"
	if err := os.WriteFile(psk, []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, ver := range []string{"2", "any", "1"} {
		c, err := config.Parse([]byte(`
asn: 65000
prefixes: [10.10.0.0/16]
vpn:
  - tunnels:
      - name: cgw-t1
        kind: ipsec
        outside: {local: 198.51.100.2, remote: 203.0.113.10}
        inside: 169.254.10.0/30
        ipsec: {psk_file: ` + psk + `, ike_version: ` + ver + `}
`))
		if err != nil {
			t.Fatal(err)
		}
		ic, err := ipsecConfig(&c.VPN[0].Tunnels[0], slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]int{"2": 2, "any": ike.VersionAny, "1": 1}[ver]; ic.IKE.Version != want {
			t.Errorf("ike_version %s: engine version %d", ver, ic.IKE.Version)
		}
		if ver == "any" {
			var names []string
			for _, p := range ic.IKE.IKEProposals {
				names = append(names, p.String())
			}
			if got := strings.Join(names, ","); got != "aes256gcm16-prfsha384-ecp384,aes256-prfsha384-sha384-ecp384" {
				t.Errorf("ike_version any: default IKE proposals %s have none for IKEv1", got)
			}
		}
	}
}

// An ipsec tunnel without mtu takes its MTU from the negotiated suite; one
// with mtu keeps it.
func TestIPsecAutoMTUUnlessConfigured(t *testing.T) {
	psk := t.TempDir() + "/psk"
	if err := os.WriteFile(psk, []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := strings.ReplaceAll(firewallYAML, "{psk_file: /k}", "{psk_file: "+psk+"}")
	for _, tc := range []struct {
		yaml string
		auto bool
		mtu  int
	}{{src, false, 1400}, {strings.ReplaceAll(src, "        mtu: 1400\n", ""), true, config.DefaultTunnelMTU}} {
		c, err := config.Parse([]byte(tc.yaml))
		if err != nil {
			t.Fatal(err)
		}
		ic, err := ipsecConfig(&c.VPN[0].Tunnels[1], slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if ic.AutoMTU != tc.auto || ic.MTU != tc.mtu {
			t.Errorf("AutoMTU %v MTU %d, want %v %d", ic.AutoMTU, ic.MTU, tc.auto, tc.mtu)
		}
	}
}

// mode: ecmp maps to the same prepend on both tunnels' sessions (none), and
// the advertise limits to AWS's quotas per session.
func TestECMPAndAdvertiseLimitsMapped(t *testing.T) {
	c, err := config.Parse([]byte(strings.Replace(firewallYAML, "  - tunnels:\n", "  - mode: ecmp\n    tunnels:\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	bc, _, _, err := routingConfig(c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][2]int{}
	for _, p := range bc.Peers {
		got[p.Name] = [2]int{p.Prepend, p.AdvertiseLimit}
	}
	want := map[string][2]int{"cgw-t1": {0, 100}, "cgw-t2": {0, 100}, "dx1": {0, 100}}
	if !maps.Equal(got, want) {
		t.Errorf("prepend, advertise limit per peer: %v, want %v", got, want)
	}
}
