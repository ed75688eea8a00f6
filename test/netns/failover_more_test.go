package netns

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/test/netns/labkit"
)

// failovers sums cgwd_failovers_total over all labels.
func failovers(t *testing.T) float64 {
	t.Helper()
	return labkit.Scrape(t).Sum("cgwd_failovers_total{")
}

// TestFailoverMoreLab: ECMP over both tunnels, random loss on DX with the
// default hold-down, and DX recovery only after the hold-down.
func TestFailoverMoreLab(t *testing.T) {
	labkit.Require(t)
	labkit.Up(t)

	t.Run("ECMPSpreadsThenTunnel1DropsToTunnel2", func(t *testing.T) {
		defer labkit.EditConfig(t, labkit.ECMP)() // the later subtests run without ecmp
		labkit.StartCgwd(t)
		// With mode ecmp, cgwd hashes multipath on ports too, so that flows
		// from one host spread over the tunnels.
		// start-cgwd returns once the control socket answers, before routing
		// starts: wait for it.
		labkit.Eventually(t, 10*time.Second, "fib_multipath_hash_policy 1 (set by cgwd for mode ecmp)", func() error {
			if out, _ := labkit.InNS(labkit.CGW, "sysctl", "-n", "net.ipv4.fib_multipath_hash_policy"); strings.TrimSpace(out) != "1" {
				return fmt.Errorf("it is %q", strings.TrimSpace(out))
			}
			return nil
		})
		labkit.WaitBGP(t)
		labkit.WaitDev(t, 30*time.Second, labkit.DX)
		labkit.WaitAllVia(t, 5*time.Second, labkit.DX)

		restore := []func(){labkit.CutDX(t)}
		defer func() {
			for _, r := range restore {
				r()
			}
		}()
		// One group with both tunnels behind every route.
		labkit.WaitAllVia(t, 5*time.Second, labkit.T1, labkit.T2)
		out, _ := labkit.InNS(labkit.CGW, "ip", "nexthop", "show")
		t.Logf("ip nexthop show in lab-cgw:\n%s", out)

		// What each tunnel carried: sent into it by cgwd, received from it by AWS.
		count := func() (n [4]uint64) {
			_, n[0] = labkit.LinkPackets(t, labkit.CGW, labkit.T1)
			_, n[1] = labkit.LinkPackets(t, labkit.CGW, labkit.T2)
			n[2], _ = labkit.LinkPackets(t, labkit.AWS, labkit.AWST1)
			n[3], _ = labkit.LinkPackets(t, labkit.AWS, labkit.AWST2)
			return n
		}
		before := count()
		rep := labkit.StreamFlows(t, 16, 1000, 3*time.Second, 0, func() {})
		t.Logf("ECMP stream, 16 flows: %s", rep)
		after := count()
		for i, name := range []string{"lab-cgw cgw-t1 tx", "lab-cgw cgw-t2 tx", "lab-aws aws-t1 rx", "lab-aws aws-t2 rx"} {
			// BFD and keepalives add a few packets a second; the stream sends 3,000.
			grew := after[i] - before[i]
			t.Logf("%s: +%d packets", name, grew)
			if grew < uint64(rep.Sent)/8 {
				t.Errorf("%s grew by %d packets during a %d-packet stream, want at least an eighth of it", name, grew, rep.Sent)
			}
		}
		if rep.Received < rep.Sent*99/100 {
			t.Errorf("ECMP stream lost packets: %s", rep)
		}

		// Tunnel 1 goes silent at the AWS end.
		drop := labkit.NewInputFilter(t, labkit.AWS, "cgwdtest_t1")
		restore = append(restore, drop.Delete)
		rep = labkit.StreamFlows(t, 16, 1000, 6*time.Second, 2*time.Second, func() { drop.DropUDP(51820) })
		t.Logf("ECMP, tunnel 1 silent drop: %s", rep)
		if rep.LongestGap > detection+100*time.Millisecond {
			t.Errorf("worst per-flow gap %v, want under detection %v + 100ms", rep.LongestGap, detection)
		}
		if rep.Received < rep.Sent*3/4 {
			t.Errorf("stream mostly lost: %s", rep)
		}
		labkit.WaitAllVia(t, time.Second, labkit.T2)
	})

	t.Run("RandomLossOnDXDoesNotFlap", func(t *testing.T) {
		const holdDown = 10 * time.Second
		labkit.RestartRouting(t, labkit.Replace("hold_down: 2s", "hold_down: 10s"))
		_, off := labkit.LogSince(t, 0)
		f0 := failovers(t)
		start := time.Now()
		restore := []func(){labkit.LossDX(t, 30)}
		type change struct {
			at  time.Time
			dev string
		}
		var changes []change
		show := func() string {
			var b strings.Builder
			for _, c := range changes {
				fmt.Fprintf(&b, " +%.1fs->%s", c.at.Sub(start).Seconds(), c.dev)
			}
			return b.String()
		}
		dev := labkit.RouteDev()
		for i := 0; i < 300 && time.Since(start) < 15*time.Second; i++ {
			if d := labkit.RouteDev(); d != dev {
				changes = append(changes, change{time.Now(), d})
				dev = d
			}
			time.Sleep(50 * time.Millisecond)
		}
		for _, r := range restore {
			r()
		}
		logs, _ := labkit.LogSince(t, off)
		downs := strings.Count(logs, `msg="path usable changed" component=failover path=dx1 usable=false`)
		f1 := failovers(t)
		t.Logf("30%% loss on DX for %v: DX went unusable %d times, route changes:%s, cgwd_failovers_total +%v",
			time.Since(start).Round(time.Second), downs, show(), f1-f0)
		for i := 1; i < len(changes); i++ {
			if gap := changes[i].at.Sub(changes[i-1].at); gap < holdDown-200*time.Millisecond {
				t.Errorf("route changed %v after the previous change (to %s, then %s): flapping inside the %v hold-down",
					gap, changes[i-1].dev, changes[i].dev, holdDown)
			}
		}
		if len(changes) > 2 {
			t.Errorf("%d route changes in 15 s with a %v hold-down", len(changes), holdDown)
		}
		if f1-f0 > 2 {
			t.Errorf("cgwd_failovers_total grew by %v in 15 s", f1-f0)
		}
	})

	t.Run("DXReturnsOnlyAfterHoldDown", func(t *testing.T) {
		const holdDown = 10 * time.Second // the config of the previous subtest
		restore := []func(){labkit.CutDX(t)}
		labkit.WaitDev(t, 5*time.Second, labkit.T1)
		// Wait for BFD to see the cut (a pending hold-down alone also reads unusable).
		labkit.Eventually(t, 10*time.Second, "dx1 BFD down, unusable, no hold-down", func() error {
			for _, p := range labkit.Status(t).Paths {
				if p.Name == labkit.DXPath && (strings.EqualFold(p.Health, "up") || p.Usable || !p.HoldUntil.IsZero()) {
					return fmt.Errorf("dx1 health %s, bgp up %v, usable %v, hold until %v", p.Health, p.BGPUp, p.Usable, p.HoldUntil)
				}
			}
			return nil
		})
		_, off := labkit.LogSince(t, 0)
		for _, r := range restore {
			r()
		}
		// Polled every 20 ms: the time it returns is the measurement.
		var back time.Time
		labkit.Eventually(t, 60*time.Second, "DX back after the drop's removal", func() error {
			if dev := labkit.RouteDev(); dev != labkit.DX {
				return fmt.Errorf("via %s", dev)
			}
			back = time.Now()
			return nil
		}, labkit.Every(20*time.Millisecond))
		logs, _ := labkit.LogSince(t, off)
		re := regexp.MustCompile(`time=(\S+) level=INFO msg="path recovered, holding down" component=failover path=dx1`)
		m := re.FindAllStringSubmatch(logs, -1)
		if m == nil {
			t.Fatalf("no %q log line for dx1 after the drop's removal:\n%s", "path recovered, holding down", logs)
		}
		recovered, err := time.Parse(time.RFC3339Nano, m[len(m)-1][1])
		if err != nil {
			t.Fatal(err)
		}
		held := back.Sub(recovered)
		t.Logf("DX recovered at %s, route back via dx0 %v later (hold_down %v)", recovered.Format("15:04:05.000"), held, holdDown)
		if held < holdDown-20*time.Millisecond {
			t.Errorf("DX carried traffic %v after it recovered, before the %v hold-down", held, holdDown)
		}
		if held > holdDown+2*time.Second {
			t.Errorf("DX returned %v after it recovered, want soon after the %v hold-down", held, holdDown)
		}
	})
}
