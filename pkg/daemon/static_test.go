package daemon

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/cgwd/cgwd/pkg/config"
)

// staticYAML is firewallYAML's connection made static, with a second,
// dynamic connection.
func staticYAML(t *testing.T) *config.Config {
	t.Helper()
	src := strings.Replace(firewallYAML, "vpn:\n  - tunnels:\n", "vpn:\n  - routing: static\n    static_routes: [10.200.0.0/16]\n    tunnels:\n", 1)
	src = strings.Replace(src, "direct_connect:\n", `  - name: vpn2
    tunnels:
      - name: cgw-t3
        kind: ipsec
        outside: {local: 198.51.100.2, remote: 203.0.113.30}
        inside: 169.254.12.0/30
        ipsec: {psk_file: /k}
      - name: cgw-t4
        kind: ipsec
        outside: {local: 198.51.100.2, remote: 203.0.113.40}
        inside: 169.254.13.0/30
        ipsec: {psk_file: /k}
direct_connect:
`, 1)
	c, err := config.Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Validate(); p != nil {
		t.Fatal(p)
	}
	return c
}

// A static connection's tunnels are paths without BGP sessions, ranked in
// AWS's order: DX, then the static connection, then the dynamic one.
func TestStaticConnectionRouting(t *testing.T) {
	c := staticYAML(t)
	bc, fc, fo, err := routingConfig(c, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	var peers []string
	for _, p := range bc.Peers {
		peers = append(peers, p.Name)
	}
	if strings.Join(peers, " ") != "dx1 cgw-t3 cgw-t4" {
		t.Errorf("BGP peers %v, want no session for the static connection's tunnels", peers)
	}
	rank := map[string]int{}
	for _, p := range fc.Paths {
		rank[p.Name] = p.Rank
	}
	if !(rank["dx1"] < rank["cgw-t1"] && rank["cgw-t1"] < rank["cgw-t2"] && rank["cgw-t2"] < rank["cgw-t3"] && rank["cgw-t3"] < rank["cgw-t4"]) {
		t.Errorf("ranks %v, want dx1 < static cgw-t1 < cgw-t2 < dynamic cgw-t3 < cgw-t4", rank)
	}
	for _, p := range fo.Paths {
		static := p.Name == "cgw-t1" || p.Name == "cgw-t2"
		if p.Static != static || (static && p.ResetBGPOnDown) {
			t.Errorf("failover path %s: static %v, reset BGP on down %v", p.Name, p.Static, p.ResetBGPOnDown)
		}
		if p.Name == "cgw-t1" && (p.BFD == nil || p.BFD.Peer.String() != "169.254.10.1") {
			t.Errorf("cgw-t1's BFD %+v, want toward AWS's inside address", p.BFD)
		}
	}
	routes := c.StaticRoutes()
	if len(routes) != 2 || routes[0].Tunnel != "cgw-t1" || routes[1].Gateway.String() != "169.254.11.1" {
		t.Errorf("static routes %+v", routes)
	}
}

// Turning a connection static (or back) on a reload needs a restart.
func TestReloadRefusesRoutingChange(t *testing.T) {
	static := staticYAML(t)
	dynamic, err := config.Parse([]byte(firewallYAML))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(restartFields(dynamic, static), " "); got != "vpn[0].routing" {
		t.Errorf("restart fields %q, want vpn[0].routing", got)
	}
	if got := restartFields(static, static); len(got) != 0 {
		t.Errorf("restart fields %q for no change", got)
	}
}
