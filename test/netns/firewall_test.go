package netns

import (
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/tunnel"
	"github.com/cgwd/cgwd/test/netns/labkit"
)

// labFirewall is the firewall section the test adds to the lab's cgwd.yaml.
const labFirewall = `
firewall:
  enabled: true
  wan_interface: wan0
  icmp_rate: 10/second
`

// underlayAccepted checks that each rule (matched by its text) accepts
// underlay packets that conntrack does not already know: it flushes the
// table until a packet from AWS arrives before one of cgwd's own, so that
// it is new and only its accept rule can let it in.
func underlayAccepted(t *testing.T, rules ...string) {
	t.Helper()
	for _, rule := range rules {
		before := labkit.CgwdCounter(t, rule)
		labkit.Eventually(t, 15*time.Second, "a new underlay flow accepted by "+rule, func() error {
			if n := labkit.CgwdCounter(t, rule); n > before {
				return nil
			}
			labkit.FlushConntrack(t, labkit.CGW)
			for _, dst := range []string{labkit.T1Local, labkit.T2Local} {
				labkit.InNS(labkit.AWS, "ping", "-c", "1", "-W", "1", dst)
			}
			return fmt.Errorf("counter still %d", before)
		})
	}
	for _, tn := range labkit.Status(t).Tunnels {
		if tn.State != tunnel.StateUp {
			t.Errorf("%s is %s after the conntrack flushes", tn.Name, tn.State)
		}
	}
}

// enableFirewall adds the firewall section to the lab's cgwd.yaml unless
// the lab config already has one.
func enableFirewall(t *testing.T) {
	t.Helper()
	labkit.EditConfig(t, labkit.AppendUnless("\nfirewall:", labFirewall))
}

// TestFirewallLab runs cgwd in the WireGuard lab with firewall.enabled and
// checks from lab-inet (the internet side) that BGP, the metrics port and SSH
// on the WAN address are dropped by cgwd's table, while the tunnels, BGP,
// BFD and forwarding keep working; then that SIGTERM removes the table.
func TestFirewallLab(t *testing.T) {
	labkit.Require(t)
	if _, err := os.Stat("/usr/sbin/nft"); err != nil {
		t.Skip("needs nft to inspect the table")
	}
	labkit.Up(t)
	enableFirewall(t)
	// Throwaway listeners on every address of lab-cgw, so that a failed
	// connection can only be the firewall, not a bind address.
	ssh := labkit.ListenTCP(t, labkit.CGW, "0.0.0.0:22")
	metricsWAN := labkit.ListenTCP(t, labkit.CGW, labkit.CGWWAN+":9477")
	labkit.StartCgwd(t)

	t.Run("TableInstalled", func(t *testing.T) {
		// start-cgwd returns once cgwd answers on its control socket, which it
		// opens first; the table follows once the tunnels are up.
		labkit.Eventually(t, 10*time.Second, "table inet cgwd installed", func() error {
			out, err := labkit.InNS(labkit.CGW, "nft", "list", "tables")
			if err != nil || !strings.Contains(out, "table inet cgwd") {
				return fmt.Errorf("nft list tables: %v: %s", err, out)
			}
			return nil
		})
		mss := labkit.Nft(t, labkit.CGW, "list", "chain", "inet", "cgwd", "mss")
		for _, dev := range []string{labkit.T1, labkit.T2} {
			for _, dir := range []string{"oifname", "iifname"} {
				want := fmt.Sprintf(`%s "%s" tcp flags syn / syn,rst tcp option maxseg size > 1380 tcp option maxseg size set 1380`, dir, dev)
				if !strings.Contains(mss, want) {
					t.Errorf("no MSS clamp %q in:\n%s", want, mss)
				}
			}
		}
	})

	t.Run("TunnelsUpAndBGPEstablished", func(t *testing.T) {
		labkit.WaitTunnels(t, 20*time.Second)
		labkit.Eventually(t, 30*time.Second, "three BGP sessions Established", func() error {
			peers := labkit.Status(t).BGP
			if len(peers) != 3 {
				return fmt.Errorf("%d peers", len(peers))
			}
			for _, p := range peers {
				if !p.Up {
					return fmt.Errorf("%s is %s", p.Name, p.State)
				}
			}
			return nil
		})
		// BIRD's BFD packets are a flow of their own (never "established"
		// to conntrack), so they must pass the per-peer accept rules.
		labkit.Eventually(t, 10*time.Second, "BFD from the peers counted by their accept rules", func() error {
			for _, r := range []string{`iifname "cgw-t1" ip saddr 169.254.10.1 udp dport 3784`, `iifname "dx0" ip saddr 169.254.255.1 udp dport 3784`} {
				if labkit.CgwdCounter(t, r) == 0 {
					return fmt.Errorf("rule %s counted nothing", r)
				}
			}
			return nil
		})
	})

	t.Run("TrafficCrossesTunnelsAndForwards", func(t *testing.T) {
		for _, dst := range []string{labkit.T1Local, labkit.T2Local} {
			if out, err := labkit.Ping(labkit.AWS, dst, 3); err != nil {
				t.Errorf("ping %s from lab-aws through the tunnel: %v\n%s", dst, err, out)
			}
		}
		labkit.Eventually(t, 20*time.Second, "ping lab-onprem -> lab-vpc", func() error {
			out, err := labkit.InNS(labkit.OnPrem, "ping", "-c", "1", "-W", "1", labkit.VPCHost)
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
	})

	t.Run("UnderlayFromAWSAcceptedByItsRule", func(t *testing.T) {
		// Tunnel 1 only: lab-aws's wireguard-go for tunnel 2 sends from its
		// primary address 203.0.113.10, not 203.0.113.20, and cgwd's peer
		// roams to it, so tunnel 2 runs on flows cgwd opened (return traffic).
		underlayAccepted(t, "ip saddr 203.0.113.10 udp dport 51820")
	})

	t.Run("InternetCannotReachBGPMetricsOrSSH", func(t *testing.T) {
		before := labkit.CgwdCounter(t, "default deny inbound on WAN")
		bgpBefore := labkit.CgwdCounter(t, "BGP from anyone else")
		for _, port := range []string{"179", "9477", "22"} {
			err := labkit.DialTCP(labkit.Inet, labkit.CGWWAN+":"+port, 2*time.Second)
			var ne net.Error
			if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("connect from lab-inet to 198.51.100.2:%s: %v, want a timeout (dropped)", port, err)
			}
		}
		if n := ssh.Load() + metricsWAN.Load(); n != 0 {
			t.Errorf("%d connections from the internet side were accepted", n)
		}
		if after := labkit.CgwdCounter(t, "default deny inbound on WAN"); after <= before {
			t.Errorf("WAN drop counter %d -> %d: the drops were not the firewall's", before, after)
		}
		if after := labkit.CgwdCounter(t, "BGP from anyone else"); after <= bgpBefore {
			t.Errorf("BGP drop counter %d -> %d", bgpBefore, after)
		}
		// The same listener answers from the LAN, which the firewall leaves alone.
		if err := labkit.DialTCP(labkit.OnPrem, labkit.CGWLAN+":22", 2*time.Second); err != nil {
			t.Errorf("connect from lab-onprem to 10.10.0.1:22: %v", err)
		}
		labkit.Eventually(t, 2*time.Second, "the LAN connection accepted", func() error {
			if ssh.Load() != 1 {
				return fmt.Errorf("%d accepted", ssh.Load())
			}
			return nil
		})
	})

	t.Run("ICMPRateLimited", func(t *testing.T) {
		// 200 echo requests 2 ms apart; 10/second with a burst of 5 lets
		// only 5 plus 10 per second of the run through.
		start := time.Now()
		out, _ := labkit.InNS(labkit.Inet, "ping", "-q", "-c", "200", "-i", "0.002", "-W", "1", labkit.CGWWAN)
		elapsed := time.Since(start)
		m := regexp.MustCompile(`(\d+) received`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no ping summary:\n%s", out)
		}
		got, _ := strconv.Atoi(m[1])
		limit := 5 + int(10*elapsed.Seconds()) + 5 // slack for the bucket's start
		if got == 0 || got > limit {
			t.Errorf("%d of 200 echo requests answered in %v, want 1 to %d:\n%s", got, elapsed, limit, out)
		}
		t.Logf("ICMP: %d of 200 echo requests answered in %v (limit 10/s, burst 5: at most %d)", got, elapsed.Round(time.Millisecond), limit)
	})

	t.Run("SIGTERMRemovesTable", func(t *testing.T) {
		labkit.StopCgwd(t)
		if out, _ := labkit.InNS(labkit.CGW, "nft", "list", "tables"); strings.Contains(out, "cgwd") {
			t.Errorf("table left after SIGTERM:\n%s", out)
		}
		// Without the table the WAN listener answers: it was the firewall.
		if err := labkit.DialTCP(labkit.Inet, labkit.CGWWAN+":22", 2*time.Second); err != nil {
			t.Errorf("after stop, connect from lab-inet to 198.51.100.2:22: %v", err)
		}
		if logs := labkit.Log(); !strings.Contains(logs, "firewall installed") || strings.Contains(logs, "firewall removal failed") {
			t.Errorf("log lacks the firewall's install or shows a failed removal:\n%s", logs)
		}
	})
}

// TestFirewallIPsecLab checks the IPsec rules (UDP 500 and 4500 from the AWS
// endpoints) in the strongSwan lab: tunnels and BGP come up through the
// table, and a new NAT-T flow from AWS passes its accept rule.
func TestFirewallIPsecLab(t *testing.T) {
	labkit.RequireStrongSwan(t)
	labkit.UpIPsec(t)
	enableFirewall(t)
	labkit.StartCgwd(t)
	ipsecTunnelsUp(t, 30*time.Second)
	for _, want := range []string{
		`iifname "wan0" ip saddr 203.0.113.10 udp dport 500 counter`,
		`iifname "wan0" ip saddr 203.0.113.10 udp dport 4500 counter`,
		`iifname "wan0" ip saddr 203.0.113.20 udp dport 500 counter`,
		`iifname "wan0" ip saddr 203.0.113.20 udp dport 4500 counter`,
	} {
		labkit.CgwdCounter(t, want) // fails the test when the rule is missing
	}
	pingBoth(t)
	labkit.Eventually(t, 30*time.Second, "three BGP sessions Established", func() error {
		for _, p := range labkit.Status(t).BGP {
			if !p.Up {
				return fmt.Errorf("%s is %s", p.Name, p.State)
			}
		}
		return nil
	})
	underlayAccepted(t, "ip saddr 203.0.113.10 udp dport 4500")
	if err := labkit.DialTCP(labkit.Inet, labkit.CGWWAN+":179", 2*time.Second); err == nil {
		t.Error("BGP on the WAN address reachable from lab-inet")
	}
}
