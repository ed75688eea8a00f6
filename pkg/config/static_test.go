package config

import (
	"bytes"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// staticVPN makes goodYAML's vpn1 a static connection with extra lines
// (already indented) after its routing.
func staticVPN(t *testing.T, extra string) (*Config, error) {
	t.Helper()
	return parseEdited(t, "  - name: vpn1\n", "  - name: vpn1\n    routing: static\n"+extra)
}

func TestStaticConnection(t *testing.T) {
	c, err := staticVPN(t, "    static_routes: [10.200.0.0/16, 10.201.0.0/16]\n")
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Validate(); p != nil {
		t.Fatalf("valid static connection rejected:\n%v", p)
	}
	if !c.VPN[0].Static() || c.VPN[0].Tunnels[0].BGP.PeerASN != 0 {
		t.Errorf("static connection: routing %q, tunnel 1 BGP %+v (want no BGP defaults)", c.VPN[0].Routing, c.VPN[0].Tunnels[0].BGP)
	}
	want := []StaticRoute{
		{"cgw-t1", netip.MustParsePrefix("10.200.0.0/16"), netip.MustParseAddr("169.254.10.1")},
		{"cgw-t1", netip.MustParsePrefix("10.201.0.0/16"), netip.MustParseAddr("169.254.10.1")},
		{"cgw-t2", netip.MustParsePrefix("10.200.0.0/16"), netip.MustParseAddr("169.254.11.1")},
		{"cgw-t2", netip.MustParsePrefix("10.201.0.0/16"), netip.MustParseAddr("169.254.11.1")},
	}
	if got := c.StaticRoutes(); !slices.Equal(got, want) {
		t.Errorf("StaticRoutes = %v, want %v", got, want)
	}
	// No BGP session: no advertise limit applies, whatever the prefixes.
	for _, s := range c.sessions() {
		if strings.HasPrefix(s.field, "vpn[0]") {
			t.Errorf("static connection has a BGP session %s", s.field)
		}
	}
	// The effective config reads back the same, without a bgp section.
	var buf bytes.Buffer
	if err := c.Dump(&buf); err != nil {
		t.Fatal(err)
	}
	back, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatalf("dump does not parse: %v\n%s", err, buf.String())
	}
	if p := back.Validate(); p != nil {
		t.Fatalf("dumped static config rejected:\n%v\n%s", p, buf.String())
	}
	if !back.VPN[0].Static() || len(back.VPN[0].StaticRoutes) != 2 {
		t.Errorf("dump lost the routing: %+v", back.VPN[0])
	}
}

func TestDefaultRoutingIsBGP(t *testing.T) {
	c := parseWith(t, "")
	if c.VPN[0].Routing != RoutingBGP || c.VPN[0].Static() || len(c.StaticRoutes()) != 0 {
		t.Errorf("routing = %q, static routes %v", c.VPN[0].Routing, c.StaticRoutes())
	}
}

func TestStaticConnectionProblems(t *testing.T) {
	cases := []struct {
		name, from, to, field, msg string
	}{
		{"static without routes", "  - name: vpn1\n", "  - name: vpn1\n    routing: static\n",
			"vpn[0].static_routes", "is required with routing: static"},
		{"routes with bgp", "  - name: vpn1\n", "  - name: vpn1\n    static_routes: [10.200.0.0/16]\n",
			"vpn[0].static_routes", "only for routing: static"},
		{"unknown routing", "  - name: vpn1\n", "  - name: vpn1\n    routing: ospf\n",
			"vpn[0].routing", `"ospf" is not one of bgp, static`},
		{"bgp on a static tunnel", "  - name: vpn1\n", "  - name: vpn1\n    routing: static\n    static_routes: [10.200.0.0/16]\n",
			"vpn[0].tunnels[0].bgp", "has no BGP session"},
		{"host bits", "  - name: vpn1\n", "  - name: vpn1\n    routing: static\n    static_routes: [10.200.0.1/16]\n",
			"vpn[0].static_routes[0]", "host bits"},
		{"duplicate", "  - name: vpn1\n", "  - name: vpn1\n    routing: static\n    static_routes: [10.200.0.0/16, 10.200.0.0/16]\n",
			"vpn[0].static_routes[1]", "already vpn[0].static_routes[0]"},
		{"default route", "  - name: vpn1\n", "  - name: vpn1\n    routing: static\n    static_routes: [0.0.0.0/0]\n",
			"vpn[0].static_routes[0]", "default route"},
		{"link local", "  - name: vpn1\n", "  - name: vpn1\n    routing: static\n    static_routes: [169.254.0.0/16]\n",
			"vpn[0].static_routes[0]", "inside addresses"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(goodYAML, tc.from, tc.to, 1)
			if tc.name == "bgp on a static tunnel" {
				src = strings.Replace(src, "          persistent_keepalive: 25s\n", "          persistent_keepalive: 25s\n        bgp: {hold_time: 9s}\n", 1)
			}
			c, err := Parse([]byte(src))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range c.Validate() {
				if p.Field == tc.field && strings.Contains(p.Msg, tc.msg) {
					return
				}
			}
			t.Errorf("no problem %s: %q in:\n%v", tc.field, tc.msg, c.Validate())
		})
	}
}

func TestStaticWithoutHealthCheckWarns(t *testing.T) {
	c, err := staticVPN(t, "    static_routes: [10.200.0.0/16]\n")
	if err != nil {
		t.Fatal(err)
	}
	if w := fields(c.Warnings()); slices.Contains(w, "vpn[0].tunnels[0].probe") {
		t.Errorf("probes on by default, yet warned: %v", w)
	}
	off := strings.Replace(goodYAML, "  - name: vpn1\n", "  - name: vpn1\n    routing: static\n    static_routes: [10.200.0.0/16]\n", 1)
	off = strings.Replace(off, "          persistent_keepalive: 25s\n", "          persistent_keepalive: 25s\n        probe: {enabled: false}\n", 1)
	c, err = Parse([]byte(off))
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Validate(); p != nil {
		t.Fatalf("rejected:\n%v", p)
	}
	if w := fields(c.Warnings()); !slices.Contains(w, "vpn[0].tunnels[0].probe") {
		t.Errorf("no warning for a static tunnel without probes or BFD: %v", w)
	}
}
