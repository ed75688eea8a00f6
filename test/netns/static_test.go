package netns

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/test/netns/labkit"
)

// staticVPN makes the lab's vpn1 a static-routing connection (AWS's
// StaticRoutesOnly): no BGP in its tunnels, the VPC's prefix as its static
// route, BFD inside the tunnels kept as the health check.
var staticVPN = []labkit.Edit{
	labkit.Replace("  - name: vpn1\n", "  - name: vpn1\n    routing: static\n    static_routes: ["+labkit.VPCNet+"]\n"),
	labkit.Replace("        bgp:\n          max_prefixes_restart: 3s      # the max-prefix test waits for the restart\n", ""),
}

// awsStatic turns lab-aws's BIRD into the AWS side of a static connection:
// the tunnels' BGP sessions off and, instead, a static route to on-prem over
// each tunnel, each tracked by BFD to cgwd (as AWS tracks a static
// connection's tunnels by DPD), below DX's BGP route (AWS prefers DX) and
// tunnel 1 before tunnel 2. The DX session stays. The lab's own config file
// is left as it is.
func awsStatic(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(labkit.AWSBirdConf)
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	for _, r := range [][2]string{
		{"protocol bgp aws_t1 from aws {\n", "protocol bgp aws_t1 from aws {\n\tdisabled;\n"},
		{"protocol bgp aws_t2 from aws {\n", "protocol bgp aws_t2 from aws {\n\tdisabled;\n"},
		{"export where source = RTS_BGP;", `export where source = RTS_BGP || proto = "static_t1" || proto = "static_t2";`},
	} {
		if strings.Count(conf, r[0]) != 1 {
			t.Fatalf("%s: %q occurs %d times, want once", labkit.AWSBirdConf, r[0], strings.Count(conf, r[0]))
		}
		conf = strings.Replace(conf, r[0], r[1], 1)
	}
	conf += fmt.Sprintf(`
protocol static static_t1 { ipv4 { preference 90; }; route %[1]s via %[2]s bfd; }
protocol static static_t2 { ipv4 { preference 80; }; route %[1]s via %[3]s bfd; }
`, labkit.OnPremNet, labkit.T1Local, labkit.T2Local)
	file := labkit.State + "/bird-aws-static.conf"
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := labkit.AWSBird.C(t, "configure", `"`+file+`"`); !strings.Contains(out, "Reconfigur") || strings.Contains(out, "error") {
		t.Fatalf("birdc configure %s:\n%s", file, out)
	}
	labkit.AWSBird.WaitEstablished(t, 10*time.Second, false, labkit.BirdT1, labkit.BirdT2)
}

// waitAWSDev waits until lab-aws routes on-prem via dev.
func waitAWSDev(t *testing.T, timeout time.Duration, dev string) {
	t.Helper()
	labkit.Eventually(t, timeout, "lab-aws routes on-prem via "+dev, func() error {
		if got := labkit.RouteDevIn(labkit.AWS, labkit.OnPremHost); got != dev {
			return fmt.Errorf("via %s", got)
		}
		return nil
	})
}

// TestStaticVPNLab: a static-routing VPN connection (no BGP in its
// tunnels) carries the VPC's prefix over tunnel 1, fails over to tunnel 2
// within BFD's detection time, and gives way to Direct Connect, which AWS
// prefers, whenever DX is up.
func TestStaticVPNLab(t *testing.T) {
	labkit.Require(t)
	labkit.Up(t)
	labkit.LogOnFailure(t)
	awsStatic(t)
	labkit.StartCgwd(t, staticVPN...)
	labkit.AWSBird.WaitEstablished(t, 30*time.Second, true, labkit.BirdDX)

	t.Run("DXPreferredOverStaticVPN", func(t *testing.T) {
		labkit.Eventually(t, 20*time.Second, "both static tunnels usable", func() error {
			for _, p := range labkit.Status(t).Paths {
				if p.Kind == "tunnel" && (!p.Usable || p.Routing != "static" || !p.TunnelUp || p.BGPUp) {
					return fmt.Errorf("%+v", p)
				}
			}
			return nil
		})
		labkit.WaitDev(t, 10*time.Second, labkit.DX)
		labkit.PingVPC(t)
		for _, p := range labkit.Status(t).BGP {
			if p.Name == labkit.T1 || p.Name == labkit.T2 {
				t.Errorf("a BGP session for static tunnel %s: %+v", p.Name, p)
			}
		}
		m := labkit.Scrape(t)
		for _, tn := range []string{labkit.T1, labkit.T2} {
			if v, ok := m.Value(fmt.Sprintf(`cgwd_path_info{kind="tunnel",path=%q,routing="static",vpn="vpn1"}`, tn)); !ok || v != 1 {
				t.Errorf("cgwd_path_info of %s with routing=static: %v (found %v)", tn, v, ok)
			}
		}
	})

	restoreDX := labkit.CutDX(t)
	t.Cleanup(func() {
		if restoreDX != nil {
			restoreDX()
		}
	})
	t.Run("DXDownMovesToTunnel1", func(t *testing.T) {
		labkit.WaitDev(t, 5*time.Second, labkit.T1)
		waitAWSDev(t, 5*time.Second, labkit.AWST1)
		labkit.PingVPC(t)
		// The static route is counted over tunnel 1, which has no BGP peer.
		if v, ok := labkit.Scrape(t).Value(`cgwd_path_routes_installed{kind="tunnel",path="cgw-t1"}`); !ok || v != 1 {
			t.Errorf("cgwd_path_routes_installed of cgw-t1 = %v (found %v), want 1 (%s)", v, ok, labkit.VPCNet)
		}
	})

	drop1 := labkit.NewInputFilter(t, labkit.AWS, "cgwdtest_t1")
	t.Run("Tunnel1FailsMovesToTunnel2", func(t *testing.T) {
		rep := labkit.Stream(t, func() { drop1.DropUDP(51820) })
		t.Logf("tunnel 1 fails: %s", rep)
		streamLargeEnough(t, rep)
		gapWithinDetection(t, rep)
		if dev := labkit.RouteDev(); dev != labkit.T2 {
			t.Errorf("traffic via %s, want %s", dev, labkit.T2)
		}
		waitAWSDev(t, 5*time.Second, labkit.AWST2)
		labkit.PingVPC(t)
		m := labkit.Scrape(t)
		bfd, _ := m.Value(`cgwd_failovers_total{from="cgw-t1",reason="bfd-Down",to="cgw-t2"}`)
		tun, _ := m.Value(`cgwd_failovers_total{from="cgw-t1",reason="tunnel-down",to="cgw-t2"}`)
		if bfd+tun != 1 {
			t.Errorf("failovers cgw-t1 -> cgw-t2 by BFD %v or tunnel state %v, want 1:\n%s", bfd, tun, strings.Join(m.Lines("cgwd_failovers_total"), "\n"))
		}
	})

	drop2 := labkit.NewInputFilter(t, labkit.AWS, "cgwdtest_t2")
	t.Run("BothTunnelsFailThenDX", func(t *testing.T) {
		drop2.DropUDP(51821)
		labkit.WaitDev(t, 5*time.Second, "none") // no usable path: dropped, not leaked
		restoreDX()
		restoreDX = nil
		labkit.WaitDev(t, 40*time.Second, labkit.DX)
		waitAWSDev(t, 5*time.Second, labkit.DX)
		labkit.PingVPC(t)
	})

	t.Run("TunnelsBackDXStaysPreferred", func(t *testing.T) {
		drop1.Delete()
		drop2.Delete()
		labkit.Eventually(t, 20*time.Second, "both static tunnels usable again", func() error {
			for _, p := range labkit.Status(t).Paths {
				if p.Kind == "tunnel" && !p.Usable {
					return fmt.Errorf("%s not usable", p.Name)
				}
			}
			return nil
		})
		if dev := labkit.RouteDev(); dev != labkit.DX {
			t.Errorf("with DX and both static tunnels up, traffic via %s, want %s", dev, labkit.DX)
		}
		labkit.PingVPC(t)
	})

	// A reload adds and withdraws static routes with the tunnels up; turning
	// the connection back to BGP needs a restart.
	t.Run("ReloadChangesStaticRoutes", func(t *testing.T) {
		const more = "10.202.0.0/16" // offered by nobody else
		hasRoute := func(want bool) func() error {
			return func() error {
				if _, ok := labkit.CgwdRoutes(t)[more]; ok != want {
					return fmt.Errorf("route %s in lab-cgw: %v", more, ok)
				}
				return nil
			}
		}
		restore := labkit.EditConfig(t, labkit.Replace("static_routes: ["+labkit.VPCNet+"]", "static_routes: ["+labkit.VPCNet+", "+more+"]"))
		labkit.Reload(t, "reload: applied")
		labkit.Eventually(t, 5*time.Second, "the added static route in the kernel", hasRoute(true))
		restore()
		labkit.Reload(t, "reload: applied")
		labkit.Eventually(t, 5*time.Second, "the removed static route gone", hasRoute(false))

		restore = labkit.EditConfig(t, labkit.Replace("    routing: static\n", ""), labkit.Replace("    static_routes: ["+labkit.VPCNet+"]\n", ""))
		labkit.Reload(t, "reload rejected")
		restore()
		if logs := labkit.Log(); !strings.Contains(logs, "vpn[0].routing") || !strings.Contains(logs, "needs a restart") {
			t.Errorf("routing change not refused with vpn[0].routing and needs a restart")
		}
		if dev := labkit.RouteDev(); dev != labkit.DX {
			t.Errorf("after the refused reload, traffic via %s, want %s", dev, labkit.DX)
		}
	})
}
