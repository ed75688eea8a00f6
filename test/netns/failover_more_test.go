package netns

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/test/netns/labkit"
)

// fmConfig writes a variant of the lab's cgwd.yaml: every edit replaces text
// that must occur exactly once in base.
func fmConfig(t *testing.T, base string, edits ...[2]string) {
	t.Helper()
	out := base
	for _, e := range edits {
		if n := strings.Count(out, e[0]); n != 1 {
			t.Fatalf("config variant: %q occurs %d times in cgwd.yaml, want once", e[0], n)
		}
		out = strings.Replace(out, e[0], e[1], 1)
	}
	if err := os.WriteFile(labState+"/cgwd.yaml", []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
}

// fmRestart restarts cgwd with the config variant edits of base and waits
// until BIRD has all three sessions and DX carries 10.200.0.10.
func fmRestart(t *testing.T, base string, edits ...[2]string) {
	t.Helper()
	lab(t, "stop-cgwd")
	fmConfig(t, base, edits...)
	lab(t, "start-cgwd")
	lab(t, "wait-bgp")
	waitDev(t, 30*time.Second, "dx0")
}

// fmLinkPackets is a netdev's rx and tx packet counters in ns.
func fmLinkPackets(t *testing.T, ns, dev string) (rx, tx uint64) {
	t.Helper()
	out, err := inNS(ns, "ip", "-j", "-s", "link", "show", "dev", dev)
	if err != nil {
		t.Fatalf("ip -s link %s in %s: %v\n%s", dev, ns, err, out)
	}
	var links []struct {
		Stats struct {
			Rx struct{ Packets uint64 } `json:"rx"`
			Tx struct{ Packets uint64 } `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		t.Fatalf("ip -j -s link %s: %v\n%s", dev, err, out)
	}
	return links[0].Stats.Rx.Packets, links[0].Stats.Tx.Packets
}

var nhDevRE = regexp.MustCompile(`\bdev (\S+)`)

// fmRouteDevs maps each of cgwd's routes in lab-cgw to the sorted devices of
// its nexthop (the members of its nexthop group, or its own dev).
func fmRouteDevs(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for dst, r := range cgwRoutes(t) {
		line, err := inNS("lab-cgw", "ip", "route", "show", "exact", dst, "proto", "200", "type", "unicast")
		if err != nil {
			t.Fatalf("ip route show %s: %v\n%s", dst, err, line)
		}
		f := strings.Fields(line)
		var devs []string
		for i := 0; i+1 < len(f); i++ {
			if f[i] != "nhid" {
				continue
			}
			grp, err := inNS("lab-cgw", "ip", "nexthop", "show", "id", f[i+1])
			if err != nil {
				t.Fatalf("ip nexthop show id %s: %v\n%s", f[i+1], err, grp)
			}
			g := strings.Fields(grp)
			for j := 0; j+1 < len(g); j++ {
				if g[j] != "group" {
					continue
				}
				for _, m := range strings.Split(g[j+1], "/") {
					m, _, _ = strings.Cut(m, ",") // id,weight
					nh, err := inNS("lab-cgw", "ip", "nexthop", "show", "id", m)
					if err != nil {
						t.Fatalf("ip nexthop show id %s: %v\n%s", m, err, nh)
					}
					if d := nhDevRE.FindStringSubmatch(nh); d != nil {
						devs = append(devs, d[1])
					}
				}
			}
			if d := nhDevRE.FindStringSubmatch(grp); d != nil { // a single nexthop object
				devs = append(devs, d[1])
			}
		}
		if len(devs) == 0 && r.Dev != "" {
			devs = []string{r.Dev}
		}
		sort.Strings(devs)
		out[dst] = devs
	}
	return out
}

// fmAllVia waits until every one of cgwd's routes leaves via exactly devs.
func fmAllVia(t *testing.T, timeout time.Duration, devs ...string) {
	t.Helper()
	want := strings.Join(devs, ",")
	eventually(t, timeout, "every cgwd route via "+want, func() error {
		rs := fmRouteDevs(t)
		if len(rs) == 0 {
			return errors.New("no routes of cgwd's")
		}
		for dst, d := range rs {
			if got := strings.Join(d, ","); got != want {
				return fmt.Errorf("%s via %s", dst, got)
			}
		}
		return nil
	})
}

// fmFailovers sums cgwd_failovers_total over all labels.
func fmFailovers(t *testing.T) float64 {
	t.Helper()
	body, err := httpGetInNS("lab-cgw", "http://127.0.0.1:9477/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "cgwd_failovers_total{") {
			var v float64
			if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
				sum += v
			}
		}
	}
	return sum
}

// fmLogSince returns cgwd's log after offset, and the log's current length.
func fmLogSince(t *testing.T, offset int) (string, int) {
	t.Helper()
	b, err := os.ReadFile(labState + "/logs/cgwd.log")
	if err != nil {
		t.Fatal(err)
	}
	if offset > len(b) {
		offset = 0
	}
	return string(b[offset:]), len(b)
}

// TestFailoverMoreLab: ECMP over both tunnels, random loss on DX with the
// default hold-down, and DX recovery only after the hold-down.
func TestFailoverMoreLab(t *testing.T) {
	requireLab(t)
	lab(t, "up")
	t.Cleanup(func() { lab(t, "down") })
	b, err := os.ReadFile(labState + "/cgwd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	base := string(b)

	t.Run("ECMPSpreadsThenTunnel1DropsToTunnel2", func(t *testing.T) {
		fmConfig(t, base, [2]string{"  - name: vpn1\n", "  - name: vpn1\n    mode: ecmp\n"})
		lab(t, "start-cgwd")
		// With mode ecmp, cgwd hashes multipath on ports too, so that flows
		// from one host spread over the tunnels.
		// start-cgwd returns once the control socket answers, before routing
		// starts: wait for it.
		eventually(t, 10*time.Second, "fib_multipath_hash_policy 1 (set by cgwd for mode ecmp)", func() error {
			if out, _ := inNS("lab-cgw", "sysctl", "-n", "net.ipv4.fib_multipath_hash_policy"); strings.TrimSpace(out) != "1" {
				return fmt.Errorf("it is %q", strings.TrimSpace(out))
			}
			return nil
		})
		lab(t, "wait-bgp")
		waitDev(t, 30*time.Second, "dx0")
		fmAllVia(t, 5*time.Second, "dx0")

		restore := []func(){labkit.CutDX(t)}
		defer func() {
			for _, r := range restore {
				r()
			}
		}()
		// One group with both tunnels behind every route.
		fmAllVia(t, 5*time.Second, "cgw-t1", "cgw-t2")
		out, _ := inNS("lab-cgw", "ip", "nexthop", "show")
		t.Logf("ip nexthop show in lab-cgw:\n%s", out)

		var before [4]uint64
		_, before[0] = fmLinkPackets(t, "lab-cgw", "cgw-t1")
		_, before[1] = fmLinkPackets(t, "lab-cgw", "cgw-t2")
		before[2], _ = fmLinkPackets(t, "lab-aws", "aws-t1")
		before[3], _ = fmLinkPackets(t, "lab-aws", "aws-t2")
		rep := streamFlows(t, 16, 1000, 3*time.Second, 0, func() {})
		t.Logf("ECMP stream, 16 flows: %s", rep)
		var after [4]uint64
		_, after[0] = fmLinkPackets(t, "lab-cgw", "cgw-t1")
		_, after[1] = fmLinkPackets(t, "lab-cgw", "cgw-t2")
		after[2], _ = fmLinkPackets(t, "lab-aws", "aws-t1")
		after[3], _ = fmLinkPackets(t, "lab-aws", "aws-t2")
		names := []string{"lab-cgw cgw-t1 tx", "lab-cgw cgw-t2 tx", "lab-aws aws-t1 rx", "lab-aws aws-t2 rx"}
		for i := range names {
			// BFD and keepalives add a few packets a second; the stream sends 3,000.
			grew := after[i] - before[i]
			t.Logf("%s: +%d packets", names[i], grew)
			if grew < uint64(rep.Sent)/8 {
				t.Errorf("%s grew by %d packets during a %d-packet stream, want at least an eighth of it", names[i], grew, rep.Sent)
			}
		}
		if rep.Received < rep.Sent*99/100 {
			t.Errorf("ECMP stream lost packets: %s", rep)
		}

		// Tunnel 1 goes silent at the AWS end.
		nft(t, "lab-aws", "add", "table", "inet", "cgwdtest_t1")
		restore = append(restore, func() { nft(t, "lab-aws", "delete", "table", "inet", "cgwdtest_t1") })
		nft(t, "lab-aws", "add", "chain", "inet", "cgwdtest_t1", "in", "{ type filter hook input priority -10; }")
		rep = streamFlows(t, 16, 1000, 6*time.Second, 2*time.Second, func() {
			nft(t, "lab-aws", "add", "rule", "inet", "cgwdtest_t1", "in", "udp", "dport", "51820", "drop")
		})
		t.Logf("ECMP, tunnel 1 silent drop: %s", rep)
		if rep.LongestGap > detection+100*time.Millisecond {
			t.Errorf("worst per-flow gap %v, want under detection %v + 100ms", rep.LongestGap, detection)
		}
		if rep.Received < rep.Sent*3/4 {
			t.Errorf("stream mostly lost: %s", rep)
		}
		fmAllVia(t, time.Second, "cgw-t2")
	})

	t.Run("RandomLossOnDXDoesNotFlap", func(t *testing.T) {
		const holdDown = 10 * time.Second
		fmRestart(t, base, [2]string{"hold_down: 2s", "hold_down: 10s"})
		_, off := fmLogSince(t, 0)
		f0 := fmFailovers(t)
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
		dev := routeDev(t)
		for i := 0; i < 300 && time.Since(start) < 15*time.Second; i++ {
			if d := routeDev(t); d != dev {
				changes = append(changes, change{time.Now(), d})
				dev = d
			}
			time.Sleep(50 * time.Millisecond)
		}
		for _, r := range restore {
			r()
		}
		logs, _ := fmLogSince(t, off)
		downs := strings.Count(logs, `msg="path usable changed" component=failover path=dx1 usable=false`)
		f1 := fmFailovers(t)
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
		waitDev(t, 5*time.Second, "cgw-t1")
		// Wait for BFD to see the cut (a pending hold-down alone also reads unusable).
		eventually(t, 10*time.Second, "dx1 BFD down, unusable, no hold-down", func() error {
			for _, p := range status(t).Paths {
				if p.Name == "dx1" && (strings.EqualFold(p.Health, "up") || p.Usable || !p.HoldUntil.IsZero()) {
					return fmt.Errorf("dx1 health %s, bgp up %v, usable %v, hold until %v", p.Health, p.BGPUp, p.Usable, p.HoldUntil)
				}
			}
			return nil
		})
		_, off := fmLogSince(t, 0)
		for _, r := range restore {
			r()
		}
		var back time.Time
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if routeDev(t) == "dx0" {
				back = time.Now()
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if back.IsZero() {
			t.Fatal("DX did not return within 60 s of the drop's removal")
		}
		logs, _ := fmLogSince(t, off)
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
