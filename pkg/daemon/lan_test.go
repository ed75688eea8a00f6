package daemon

import (
	"errors"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/bgp"
	"github.com/cgwd/cgwd/pkg/config"
)

const lanYAML = firewallYAML + `
lan:
  interface: lan0
  peers:
    - {name: core, address: 10.10.100.254, peer_asn: 65010, keepalive: 3s, hold_time: 9s, bfd: {enabled: true}}
    - {name: rr, address: 10.10.100.253, peer_asn: 65000, local_address: 10.10.100.1}
  import: {allow: [10.10.0.0/16], aggregate: [10.10.0.0/16]}
`

func lanConfig(t *testing.T, extra string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(lanYAML + extra))
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Validate(); p != nil {
		t.Fatal(p)
	}
	return c
}

// The lan section becomes LAN sessions on the speaker (local address from
// the interface where not given), and the firewall lets their BGP and BFD in.
func TestLANRouting(t *testing.T) {
	c := lanConfig(t, "")
	var asked []string
	local := func(ifname string, peer netip.Addr) (netip.Addr, error) {
		asked = append(asked, ifname+" "+peer.String())
		return netip.MustParseAddr("10.10.100.1"), nil
	}
	bc := bgp.Config{ASN: 65000, Peers: []bgp.PeerConfig{{Name: "dx1", Prepend: 0}, {Name: "cgw-t1", Prepend: 1}}}
	if err := lanRouting(c, &bc, local); err != nil {
		t.Fatal(err)
	}
	if len(asked) != 1 || asked[0] != "lan0 10.10.100.254" {
		t.Errorf("local address asked for %v", asked)
	}
	core, rr := bc.Peers[2], bc.Peers[3]
	if !core.LAN || core.Name != "core" || core.PeerASN != 65010 || core.LocalAddress.String() != "10.10.100.1" ||
		core.Keepalive != 3*time.Second || core.HoldTime != 9*time.Second || core.MaxPrefixes != lanMaxPrefixes {
		t.Errorf("core %+v", core)
	}
	if !rr.LAN || rr.PeerASN != 65000 || rr.LocalAddress.String() != "10.10.100.1" {
		t.Errorf("rr %+v", rr)
	}
	if bc.Peers[0].Prepend != 0 || bc.Peers[1].Prepend != 1 {
		t.Errorf("a primary prepends more: %+v", bc.Peers[:2])
	}
	if bc.LAN.MED != (bgp.KindValues{DX: 0, VPN: 100}) || bc.LAN.LocalPref != (bgp.KindValues{DX: 200, VPN: 100}) || bc.LAN.Replace ||
		len(bc.LAN.Allow) != 1 || len(bc.LAN.Aggregate) != 1 {
		t.Errorf("LAN rules %+v", bc.LAN)
	}
	bfds := lanBFD(c, &bc, slog.Default())
	if b, ok := bfds["core"]; !ok || len(bfds) != 1 || b.Interface != "lan0" || b.Local.String() != "10.10.100.1" || b.Timers.DesiredMinTx != 300*time.Millisecond || b.Timers.DetectMult != 3 {
		t.Errorf("BFD %+v", bfds)
	}
	fw := firewallSpec(c)
	if len(fw.LAN) != 2 || fw.LAN[0].Interface != "lan0" || !fw.LAN[0].BFD || fw.LAN[1].BFD {
		t.Errorf("firewall LAN %+v", fw.LAN)
	}

	// Without an address in the peer's subnet, the error names the peer.
	err := lanRouting(c, &bgp.Config{}, func(string, netip.Addr) (netip.Addr, error) { return netip.Addr{}, errors.New("no address") })
	if err == nil || err.Error() != "lan.peers[0] (core): no address; set local_address" {
		t.Errorf("err = %v", err)
	}
}

// An active-standby secondary prepends standby_prepend more on every AWS
// session and adds standby_med to the MED it sends the LAN; active-active
// changes nothing.
func TestLANStandby(t *testing.T) {
	local := func(string, netip.Addr) (netip.Addr, error) { return netip.MustParseAddr("10.10.100.1"), nil }
	for _, tc := range []struct {
		ha      string
		prepend int
		med     bgp.KindValues
	}{
		{"ha: {role: secondary}", 3, bgp.KindValues{DX: 1000, VPN: 1100}},
		{"ha: {role: secondary, standby_prepend: 2, standby_med: 50}", 2, bgp.KindValues{DX: 50, VPN: 150}},
		{"ha: {role: secondary, mode: active-active}", 0, bgp.KindValues{DX: 0, VPN: 100}},
		{"ha: {role: primary}", 0, bgp.KindValues{DX: 0, VPN: 100}},
	} {
		bc := bgp.Config{Peers: []bgp.PeerConfig{{Name: "dx1"}, {Name: "cgw-t1", Prepend: 1}}}
		if err := lanRouting(lanConfig(t, tc.ha+"\n"), &bc, local); err != nil {
			t.Fatal(err)
		}
		if bc.Peers[0].Prepend != tc.prepend || bc.Peers[1].Prepend != 1+tc.prepend || bc.LAN.MED != tc.med {
			t.Errorf("%s: prepends %d %d, MED %+v", tc.ha, bc.Peers[0].Prepend, bc.Peers[1].Prepend, bc.LAN.MED)
		}
	}
}

func TestLANNextHopAndConnected(t *testing.T) {
	nets := []netip.Prefix{netip.MustParsePrefix("10.10.0.1/24")}
	if !onLink(netip.MustParseAddr("10.10.0.10"), nets) || onLink(netip.MustParseAddr("10.10.0.1"), nets) || onLink(netip.MustParseAddr("10.20.0.1"), nets) {
		t.Error("onLink")
	}
	if !containedIn(netip.MustParsePrefix("10.10.0.0/24"), nets) || !containedIn(netip.MustParsePrefix("10.10.0.128/25"), nets) || containedIn(netip.MustParsePrefix("10.10.0.0/16"), nets) {
		t.Error("containedIn")
	}
}
