package awsimport

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/cgwd/cgwd/pkg/config"
)

// Every input form says a connection routes statically, and those that
// list its routes (the on-prem CIDRs AWS routes into the tunnels) give them.
func TestStaticConnectionInputs(t *testing.T) {
	onPrem := []netip.Prefix{netip.MustParsePrefix("10.10.0.0/16"), netip.MustParsePrefix("10.11.0.0/16")}
	for _, tc := range []struct {
		file, format string
		routes       []netip.Prefix
	}{
		{"vgw-static.xml", FormatAuto, nil},
		{"aws-cli-static.json", FormatAuto, onPrem}, // a deleted route is left out
		{"aws-cli-static.json", FormatXML, onPrem},
		{"terraform-static.json", FormatTerraform, onPrem},
		{"vgw.xml", FormatAuto, nil},
		{"aws-cli.json", FormatAuto, nil},
	} {
		t.Run(tc.file+"/"+tc.format, func(t *testing.T) {
			c, err := Parse(read(t, tc.file), tc.format)
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.Contains(tc.file, "static"); c.StaticRoutesOnly != want {
				t.Errorf("StaticRoutesOnly = %v, want %v", c.StaticRoutesOnly, want)
			}
			if !slices.Equal(c.Routes, tc.routes) {
				t.Errorf("routes %v, want %v", c.Routes, tc.routes)
			}
		})
	}
}

// A static connection renders as routing: static without bgp; its VPC
// CIDRs come from --static-route, else check-config names them as missing;
// its routes in AWS become the prefixes unless --prefix is given.
func TestRenderStaticConnection(t *testing.T) {
	c, err := Parse(read(t, "aws-cli-static.json"), FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{ASN: 65000}
	missing, err := Check(c, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) != 1 || missing[0].Field != "vpn[0].static_routes" {
		t.Errorf("missing %v, want only vpn[0].static_routes", missing)
	}
	o.StaticRoutes = []netip.Prefix{netip.MustParsePrefix("10.200.0.0/16")}
	yml, err := Render(c, o)
	if err != nil {
		t.Fatal(err)
	}
	noSecret(t, "rendered config", string(yml))
	cfg, err := config.Parse(yml)
	if err != nil {
		t.Fatalf("%v\n%s", err, yml)
	}
	if p := cfg.Validate(); p != nil {
		t.Fatalf("rendered static config rejected:\n%v\n%s", p, yml)
	}
	v := cfg.VPN[0]
	if !v.Static() || len(v.StaticRoutes) != 1 || v.StaticRoutes[0].String() != "10.200.0.0/16" {
		t.Errorf("routing %q, static routes %v\n%s", v.Routing, v.StaticRoutes, yml)
	}
	if got := config.Prefixes(cfg.Prefixes); !slices.Equal(got, c.Routes) {
		t.Errorf("prefixes %v, want the connection's routes %v", got, c.Routes)
	}
	if strings.Contains(string(yml), "        bgp:\n") {
		t.Errorf("a static connection's tunnels got a bgp section:\n%s", yml)
	}
	o.Prefixes = []netip.Prefix{netip.MustParsePrefix("192.168.0.0/16")}
	if yml, err = Render(c, o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(yml), "  - 192.168.0.0/16\n") || !strings.Contains(string(yml), "in AWS (routed into the tunnels): 10.10.0.0/16, 10.11.0.0/16") {
		t.Errorf("--prefix not kept, or AWS's routes not noted:\n%s", yml)
	}
}

func TestBadStaticRoutes(t *testing.T) {
	for _, tc := range []struct{ json, want string }{
		{`{"routes": [{"destination_cidr_block": "10.0.0.1/16"}]}`, "routes[0].destination_cidr_block"},
		{`{"routes": "x"}`, "routes:"},
		{`{"static_routes_only": "maybe"}`, "static_routes_only: want true or false"},
	} {
		var c Connection
		m, err := tfObject([]byte(tc.json))
		if err != nil {
			t.Fatal(err)
		}
		if err := tfStatic(m, &c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.json, err, tc.want)
		}
	}
}
