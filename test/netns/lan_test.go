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
// lan0 with BFD 300 ms x 3. It announces two on-prem networks (10.20.0.0/16,
// whose 10.20.0.1 is on its loopback, and 10.21.0.0/16), which cgwd
// summarises toward AWS as 10.20.0.0/15, one outside cgwd's allow list and
// one in 169.254.0.0/16.
const (
	lanCoreASN   = "65010"
	lanOnPremNet = "10.20.0.0/16"
	lanOnPremIP  = "10.20.0.1"
	lanOnPrem2   = "10.21.0.0/16"
	lanSummary   = "10.20.0.0/15"
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
  network ` + lanOnPrem2 + `
  network ` + lanDenied + `
  network ` + lanLinkLocal + `
 exit-address-family
!
`

// lanSection makes FRR cgwd's LAN peer; tunnel 1 may send AWS only one
// prefix, so the summary learned from the LAN is held back there.
var lanSection = []labkit.Edit{
	labkit.AppendUnless("\nlan:", `
lan:
  interface: lan0
  peers:
    - {name: core, address: `+labkit.OnPremHost+`, peer_asn: `+lanCoreASN+`, keepalive: 3s, hold_time: 9s,
       bfd: {enabled: true, interval: 300ms, multiplier: 3}}
  import: {allow: [10.10.0.0/16, `+lanSummary+`], aggregate: [`+lanSummary+`]}
`),
	labkit.Replace("          max_prefixes_restart: 3s", "          advertise_limit: 1\n          max_prefixes_restart: 3s"),
}

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
	labkit.StartRouting(t, lanSection...)
	labkit.LogOnFailure(t)
	core.WaitEstablished(t, 30*time.Second, labkit.CGWLAN)

	t.Run("ImportsTheOnPremNetworks", func(t *testing.T) {
		for _, p := range []string{lanOnPremNet, lanOnPrem2} {
			labkit.Eventually(t, 10*time.Second, "lab-cgw routes "+p+" via the core", func() error {
				out, err := labkit.InNS(labkit.CGW, "ip", "route", "show", p, "proto", "200")
				if err != nil || !strings.Contains(out, "via "+labkit.OnPremHost+" dev lan0") {
					return fmt.Errorf("ip route: %q %v", out, err)
				}
				return nil
			})
		}
		labkit.Eventually(t, 10*time.Second, "BIRD in lab-aws has the summary "+lanSummary+" from cgwd", func() error {
			out, err := labkit.AWSBird.Try("show", "route", lanSummary)
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
		// Summarised: AWS gets the /15 and neither /16; tunnel 1 (advertise
		// limit 1) gets only the static prefix, and cgwd says so.
		if out := labkit.AWSBird.C(t, "show", "route", lanSummary); strings.Contains(out, labkit.BirdT1) || !strings.Contains(out, labkit.BirdT2) {
			t.Errorf("BIRD's routes to %s: want them from aws_dx and aws_t2, none from aws_t1 (held back):\n%s", lanSummary, out)
		}
		for _, p := range []string{lanOnPremNet, lanOnPrem2} {
			if out, _ := labkit.AWSBird.Try("show", "route", p); strings.Contains(out, p) {
				t.Errorf("BIRD got %s, which the aggregate %s covers:\n%s", p, lanSummary, out)
			}
		}
		if v, ok := labkit.Scrape(t).Value(`cgwd_bgp_prefixes_held_back{address="` + labkit.T1Peer + `",peer="cgw-t1"}`); !ok || v != 1 {
			t.Errorf("cgwd_bgp_prefixes_held_back for cgw-t1 = %v (found %v), want 1", v, ok)
		}
		if !strings.Contains(labkit.Log(), `msg="bgp: prefixes held back: more than the session's advertise limit" component=bgp peer=cgw-t1`) {
			t.Error("cgwd's log does not name the prefix held back on cgw-t1")
		}
		for _, p := range []string{lanDenied, lanLinkLocal} {
			if out, _ := labkit.InNS(labkit.CGW, "ip", "route", "show", p, "proto", "200"); strings.TrimSpace(out) != "" {
				t.Errorf("lab-cgw has a route to %s, which the LAN import refuses: %s", p, out)
			}
			if out, _ := labkit.AWSBird.Try("show", "route", p); strings.Contains(out, p) {
				t.Errorf("BIRD got %s from cgwd, which the LAN import refuses:\n%s", p, out)
			}
		}
		labkit.Eventually(t, 10*time.Second, "cgwd status shows the LAN peer core up, BFD Up", func() error {
			for _, p := range labkit.Status(t).BGP {
				// Received: the four, and the core's echoes of cgwd's exports (gobgp drops them: AS loop).
				if p.Name == "core" && (p.Kind != "lan" || !p.Up || p.Accepted != 2 || p.Received < 4 || p.BFD != "Up") {
					return fmt.Errorf("%+v", p)
				} else if p.Name == "core" {
					return nil
				}
			}
			return fmt.Errorf("no peer core")
		})
		if v, ok := labkit.Scrape(t).Value(`cgwd_bgp_session_info{address="` + labkit.OnPremHost + `",kind="lan",peer="core"}`); !ok || v != 1 {
			t.Errorf("cgwd_bgp_session_info for core = %v (found %v)", v, ok)
		}
	})

	t.Run("ExportsWithTheMEDOfThePathInUse", func(t *testing.T) {
		waitCoreMED(t, core, labkit.VPCNet, 0, 10*time.Second) // DX
		for _, p := range []string{labkit.OnPremNet, lanOnPremNet, lanSummary} {
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
