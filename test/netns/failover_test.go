package netns

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/test/netns/labkit"
)

// nft runs an nft command in a namespace.
func nft(t *testing.T, ns string, args ...string) {
	t.Helper()
	if out, err := inNS(ns, append([]string{"nft"}, args...)...); err != nil {
		t.Fatalf("nft %s in %s: %v\n%s", strings.Join(args, " "), ns, err, out)
	}
}

// dropAll silently drops every packet arriving on dev in ns (netdev ingress
// hook, before the IP stack), until the returned function removes the rule.
func dropAll(t *testing.T, ns, dev string) func() {
	t.Helper()
	table := "cgwdtest_" + strings.ReplaceAll(dev, "-", "_")
	nft(t, ns, "add", "table", "netdev", table)
	nft(t, ns, "add", "chain", "netdev", table, "ing", fmt.Sprintf("{ type filter hook ingress device %q priority 0; }", dev))
	nft(t, ns, "add", "rule", "netdev", table, "ing", "drop")
	return func() { nft(t, ns, "delete", "table", "netdev", table) }
}

// routeDev is the device lab-cgw's kernel uses for 10.200.0.10 now, or
// "none" when it has no way there (no route, or cgwd's blackhole group while
// no path is usable, which `ip route get` answers with EINVAL).
func routeDev(t *testing.T) string {
	out, err := inNS("lab-cgw", "ip", "route", "get", "10.200.0.10")
	if err != nil {
		return "none"
	}
	f := strings.Fields(out)
	for i := range f[:len(f)-1] {
		if f[i] == "dev" {
			return f[i+1]
		}
	}
	return ""
}

func waitDev(t *testing.T, timeout time.Duration, dev string) {
	t.Helper()
	eventually(t, timeout, "10.200.0.10 routed via "+dev, func() error {
		if got := routeDev(t); got != dev {
			return fmt.Errorf("via %s", got)
		}
		return nil
	})
}

// detection is the lab's BFD detection time (300 ms x 3, cgwd.lab.yaml).
const detection = 900 * time.Millisecond

func TestFailoverLab(t *testing.T) {
	requireLab(t)
	lab(t, "up")
	t.Cleanup(func() { lab(t, "down") })
	lab(t, "start-cgwd")
	lab(t, "wait-bgp")
	waitDev(t, 30*time.Second, "dx0")

	t.Run("DXSilentDropFailsOverToTunnel1", func(t *testing.T) {
		var restore []func()
		rep := stream(t, func() { restore = append(restore, labkit.CutDX(t)) })
		t.Logf("DX silent drop: %s", rep)
		if rep.LongestGap > detection+100*time.Millisecond {
			t.Errorf("longest gap %v, want under detection %v + 100ms", rep.LongestGap, detection)
		}
		if rep.Received == 0 || rep.Sent < 7000 {
			t.Errorf("stream too small: %s", rep)
		}
		if dev := routeDev(t); dev != "cgw-t1" {
			t.Errorf("after the cut, traffic goes via %s, want cgw-t1", dev)
		}
		for _, p := range status(t).Paths {
			if p.Name == "dx1" && (p.Usable || p.Active) {
				t.Errorf("dx1 still usable=%v active=%v", p.Usable, p.Active)
			}
		}
		for _, r := range restore {
			r()
		}
		// BFD comes back, BIRD re-opens the session, then the hold-down (2 s) passes.
		waitDev(t, 40*time.Second, "dx0")
	})

	// cgwd's dx0 loses carrier (lab-dx's end of its veth goes down).
	t.Run("DXLinkDownFailsOverAndBack", func(t *testing.T) {
		var up func()
		rep := stream(t, func() { up = labkit.DXLinkDown(t, labkit.CGW) })
		t.Logf("DX link down: %s", rep)
		if rep.LongestGap > detection+100*time.Millisecond {
			t.Errorf("longest gap %v, want under %v", rep.LongestGap, detection+100*time.Millisecond)
		}
		waitDev(t, 5*time.Second, "cgw-t1")
		up()
		waitDev(t, 40*time.Second, "dx0")
	})

	// The far side's link goes down (lab-dx's end toward lab-aws): cgwd's dx0
	// keeps carrier, so only BFD can tell cgwd that DX is gone.
	t.Run("DXFarLinkDownIsSeenByBFD", func(t *testing.T) {
		_, off := fmLogSince(t, 0)
		var up func()
		rep := stream(t, func() { up = labkit.DXLinkDown(t, labkit.AWS) })
		defer func() {
			if up != nil {
				up()
			}
		}()
		t.Logf("DX far link down: %s", rep)
		if !labkit.Carrier(t, labkit.CGW, labkit.DX) {
			t.Errorf("lab-cgw's dx0 lost carrier when only the far side went down")
		}
		if rep.LongestGap > detection+100*time.Millisecond {
			t.Errorf("longest gap %v, want under %v", rep.LongestGap, detection+100*time.Millisecond)
		}
		if rep.Received == 0 || rep.Sent < 7000 {
			t.Errorf("stream too small: %s", rep)
		}
		waitDev(t, 5*time.Second, "cgw-t1")
		logs, _ := fmLogSince(t, off)
		if !strings.Contains(logs, `msg="path usable changed" component=failover path=dx1 usable=false cause=bfd-Down`) {
			t.Errorf("no failover of dx1 caused by BFD Down in cgwd's log since the link went down:\n%s", logs)
		}
		up()
		up = nil
		waitDev(t, 40*time.Second, "dx0")
	})

	t.Run("Tunnel1SilentDropMovesToTunnel2", func(t *testing.T) {
		restoreDX := labkit.CutDX(t)
		waitDev(t, 10*time.Second, "cgw-t1")
		// Drop tunnel 1's outside packets at the AWS end: the tunnel goes silent.
		nft(t, "lab-aws", "add", "table", "inet", "cgwdtest_t1")
		nft(t, "lab-aws", "add", "chain", "inet", "cgwdtest_t1", "in", "{ type filter hook input priority -10; }")
		rep := stream(t, func() {
			nft(t, "lab-aws", "add", "rule", "inet", "cgwdtest_t1", "in", "udp", "dport", "51820", "drop")
		})
		t.Logf("tunnel 1 silent drop: %s", rep)
		if rep.LongestGap > detection+100*time.Millisecond {
			t.Errorf("longest gap %v, want under %v", rep.LongestGap, detection+100*time.Millisecond)
		}
		if dev := routeDev(t); dev != "cgw-t2" {
			t.Errorf("traffic via %s, want cgw-t2", dev)
		}
		nft(t, "lab-aws", "delete", "table", "inet", "cgwdtest_t1")
		restoreDX()
		waitDev(t, 40*time.Second, "dx0")
	})

	t.Run("FailoversAreCountedWithCause", func(t *testing.T) {
		body, err := httpGetInNS("lab-cgw", "http://127.0.0.1:9477/metrics")
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := metricValue(body, `cgwd_failovers_total{from="dx1",reason="bfd-Down",to="cgw-t1"}`); !ok || v < 2 {
			t.Errorf("failovers dx1 -> cgw-t1 by BFD = %v (found %v), want >= 2", v, ok)
		}
		// Tunnel 1 goes down by our BFD, or by BIRD's: its BFD tears its BGP
		// session down and the NOTIFICATION can reach us first.
		bfd, _ := metricValue(body, `cgwd_failovers_total{from="cgw-t1",reason="bfd-Down",to="cgw-t2"}`)
		bgp, _ := metricValue(body, `cgwd_failovers_total{from="cgw-t1",reason="bgp-down",to="cgw-t2"}`)
		if bfd+bgp < 1 {
			var lines []string
			for _, l := range strings.Split(body, "\n") {
				if strings.HasPrefix(l, "cgwd_failovers_total") {
					lines = append(lines, l)
				}
			}
			t.Errorf("failovers cgw-t1 -> cgw-t2 by BFD %v or BGP %v, want at least 1; counted:\n%s", bfd, bgp, strings.Join(lines, "\n"))
		}
		if v, ok := metricValue(body, `cgwd_path_active{kind="dx",path="dx1",vpn=""}`); !ok || v != 1 {
			t.Errorf("cgwd_path_active dx1 = %v (found %v), want 1 after recovery", v, ok)
		}
		if v, ok := metricValue(body, "cgwd_failover_duration_seconds_count"); !ok || v < 1 {
			t.Errorf("cgwd_failover_duration_seconds_count = %v (found %v)", v, ok)
		}
	})
}
