package netns

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cgwd/cgwd/test/netns/labkit"
)

// TestSelectionLab checks that cgwd chooses among its paths as AWS expects,
// against the lab's AWS-behaving BIRD (bird-aws.conf): the DX before the
// tunnels, the tunnels by the MED AWS sends, gobgp's best path the one the
// kernel uses, the symmetry guard and follow_aws, and ECMP both ways.
func TestSelectionLab(t *testing.T) {
	labkit.Require(t)
	labkit.Up(t)
	// The symmetry guard samples every second here (5 s by default).
	labkit.StartRouting(t, labkit.Replace("  hold_down: 2s", "  hold_down: 2s\n  symmetry: {interval: 1s}"))
	labkit.LogOnFailure(t)
	bird := labkit.AWSBird

	t.Run("GobgpBestIsTheKernelsPath", func(t *testing.T) {
		best := gobgpBest(t, labkit.VPCNet)
		if best.neighbor != labkit.DXPeer || best.localPref != 300 {
			t.Errorf("gobgp best %+v, want DX (%s) with local preference 300", best, labkit.DXPeer)
		}
		bestIsKernelPath(t, labkit.DXPeer, labkit.DX)
		// Tunnel 2 preferred over DX (as a Private IP VPN over DX would be).
		restore := labkit.EditConfig(t, labkit.ReplaceLast("        bfd: {enabled: true, interval: 300ms, multiplier: 3}", "        preference: 400\n        bfd: {enabled: true, interval: 300ms, multiplier: 3}"))
		labkit.Reload(t, "reload: applied")
		labkit.WaitDev(t, 10*time.Second, labkit.T2)
		bestIsKernelPath(t, labkit.T2Peer, labkit.T2)
		if best := gobgpBest(t, labkit.VPCNet); best.localPref != 400 {
			t.Errorf("gobgp best %+v, want local preference 400", best)
		}
		restore()
		labkit.Reload(t, "reload: applied")
		labkit.WaitDev(t, 10*time.Second, labkit.DX)
		bestIsKernelPath(t, labkit.DXPeer, labkit.DX)
	})

	// The tunnels from here on: DX's session is down, disabled in BIRD's
	// config (a runtime `birdc disable` ends at the next `birdc configure`).
	restoreDX := birdConf(t, "protocol bgp aws_dx from aws {\n", "protocol bgp aws_dx from aws {\n\tdisabled;\n")
	defer func() {
		restoreDX()
		labkit.WaitDev(t, 30*time.Second, labkit.DX)
	}()
	labkit.WaitDev(t, 15*time.Second, labkit.T1)

	t.Run("MEDOnTunnel2MovesEgress", func(t *testing.T) {
		// Equal attributes (MED 100 on both): tunnel 1, by the configured
		// order (gobgp's tie-break is the older route: not compared here).
		sessions := bird.Since(t)
		restore := awsMED(t, "T2_MED", 50) // AWS now prefers tunnel 2
		labkit.WaitDev(t, 10*time.Second, labkit.T2)
		_, tx := labkit.TunnelBytes(t, labkit.T2)
		labkit.PingVPC(t)
		if _, after := labkit.TunnelBytes(t, labkit.T2); after <= tx {
			t.Errorf("cgw-t2 sent nothing new (%d -> %d): the ping did not leave by tunnel 2", tx, after)
		}
		best := gobgpBest(t, labkit.VPCNet)
		if best.med != 50 || best.localPref != 100 {
			t.Errorf("gobgp best %+v, want MED 50 and local preference 100", best)
		}
		bestIsKernelPath(t, labkit.T2Peer, labkit.T2)
		restore()
		labkit.WaitDev(t, 10*time.Second, labkit.T1)
		now := bird.Since(t)
		for _, p := range []string{labkit.BirdT1, labkit.BirdT2} {
			if !labkit.SameSince(now[p], sessions[p]) {
				t.Errorf("a MED change reset session %s: %v -> %v", p, sessions[p], now[p])
			}
		}
	})

	t.Run("SymmetryGuardAndFollowAWS", func(t *testing.T) {
		// cgwd prepends tunnel 1 more than tunnel 2: AWS sends on tunnel 2,
		// while cgwd, the attributes AWS sends being equal, uses tunnel 1.
		prepend := labkit.Replace("max_prefixes_restart: 3s", "max_prefixes_restart: 3s\n          prepend: 3")
		restore := labkit.EditConfig(t, prepend)
		defer func() {
			restore()
			labkit.Reload(t, "reload: applied")
			labkit.WaitDev(t, 10*time.Second, labkit.T1)
		}()
		labkit.Reload(t, "reload: applied")
		labkit.Eventually(t, 10*time.Second, "lab-aws routes on-prem via aws-t2", func() error {
			if out, _ := labkit.InNS(labkit.AWS, "ip", "route", "get", labkit.OnPremHost); !strings.Contains(out, "dev "+labkit.AWST2) {
				return fmt.Errorf("%s", strings.TrimSpace(out))
			}
			return nil
		})
		stop, _ := flows(t, labkit.VPC, labkit.OnPremHost, 4, 2000, 20*time.Second) // 100/s
		defer stop()
		waitMetric(t, `cgwd_path_asymmetric{path="cgw-t2",vpn="vpn1"}`, 1)
		waitMetric(t, `cgwd_path_aws_sending{path="cgw-t2",vpn="vpn1"}`, 1)
		if dev := labkit.RouteDev(); dev != labkit.T1 {
			t.Fatalf("without follow_aws cgwd sends via %s, want cgw-t1 (the configured order)", dev)
		}
		labkit.EditConfig(t, labkit.Replace("  - name: vpn1\n", "  - name: vpn1\n    follow_aws: true\n"))
		labkit.Reload(t, "reload: applied")
		labkit.WaitDev(t, 10*time.Second, labkit.T2)
		waitMetric(t, `cgwd_path_asymmetric{path="cgw-t2",vpn="vpn1"}`, 0)
		stop()
	})

	t.Run("ECMPBothWays", func(t *testing.T) {
		restore := labkit.EditConfig(t, labkit.ECMP)
		defer func() {
			restore()
			labkit.Reload(t, "reload: applied")
		}()
		labkit.Reload(t, "reload: applied")
		// AWS's side as a TGW with ECMP: both tunnels in lab-aws's route,
		// flows hashed on their ports.
		defer birdConf(t, "merge paths off;", "merge paths on;")()
		old := strings.TrimSpace(labkit.MustInNS(t, labkit.AWS, "sysctl", "-n", "net.ipv4.fib_multipath_hash_policy"))
		labkit.MustInNS(t, labkit.AWS, "sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy=1")
		defer labkit.InNS(labkit.AWS, "sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy="+old)
		labkit.Eventually(t, 15*time.Second, "lab-aws routes on-prem over both tunnels", func() error {
			out, _ := labkit.InNS(labkit.AWS, "ip", "route", "show", labkit.OnPremNet)
			if !strings.Contains(out, "dev "+labkit.AWST1) || !strings.Contains(out, "dev "+labkit.AWST2) {
				return fmt.Errorf("%s", strings.TrimSpace(out))
			}
			return nil
		})
		labkit.Eventually(t, 10*time.Second, "cgwd uses both tunnels", func() error {
			act := map[string]bool{}
			for _, p := range labkit.Status(t).Paths {
				act[p.Name] = p.Active
			}
			if !act[labkit.T1] || !act[labkit.T2] {
				return fmt.Errorf("active %v", act)
			}
			return nil
		})
		const n, per = 16, 50
		rx1, tx1 := netdevPackets(t, labkit.T1)
		rx2, tx2 := netdevPackets(t, labkit.T2)
		_, wait := flows(t, labkit.VPC, labkit.OnPremHost, n, per*n, time.Second)
		wait()
		_, wait = flows(t, labkit.OnPrem, labkit.VPCHost, n, per*n, time.Second)
		wait()
		rx1b, tx1b := netdevPackets(t, labkit.T1)
		rx2b, tx2b := netdevPackets(t, labkit.T2)
		t.Logf("%d flows of %d packets each way: from AWS cgw-t1 %d, cgw-t2 %d; to AWS cgw-t1 %d, cgw-t2 %d",
			n, per, rx1b-rx1, rx2b-rx2, tx1b-tx1, tx2b-tx2)
		// Each tunnel carries at least one flow's packets each way (control
		// traffic in that second is a handful).
		for name, d := range map[string]uint64{"from AWS on cgw-t1": rx1b - rx1, "from AWS on cgw-t2": rx2b - rx2, "to AWS on cgw-t1": tx1b - tx1, "to AWS on cgw-t2": tx2b - tx2} {
			if d < per {
				t.Errorf("%s: %d packets, want at least %d (one flow)", name, d, per)
			}
		}
	})

	t.Run("AWSDropsASessionOverItsQuota", testAWSDropsOverQuota)
}

// testAWSDropsOverQuota has cgwd send tunnel 2 one route more than AWS's
// quota (hold-back keeps tunnel 1 at 100, tunnel 2's limit raised to 200):
// the AWS-behaving BIRD drops that session, as AWS does, and only that one.
func testAWSDropsOverQuota(t *testing.T) {
	bird := labkit.AWSBird
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf("10.11.%d.0/24", i)
	}
	before := bird.Since(t)
	logBefore, _ := os.ReadFile(labkit.AWSBirdLog)
	restore := labkit.EditConfig(t,
		labkit.Replace("prefixes: [10.10.0.0/16]", "prefixes: ["+strings.Join(many, ", ")+"]"),
		labkit.Replace("\nbgp:\n", "\nbgp:\n  advertise_over_limit: hold-back\n"),
		labkit.ReplaceLast("        bfd: {enabled: true, interval: 300ms, multiplier: 3}", "        bgp: {advertise_limit: 200}\n        bfd: {enabled: true, interval: 300ms, multiplier: 3}"))
	defer func() {
		restore()
		labkit.Reload(t, "reload: applied")
		bird.WaitEstablished(t, 30*time.Second, true, labkit.BirdT1, labkit.BirdT2)
	}()
	labkit.Reload(t, "reload: applied")
	labkit.Eventually(t, 15*time.Second, "BIRD drops aws_t2 at its receive limit", func() error {
		b, _ := os.ReadFile(labkit.AWSBirdLog)
		if !strings.Contains(string(b[min(len(logBefore), len(b)):]), "Protocol aws_t2 hits route receive limit (100), action: restart") {
			return fmt.Errorf("not in %s", labkit.AWSBirdLog)
		}
		return nil
	})
	if now := bird.Since(t); !labkit.SameSince(now[labkit.BirdT1], before[labkit.BirdT1]) {
		t.Errorf("aws_t1 (100 routes, at the quota) was reset too: %v -> %v", before[labkit.BirdT1], now[labkit.BirdT1])
	}
}

// awsMED sets one of bird-aws.conf's MED constants and reconfigures BIRD;
// restore puts 100 back.
func awsMED(t *testing.T, name string, med int) (restore func()) {
	t.Helper()
	return birdConf(t, fmt.Sprintf("define %s = 100;", name), fmt.Sprintf("define %s = %d;", name, med))
}

// birdConf replaces from with to in lab-aws's BIRD config and has BIRD
// reload it; restore undoes it.
func birdConf(t *testing.T, from, to string) (restore func()) {
	t.Helper()
	b, err := os.ReadFile(labkit.AWSBirdConf)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), from) {
		t.Fatalf("%s has no %q", labkit.AWSBirdConf, from)
	}
	write := func(s string) {
		if err := os.WriteFile(labkit.AWSBirdConf, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		labkit.AWSBird.C(t, "configure")
	}
	write(strings.Replace(string(b), from, to, 1))
	return func() { write(string(b)) }
}

// bgpBest is gobgp's best path to a prefix.
type bgpBest struct {
	neighbor       string
	med, localPref int
}

// gobgpBest asks the stock gobgp CLI for cgwd's best path to prefix.
func gobgpBest(t *testing.T, prefix string) bgpBest {
	t.Helper()
	out, err := exec.Command(filepath.Join(labkit.Root, "bin/gobgp"), "--target", labkit.GobgpAPI, "global", "rib", "-a", "ipv4", prefix, "-j").CombinedOutput()
	if err != nil {
		t.Fatalf("gobgp global rib: %v\n%s", err, out)
	}
	var rib map[string][]struct {
		Best     bool              `json:"best"`
		Neighbor string            `json:"neighbor-ip"`
		Attrs    []json.RawMessage `json:"attrs"`
	}
	if err := json.Unmarshal(out, &rib); err != nil {
		t.Fatalf("gobgp global rib -j: %v\n%s", err, out)
	}
	for _, p := range rib[prefix] {
		if !p.Best {
			continue
		}
		b := bgpBest{neighbor: p.Neighbor}
		for _, a := range p.Attrs {
			var attr struct {
				Type   int `json:"type"`
				Metric int `json:"metric"`
				Value  int `json:"value"`
			}
			_ = json.Unmarshal(a, &attr)
			switch attr.Type {
			case 4: // MULTI_EXIT_DISC
				b.med = attr.Metric
			case 5: // LOCAL_PREF
				b.localPref = attr.Value
			}
		}
		return b
	}
	t.Fatalf("gobgp has no best path to %s:\n%s", prefix, out)
	return bgpBest{}
}

// bestIsKernelPath checks that gobgp's best path to the VPC and lab-cgw's
// kernel route agree, and that they are via gw on dev.
func bestIsKernelPath(t *testing.T, gw, dev string) {
	t.Helper()
	labkit.Eventually(t, 10*time.Second, "gobgp's best path is the kernel's, via "+gw, func() error {
		best := gobgpBest(t, labkit.VPCNet)
		route, err := labkit.RouteGet(labkit.VPCHost)
		if err != nil {
			return err
		}
		if best.neighbor != gw || !strings.Contains(route, "via "+gw+" dev "+dev) {
			return fmt.Errorf("gobgp best via %s, kernel: %s", best.neighbor, strings.TrimSpace(route))
		}
		return nil
	})
}

// waitMetric waits until cgwd's metric sample (name with labels) has value want.
func waitMetric(t *testing.T, sample string, want float64) {
	t.Helper()
	labkit.Eventually(t, 15*time.Second, fmt.Sprintf("%s == %v", sample, want), func() error {
		if v, ok := labkit.Scrape(t).Value(sample + " "); !ok || v != want {
			return fmt.Errorf("%v (found %v)", v, ok)
		}
		return nil
	})
}

// netdevPackets reads a netdev's packet counters in lab-cgw.
func netdevPackets(t *testing.T, dev string) (rx, tx uint64) {
	t.Helper()
	read := func(which string) uint64 {
		out := labkit.MustInNS(t, labkit.CGW, "cat", "/sys/class/net/"+dev+"/statistics/"+which)
		v, err := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	return read("rx_packets"), read("tx_packets")
}

// flows sends total UDP packets from namespace ns to dst's discard port,
// round-robin over n sockets (each its own source port, so ECMP hashing
// spreads them), evenly over d. stop ends the sending early, wait lets it
// finish; both return once it has ended.
func flows(t *testing.T, ns, dst string, n, total int, d time.Duration) (stop, wait func()) {
	t.Helper()
	conns := make([]*net.UDPConn, n)
	if err := labkit.Do(ns, func() error {
		for i := range conns {
			c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.ParseIP(dst), Port: 9})
			if err != nil {
				return err
			}
			conns[i] = c
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		tick := time.NewTicker(d / time.Duration(total))
		defer tick.Stop()
		payload := make([]byte, 64)
		for i := 0; i < total; i++ {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			_, _ = conns[i%n].Write(payload) // ICMP errors from the far end come back as write errors
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(quit) }); <-done }, func() { <-done }
}
