package config

import (
	"fmt"
	"strings"
	"testing"
)

// onPrem is n distinct /24 prefixes in YAML flow form.
func onPrem(n int) string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = fmt.Sprintf("10.%d.%d.0/24", 10+i/256, i%256)
	}
	return "prefixes: [" + strings.Join(ps, ", ") + "]"
}

// The limits default to AWS's quotas, the right way round: what AWS may
// send (max_prefixes) and what it accepts (advertise_limit), per gateway kind.
func TestQuotaDefaults(t *testing.T) {
	for _, tc := range []struct {
		gateway                string
		tunnelRecv, tunnelSent int
		dxRecv, dxSent         int
	}{
		{"vgw", 1000, 100, 1000, 100},
		{"tgw", 5000, 1000, 1000, 100},
	} {
		src := strings.Replace(goodYAML, "  - name: vpn1\n", "  - name: vpn1\n    gateway: "+tc.gateway+"\n", 1)
		src = strings.Replace(src, "  - interface: dx0\n", "  - interface: dx0\n    gateway: "+tc.gateway+"\n", 1)
		c, err := Parse([]byte(src))
		if err != nil {
			t.Fatal(err)
		}
		for _, tn := range c.VPN[0].Tunnels {
			if tn.BGP.MaxPrefixes != tc.tunnelRecv || tn.BGP.AdvertiseLimit != tc.tunnelSent {
				t.Errorf("%s tunnel %s: max_prefixes %d advertise_limit %d, want %d %d", tc.gateway, tn.Name, tn.BGP.MaxPrefixes, tn.BGP.AdvertiseLimit, tc.tunnelRecv, tc.tunnelSent)
			}
		}
		if dx := c.DirectConnect[0].BGP; dx.MaxPrefixes != tc.dxRecv || dx.AdvertiseLimit != tc.dxSent {
			t.Errorf("%s DX: max_prefixes %d advertise_limit %d, want %d %d", tc.gateway, dx.MaxPrefixes, dx.AdvertiseLimit, tc.dxRecv, tc.dxSent)
		}
	}
}

// More on-prem prefixes than a session may send: refused by name, or with
// hold-back a warning; exactly the limit is fine.
func TestAdvertiseLimit(t *testing.T) {
	c, err := parseEdited(t, "prefixes: [10.10.0.0/16]", onPrem(100))
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Validate(); p != nil {
		t.Fatalf("100 prefixes refused:\n%v", p)
	}
	if w := c.Warnings(); w != nil {
		t.Errorf("100 prefixes warned: %v", w)
	}

	c, err = parseEdited(t, "prefixes: [10.10.0.0/16]", onPrem(150))
	if err != nil {
		t.Fatal(err)
	}
	probs := c.Validate()
	for _, name := range []string{"cgw-t1", "cgw-t2", "dx1"} {
		want := fmt.Sprintf("prefixes: 150 prefixes, more than the advertise limit of session %s", name)
		if !strings.Contains(probs.Error(), want) {
			t.Errorf("no %q in:\n%v", want, probs)
		}
	}
	if !strings.Contains(probs.Error(), "AWS drops the BGP session of a VPN connection on a virtual private gateway that receives more than 100 routes") {
		t.Errorf("the refusal does not say why:\n%v", probs)
	}

	// A transit gateway's VPN takes 1,000: only DX (100) is over.
	c, _ = Parse([]byte(strings.Replace(strings.Replace(goodYAML, "prefixes: [10.10.0.0/16]", onPrem(150), 1),
		"  - name: vpn1\n", "  - name: vpn1\n    gateway: tgw\n", 1)))
	if probs := c.Validate(); len(probs) != 1 || !strings.Contains(probs[0].Msg, "session dx1") {
		t.Errorf("tgw with 150 prefixes: want one problem, for dx1:\n%v", probs)
	}

	c, _ = parseEdited(t, "prefixes: [10.10.0.0/16]", onPrem(150)+"\nbgp: {advertise_over_limit: hold-back}")
	if p := c.Validate(); p != nil {
		t.Fatalf("hold-back refused:\n%v", p)
	}
	if w := c.Warnings().Error(); !strings.Contains(w, "prefixes: 150 prefixes, more than session cgw-t1 (vpn[0].tunnels[0]) may send: cgwd sends the first 100 and holds back 50") {
		t.Errorf("no hold-back warning for cgw-t1:\n%s", w)
	}

	c, _ = parseEdited(t, "prefixes: [10.10.0.0/16]", "prefixes: [10.10.0.0/16]\nbgp: {advertise_over_limit: drop}")
	if p := c.Validate(); !strings.Contains(p.Error(), `bgp.advertise_over_limit: "drop" is not one of refuse, hold-back`) {
		t.Errorf("bad advertise_over_limit: %v", p)
	}
	c, _ = parseEdited(t, "    peer: 169.254.255.1\n", "    peer: 169.254.255.1\n    bgp: {advertise_limit: 0}\n")
	if p := c.Validate(); !strings.Contains(p.Error(), "direct_connect[0].bgp.advertise_limit: 0 is outside 1-10000000") {
		t.Errorf("advertise_limit 0: %v", p)
	}
}

// ECMP gives both tunnels the same AS path; active-standby prepends 1x/2x;
// an explicit prepend is kept.
func TestECMPPrependsEqually(t *testing.T) {
	c, err := parseEdited(t, "  - name: vpn1\n", "  - name: vpn1\n    mode: ecmp\n")
	if err != nil {
		t.Fatal(err)
	}
	if a, b := *c.VPN[0].Tunnels[0].BGP.Prepend, *c.VPN[0].Tunnels[1].BGP.Prepend; a != 0 || b != 0 {
		t.Errorf("ecmp prepends %d, %d; want 0, 0", a, b)
	}
	c, _ = parseEdited(t, "          psk_file: /KEYFILE\n", "          psk_file: /KEYFILE\n        bgp: {prepend: 3}\n")
	if a, b := *c.VPN[0].Tunnels[0].BGP.Prepend, *c.VPN[0].Tunnels[1].BGP.Prepend; a != 1 || b != 3 {
		t.Errorf("prepends %d, %d; want 1, 3", a, b)
	}
}

// BFD on DX below AWS's 300 ms is valid but warned of; tunnels are not.
func TestDXBFDBelowAWSMinimumWarns(t *testing.T) {
	c, _ := parseEdited(t, "    peer: 169.254.255.1\n", "    peer: 169.254.255.1\n    bfd: {interval: 100ms}\n")
	if p := c.Validate(); p != nil {
		t.Fatalf("refused: %v", p)
	}
	if w := c.Warnings().Error(); !strings.Contains(w, "direct_connect[0].bfd.interval: 100ms is below AWS's Direct Connect minimum of 300ms: AWS will negotiate 300ms") {
		t.Errorf("no warning: %q", w)
	}
	c, _ = parseEdited(t, "        inside: 169.254.10.0/30\n", "        inside: 169.254.10.0/30\n        bfd: {enabled: true, interval: 100ms}\n")
	if w := c.Warnings(); w != nil {
		t.Errorf("tunnel BFD warned: %v", w)
	}
	c, _ = Parse([]byte(goodYAML))
	if w := c.Warnings(); w != nil {
		t.Errorf("300ms warned: %v", w)
	}
}
