package netns

import (
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/tunnel"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// labFirewall is the firewall section the test adds to the lab's cgwd.yaml.
const labFirewall = `
firewall:
  enabled: true
  wan_interface: wan0
  icmp_rate: 10/second
`

// listenInNS starts a TCP listener in ns that counts the connections it
// accepts; it is closed when the test ends.
func listenInNS(t *testing.T, ns, addr string) *atomic.Int64 {
	t.Helper()
	var ln net.Listener
	if err := inNetns(ns, func() (err error) {
		ln, err = net.Listen("tcp4", addr)
		return err
	}); err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, ns, err)
	}
	var n atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed at cleanup
			}
			n.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return &n
}

// dialFromNS opens a TCP connection from ns to addr within timeout.
func dialFromNS(ns, addr string, timeout time.Duration) error {
	return inNetns(ns, func() error {
		c, err := net.DialTimeout("tcp4", addr, timeout)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// nftCounter returns the packets counted by the rule of table inet cgwd in
// lab-cgw whose text contains match.
func nftCounter(t *testing.T, match string) int {
	t.Helper()
	return nftCounterIn(t, "lab-cgw", "cgwd", match)
}

// nftCounterIn returns the packets counted by the rule of inet table in ns
// whose text contains match.
func nftCounterIn(t *testing.T, ns, table, match string) int {
	t.Helper()
	out, err := inNS(ns, "nft", "list", "table", "inet", table)
	if err != nil {
		t.Fatalf("nft list table: %v\n%s", err, out)
	}
	re := regexp.MustCompile(`counter packets (\d+) bytes`)
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, match) {
			if m := re.FindStringSubmatch(line); m != nil {
				n, _ := strconv.Atoi(m[1])
				return n
			}
		}
	}
	t.Fatalf("no counted rule matching %q in:\n%s", match, out)
	return 0
}

// flushConntrack empties lab-cgw's connection tracking table.
func flushConntrack(t *testing.T) {
	t.Helper()
	ns, err := netns.GetFromName("lab-cgw")
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.ConntrackTableFlush(netlink.ConntrackTable); err != nil {
		t.Fatalf("flush conntrack in lab-cgw: %v", err)
	}
}

// underlayAccepted checks that each rule (matched by its text) accepts
// underlay packets that conntrack does not already know: it flushes the
// table until a packet from AWS arrives before one of cgwd's own, so that
// it is new and only its accept rule can let it in.
func underlayAccepted(t *testing.T, rules ...string) {
	t.Helper()
	for _, rule := range rules {
		before := nftCounter(t, rule)
		eventually(t, 15*time.Second, "a new underlay flow accepted by "+rule, func() error {
			if n := nftCounter(t, rule); n > before {
				return nil
			}
			flushConntrack(t)
			for _, dst := range []string{"169.254.10.2", "169.254.11.2"} {
				inNS("lab-aws", "ping", "-c", "1", "-W", "1", dst)
			}
			return fmt.Errorf("counter still %d", before)
		})
	}
	for _, tn := range status(t).Tunnels {
		if tn.State != tunnel.StateUp {
			t.Errorf("%s is %s after the conntrack flushes", tn.Name, tn.State)
		}
	}
}

// enableFirewall adds the firewall section to the lab's cgwd.yaml unless
// the lab config already has one.
func enableFirewall(t *testing.T) {
	t.Helper()
	cfgPath := labState + "/cgwd.yaml"
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), "\nfirewall:") {
		if err := os.WriteFile(cfgPath, append(cfg, labFirewall...), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFirewallLab runs cgwd in the WireGuard lab with firewall.enabled and
// checks from lab-inet (the internet side) that BGP, the metrics port and SSH
// on the WAN address are dropped by cgwd's table, while the tunnels, BGP,
// BFD and forwarding keep working; then that SIGTERM removes the table.
func TestFirewallLab(t *testing.T) {
	requireLab(t)
	if _, err := os.Stat("/usr/sbin/nft"); err != nil {
		t.Skip("needs nft to inspect the table")
	}
	lab(t, "up")
	t.Cleanup(func() { lab(t, "down") })
	enableFirewall(t)
	// Throwaway listeners on every address of lab-cgw, so that a failed
	// connection can only be the firewall, not a bind address.
	ssh := listenInNS(t, "lab-cgw", "0.0.0.0:22")
	metricsWAN := listenInNS(t, "lab-cgw", "198.51.100.2:9477")
	lab(t, "start-cgwd")

	t.Run("TableInstalled", func(t *testing.T) {
		// start-cgwd returns once cgwd answers on its control socket, which it
		// opens first; the table follows once the tunnels are up.
		eventually(t, 10*time.Second, "table inet cgwd installed", func() error {
			out, err := inNS("lab-cgw", "nft", "list", "tables")
			if err != nil || !strings.Contains(out, "table inet cgwd") {
				return fmt.Errorf("nft list tables: %v: %s", err, out)
			}
			return nil
		})
		mss, err := inNS("lab-cgw", "nft", "list", "chain", "inet", "cgwd", "mss")
		if err != nil {
			t.Fatalf("%v\n%s", err, mss)
		}
		for _, dev := range []string{"cgw-t1", "cgw-t2"} {
			for _, dir := range []string{"oifname", "iifname"} {
				want := fmt.Sprintf(`%s "%s" tcp flags syn / syn,rst tcp option maxseg size > 1380 tcp option maxseg size set 1380`, dir, dev)
				if !strings.Contains(mss, want) {
					t.Errorf("no MSS clamp %q in:\n%s", want, mss)
				}
			}
		}
	})

	t.Run("TunnelsUpAndBGPEstablished", func(t *testing.T) {
		eventually(t, 20*time.Second, "both tunnels up", func() error {
			for _, tn := range status(t).Tunnels {
				if tn.State != tunnel.StateUp || tn.LastHandshake.IsZero() {
					return fmt.Errorf("%s is %s", tn.Name, tn.State)
				}
			}
			return nil
		})
		eventually(t, 30*time.Second, "three BGP sessions Established", func() error {
			peers := status(t).BGP
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
		eventually(t, 10*time.Second, "BFD from the peers counted by their accept rules", func() error {
			for _, r := range []string{`iifname "cgw-t1" ip saddr 169.254.10.1 udp dport 3784`, `iifname "dx0" ip saddr 169.254.255.1 udp dport 3784`} {
				if nftCounter(t, r) == 0 {
					return fmt.Errorf("rule %s counted nothing", r)
				}
			}
			return nil
		})
	})

	t.Run("TrafficCrossesTunnelsAndForwards", func(t *testing.T) {
		for _, dst := range []string{"169.254.10.2", "169.254.11.2"} {
			if out, err := inNS("lab-aws", "ping", "-c", "3", "-i", "0.2", "-W", "2", dst); err != nil {
				t.Errorf("ping %s from lab-aws through the tunnel: %v\n%s", dst, err, out)
			}
		}
		eventually(t, 20*time.Second, "ping lab-onprem -> lab-vpc", func() error {
			out, err := inNS("lab-onprem", "ping", "-c", "1", "-W", "1", "10.200.0.10")
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
		before := nftCounter(t, "default deny inbound on WAN")
		bgpBefore := nftCounter(t, "BGP from anyone else")
		for _, port := range []string{"179", "9477", "22"} {
			err := dialFromNS("lab-inet", "198.51.100.2:"+port, 2*time.Second)
			var ne net.Error
			if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("connect from lab-inet to 198.51.100.2:%s: %v, want a timeout (dropped)", port, err)
			}
		}
		if n := ssh.Load() + metricsWAN.Load(); n != 0 {
			t.Errorf("%d connections from the internet side were accepted", n)
		}
		if after := nftCounter(t, "default deny inbound on WAN"); after <= before {
			t.Errorf("WAN drop counter %d -> %d: the drops were not the firewall's", before, after)
		}
		if after := nftCounter(t, "BGP from anyone else"); after <= bgpBefore {
			t.Errorf("BGP drop counter %d -> %d", bgpBefore, after)
		}
		// The same listener answers from the LAN, which the firewall leaves alone.
		if err := dialFromNS("lab-onprem", "10.10.0.1:22", 2*time.Second); err != nil {
			t.Errorf("connect from lab-onprem to 10.10.0.1:22: %v", err)
		}
		eventually(t, 2*time.Second, "the LAN connection accepted", func() error {
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
		out, _ := inNS("lab-inet", "ping", "-q", "-c", "200", "-i", "0.002", "-W", "1", "198.51.100.2")
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
		stopCgwd(t)
		if out, _ := inNS("lab-cgw", "nft", "list", "tables"); strings.Contains(out, "cgwd") {
			t.Errorf("table left after SIGTERM:\n%s", out)
		}
		// Without the table the WAN listener answers: it was the firewall.
		if err := dialFromNS("lab-inet", "198.51.100.2:22", 2*time.Second); err != nil {
			t.Errorf("after stop, connect from lab-inet to 198.51.100.2:22: %v", err)
		}
		logs, _ := os.ReadFile(labState + "/logs/cgwd.log")
		if !strings.Contains(string(logs), "firewall installed") || strings.Contains(string(logs), "firewall removal failed") {
			t.Errorf("log lacks the firewall's install or shows a failed removal:\n%s", logs)
		}
	})
}

// TestFirewallIPsecLab checks the IPsec rules (UDP 500 and 4500 from the AWS
// endpoints) in the strongSwan lab: tunnels and BGP come up through the
// table, and a new NAT-T flow from AWS passes its accept rule.
func TestFirewallIPsecLab(t *testing.T) {
	requireStrongSwan(t)
	ipsecRun(t, labSh, nil, "up")
	t.Cleanup(func() { lab(t, "down") })
	enableFirewall(t)
	ipsecRun(t, labSh, nil, "start-cgwd")
	tunnelsUp(t, 30*time.Second, "cgw-t1", "cgw-t2")
	for _, want := range []string{
		`iifname "wan0" ip saddr 203.0.113.10 udp dport 500 counter`,
		`iifname "wan0" ip saddr 203.0.113.10 udp dport 4500 counter`,
		`iifname "wan0" ip saddr 203.0.113.20 udp dport 500 counter`,
		`iifname "wan0" ip saddr 203.0.113.20 udp dport 4500 counter`,
	} {
		nftCounter(t, want) // fails the test when the rule is missing
	}
	pingBoth(t)
	eventually(t, 30*time.Second, "three BGP sessions Established", func() error {
		for _, p := range status(t).BGP {
			if !p.Up {
				return fmt.Errorf("%s is %s", p.Name, p.State)
			}
		}
		return nil
	})
	underlayAccepted(t, "ip saddr 203.0.113.10 udp dport 4500")
	if err := dialFromNS("lab-inet", "198.51.100.2:179", 2*time.Second); err == nil {
		t.Error("BGP on the WAN address reachable from lab-inet")
	}
}
