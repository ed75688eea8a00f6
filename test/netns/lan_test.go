package netns

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/test/netns/labkit"
)

// The core router of TestLANLab: FRR in lab-onprem, eBGP with cgwd over
// lan0 with BFD 300 ms x 3. It announces an on-prem network it reaches
// (10.20.0.0/16, whose 10.20.0.1 is on its loopback), one outside cgwd's
// allow list and one in 169.254.0.0/16.
const (
	lanCoreASN   = "65010"
	lanOnPremNet = "10.20.0.0/16"
	lanOnPremIP  = "10.20.0.1"
	lanDenied    = "10.40.0.0/16"
	lanLinkLocal = "169.254.77.0/24"
)

const lanCoreConf = `frr defaults traditional
hostname core
log file /dev/null
ip route ` + lanDenied + ` blackhole
ip route ` + lanLinkLocal + ` blackhole
router bgp ` + lanCoreASN + `
 bgp router-id ` + labkit.OnPremHost + `
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor ` + labkit.CGWLAN + ` remote-as 65000
 neighbor ` + labkit.CGWLAN + ` timers 3 9
 neighbor ` + labkit.CGWLAN + ` timers connect 1
 neighbor ` + labkit.CGWLAN + ` update-source ` + labkit.OnPremHost + `
 neighbor ` + labkit.CGWLAN + ` bfd
 address-family ipv4 unicast
  network ` + lanOnPremNet + `
  network ` + lanDenied + `
  network ` + lanLinkLocal + `
 exit-address-family
!
`

// lanSection makes FRR cgwd's LAN peer.
var lanSection = labkit.AppendUnless("\nlan:", `
lan:
  interface: lan0
  peers:
    - {name: core, address: `+labkit.OnPremHost+`, peer_asn: `+lanCoreASN+`, keepalive: 3s, hold_time: 9s,
       bfd: {enabled: true, interval: 300ms, multiplier: 3}}
  import: {allow: [10.10.0.0/16, `+lanOnPremNet+`]}
`)

// gobgpShow is what the gobgp CLI says of cgwd's speaker, for a failure message.
func gobgpShow(args ...string) string {
	out, _ := exec.Command(filepath.Join(labkit.Root, "bin/gobgp"), append([]string{"--target", labkit.GobgpAPI}, args...)...).CombinedOutput()
	return string(out)
}

// frrRoute is the part of FRR's `show bgp ipv4 unicast PREFIX json` read here.
type frrRoute struct {
	Paths []struct {
		MED      *int `json:"metric"`
		Nexthops []struct {
			IP string `json:"ip"`
		} `json:"nexthops"`
	} `json:"paths"`
}

// coreMED is the MED of the core's route to prefix from cgwd, or an error
// (no route, or not via cgwd).
func coreMED(core *labkit.FRR, prefix string) (int, error) {
	var r frrRoute
	if err := core.TryVtyshJSON(&r, "show bgp ipv4 unicast "+prefix+" json"); err != nil {
		return 0, err
	}
	if len(r.Paths) == 0 {
		return 0, fmt.Errorf("the core has no route to %s", prefix)
	}
	p := r.Paths[0]
	if len(p.Nexthops) == 0 || p.Nexthops[0].IP != labkit.CGWLAN {
		return 0, fmt.Errorf("the core's route to %s is not via cgwd (%s): %+v", prefix, labkit.CGWLAN, p.Nexthops)
	}
	if p.MED == nil {
		return 0, fmt.Errorf("the core's route to %s has no MED", prefix)
	}
	return *p.MED, nil
}

// waitCoreMED waits until the core routes prefix via cgwd with MED med.
func waitCoreMED(t *testing.T, core *labkit.FRR, prefix string, med int, timeout time.Duration) {
	t.Helper()
	labkit.Eventually(t, timeout, fmt.Sprintf("the core routes %s via cgwd with MED %d", prefix, med), func() error {
		got, err := coreMED(core, prefix)
		if err == nil && got != med {
			err = fmt.Errorf("MED %d", got)
		}
		return err
	})
}

// TestLANLab: cgwd with a LAN BGP session to an FRR core router in
// lab-onprem learns the on-prem network behind it (kernel route, BIRD in
// lab-aws gets it, traffic from the VPC reaches it), refuses what the allow
// list and the link-local rule refuse, and gives the core the VPC prefix
// with the MED of the path in use: DX's, then the VPN's once DX is cut,
// withdrawn once no AWS path is usable.
func TestLANLab(t *testing.T) {
	labkit.Require(t)
	labkit.RequireTools(t, "vtysh")
	labkit.Up(t)
	labkit.MustInNS(t, labkit.OnPrem, "ip", "addr", "add", lanOnPremIP+"/32", "dev", "lo")
	core := labkit.StartFRR(t, labkit.OnPrem, "core", lanCoreConf)
	labkit.StartRouting(t, lanSection)
	labkit.LogOnFailure(t)
	core.WaitEstablished(t, 30*time.Second, labkit.CGWLAN)

	t.Run("ImportsTheOnPremNetwork", func(t *testing.T) {
		labkit.Eventually(t, 10*time.Second, "lab-cgw routes "+lanOnPremNet+" via the core", func() error {
			out, err := labkit.InNS(labkit.CGW, "ip", "route", "show", lanOnPremNet, "proto", "200")
			if err != nil || !strings.Contains(out, "via "+labkit.OnPremHost+" dev lan0") {
				return fmt.Errorf("ip route: %q %v", out, err)
			}
			return nil
		})
		labkit.Eventually(t, 10*time.Second, "BIRD in lab-aws has "+lanOnPremNet+" from cgwd", func() error {
			out, err := labkit.AWSBird.Try("show", "route", lanOnPremNet)
			if err != nil || !strings.Contains(out, labkit.BirdDX) {
				return fmt.Errorf("birdc: %s %v\ncgwd's gobgp:\n%s", out, err, gobgpShow("global", "rib")+gobgpShow("neighbor", labkit.DXPeer, "adj-out"))
			}
			return nil
		})
		// AWS -> cgwd -> the core: the VPC host reaches the on-prem network.
		labkit.Eventually(t, 10*time.Second, "the VPC host pings "+lanOnPremIP, func() error {
			_, err := labkit.InNS(labkit.VPC, "ping", "-c", "1", "-W", "1", lanOnPremIP)
			return err
		})
		for _, p := range []string{lanDenied, lanLinkLocal} {
			if out, _ := labkit.InNS(labkit.CGW, "ip", "route", "show", p, "proto", "200"); strings.TrimSpace(out) != "" {
				t.Errorf("lab-cgw has a route to %s, which the LAN import refuses: %s", p, out)
			}
			if out, _ := labkit.AWSBird.Try("show", "route", p); strings.Contains(out, p) {
				t.Errorf("BIRD got %s from cgwd, which the LAN import refuses:\n%s", p, out)
			}
		}
		st := labkit.Status(t)
		found := false
		for _, p := range st.BGP {
			if p.Name == "core" {
				found = true
				// Received: the three, and the core's echoes of cgwd's exports (gobgp drops them: AS loop).
				if p.Kind != "lan" || !p.Up || p.Accepted != 1 || p.Received < 3 || p.BFD != "Up" {
					t.Errorf("status of the LAN peer: %+v", p)
				}
			}
		}
		if !found {
			t.Errorf("cgwd status shows no LAN peer core: %+v", st.BGP)
		}
		if v, ok := labkit.Scrape(t).Value(`cgwd_bgp_session_info{address="` + labkit.OnPremHost + `",kind="lan",peer="core"}`); !ok || v != 1 {
			t.Errorf("cgwd_bgp_session_info for core = %v (found %v)", v, ok)
		}
	})

	t.Run("ExportsWithTheMEDOfThePathInUse", func(t *testing.T) {
		waitCoreMED(t, core, labkit.VPCNet, 0, 10*time.Second) // DX
		for _, p := range []string{labkit.OnPremNet, lanOnPremNet} {
			if _, err := coreMED(core, p); err == nil {
				t.Errorf("cgwd exports on-prem %s back to the core", p)
			}
		}
		restoreDX := labkit.CutDX(t)
		waitCoreMED(t, core, labkit.VPCNet, 100, 5*time.Second) // BFD on DX (0.9 s), then the tunnel
		// No AWS path at all: both tunnels' underlay goes too. The core
		// loses the route as soon as BFD tells cgwd, long before any hold timer.
		cut := time.Now()
		restoreWAN := labkit.DropIngress(t, labkit.CGW, labkit.WAN)
		labkit.Eventually(t, 5*time.Second, "the core loses "+labkit.VPCNet, func() error {
			if med, err := coreMED(core, labkit.VPCNet); err == nil {
				return fmt.Errorf("still routed via cgwd, MED %d", med)
			}
			return nil
		})
		t.Logf("%s withdrawn from the core %v after the last AWS path went", labkit.VPCNet, time.Since(cut).Round(10*time.Millisecond))
		restoreWAN()
		restoreDX()
	})
}
