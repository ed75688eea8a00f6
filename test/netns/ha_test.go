package netns

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgwd/cgwd/test/netns/labkit"
)

// boxFailureGap bounds the longest gap a box failure may cost a steady
// two-way stream in the HA lab. Detection is BFD 300 ms x 3 (lab-core's with
// the boxes, BIRD's with their DX links and tunnels), about 0.9 s, and the
// target is under 1 s; the bound is loose because make test runs on small,
// busy machines. What each failure cost is logged (and measured by
// bench-ha.sh).
const boxFailureGap = 2500 * time.Millisecond

// TestHALab runs the two-box lab (README "Two boxes"): lab-core (FRR) learns
// the VPC from both boxes over the LAN, BIRD in lab-aws learns on-prem from
// both. Box 1 is the primary; box 2 the active-standby secondary
// (longer AS paths toward AWS, a higher MED toward the core), then both are
// made active-active. One lab for every subtest.
func TestHALab(t *testing.T) {
	labkit.Require(t)
	labkit.UpHA(t)
	labkit.StartHA(t)
	b1, b2 := labkit.Box1, labkit.Box2
	labkit.LogHAOnFailure(t)

	t.Run("ActiveStandbyCarriesBothWaysThroughBox1", func(t *testing.T) {
		labkit.WaitActive(t, 30*time.Second, b1)
		checkCorePaths(t)
		checkAWSPaths(t)
		// A flood ping both ways: each request leaves through box 1's DX,
		// each answer comes back through it; box 2's DX carries only BFD.
		p1, p2 := b1.DXPackets(t), b2.DXPackets(t)
		if out, err := labkit.InNS(labkit.OnPrem, "ping", "-c", "300", "-i", "0.005", "-W", "1", "-q", labkit.VPCHost); err != nil {
			t.Fatalf("ping lab-onprem -> lab-vpc: %v\n%s", err, out)
		}
		d1, d2 := b1.DXPackets(t)-p1, b2.DXPackets(t)-p2
		t.Logf("packets on dx0 during 300 pings: box 1 %d, box 2 %d", d1, d2)
		if d1 < 600 || d2 > 100 {
			t.Errorf("dx0 packets during 300 pings: box 1 %d (want >= 600), box 2 %d (want < 100: BFD only)", d1, d2)
		}
	})

	// Each failure of box 1 comes 2 s into a 1,000 packets/s stream each
	// way between lab-onprem and lab-vpc; both directions must move to box 2
	// within boxFailureGap, and box 1 takes over again once it is back.
	for _, c := range []struct {
		name string
		fail func(t *testing.T) (restore func())
	}{
		{"Box1SIGKILLMovesBothWaysToBox2", func(t *testing.T) func() {
			b1.Signal(t, syscall.SIGKILL)
			return func() { b1.Start(t) }
		}},
		// Power loss: every packet into, out of and through lab-cgw dropped
		// in one nftables transaction; its links keep carrier, so its peers
		// learn it from BFD.
		{"Box1PowerLossMovesBothWaysToBox2", func(t *testing.T) func() { return b1.Isolate(t) }},
		// Box 1 loses its DX and its internet link (cut in lab-dx and
		// lab-inet) but keeps the LAN: it must withdraw the VPC from the core.
		{"Box1LosesEveryAWSPathMovesBothWaysToBox2", func(t *testing.T) func() { return b1.CutAWS(t) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			labkit.WaitActive(t, 60*time.Second, b1)
			var restore func()
			up, down := labkit.TwoWay(t, 1000, 6*time.Second, 2*time.Second, func() { restore = c.fail(t) })
			defer func() {
				if restore != nil {
					restore()
				}
			}()
			t.Logf("%s: on-prem -> VPC %s; VPC -> on-prem %s", c.name, up, down)
			for dir, r := range map[string]labkit.GapRun{"on-prem -> VPC": up, "VPC -> on-prem": down} {
				if r.Received < r.Planned/2 || r.TailLost > 50 {
					t.Errorf("%s: the stream did not come back: %s", dir, r)
				}
				if r.Gap() > boxFailureGap {
					t.Errorf("%s: longest gap %v, want under %v", dir, r.Gap(), boxFailureGap)
				}
			}
			labkit.WaitActive(t, 5*time.Second, b2)
			restore()
			restore = nil
			labkit.AWSBird.WaitEstablished(t, 60*time.Second, true, b1.Bird...)
			labkit.CoreFRR.WaitEstablished(t, 60*time.Second, b1.LANAddr)
			labkit.WaitActive(t, 30*time.Second, b1)
		})
	}

	testHADrain(t) // ha_drain_test.go; box 1 active again when it ends

	t.Run("ActiveActiveCarriesThroughBothBoxes", func(t *testing.T) {
		for _, b := range []labkit.Box{b1, b2} {
			labkit.EditFile(t, b.Config, labkit.Replace("mode: active-standby", "mode: active-active"))
			b.Reload(t)
		}
		labkit.WaitActive(t, 30*time.Second, b1, b2)
		// Flows that differ in their source port spread over both boxes
		// (lab-core and lab-aws hash ECMP on ports), each way.
		type counts struct{ tx1, rx1, tx2, rx2 uint64 }
		read := func() counts {
			r1, t1 := labkit.LinkPackets(t, b1.NS, labkit.DX)
			r2, t2 := labkit.LinkPackets(t, b2.NS, labkit.DX)
			return counts{t1, r1, t2, r2}
		}
		before := read()
		labkit.UDPFlows(t, labkit.OnPrem, labkit.VPCHost, 32, 50)
		labkit.UDPFlows(t, labkit.VPC, labkit.OnPremHost, 32, 50)
		after := read()
		d := counts{after.tx1 - before.tx1, after.rx1 - before.rx1, after.tx2 - before.tx2, after.rx2 - before.rx2}
		t.Logf("dx0 packets for 32 flows x 50 packets each way: box 1 tx %d rx %d, box 2 tx %d rx %d", d.tx1, d.rx1, d.tx2, d.rx2)
		// 1,600 packets each way; at least 1 flow in 8 (200 packets) on each box.
		if d.tx1 < 200 || d.tx2 < 200 || d.rx1 < 200 || d.rx2 < 200 {
			t.Errorf("ECMP did not use both boxes both ways: box 1 tx %d rx %d, box 2 tx %d rx %d (want >= 200 each)", d.tx1, d.rx1, d.tx2, d.rx2)
		}
	})
}

// checkCorePaths checks lab-core's view of the VPC prefix: a path from each
// box, box 1's best with the lower MED.
func checkCorePaths(t *testing.T) {
	t.Helper()
	var r struct {
		Paths []struct {
			MED      *int `json:"metric"`
			Bestpath *struct {
				Overall bool `json:"overall"`
			} `json:"bestpath"`
			Peer struct {
				ID string `json:"peerId"`
			} `json:"peer"`
		} `json:"paths"`
	}
	labkit.CoreFRR.VtyshJSON(t, &r, "show bgp ipv4 unicast "+labkit.VPCNet+" json")
	med := map[string]int{}
	best := ""
	for _, p := range r.Paths {
		m := 0
		if p.MED != nil {
			m = *p.MED
		}
		med[p.Peer.ID] = m
		if p.Bestpath != nil && p.Bestpath.Overall {
			best = p.Peer.ID
		}
	}
	t.Logf("lab-core: %s from %v (MED by box), best from %s", labkit.VPCNet, med, best)
	m1, ok1 := med[labkit.CGWLANHA]
	m2, ok2 := med[labkit.CGW2LAN]
	if !ok1 || !ok2 || best != labkit.CGWLANHA || m2 < m1+1000 {
		t.Errorf("lab-core: %s paths by box %v, best %q: want both boxes, box 1 best, box 2's MED at least 1000 higher", labkit.VPCNet, med, best)
	}
}

// checkAWSPaths checks BIRD's view of on-prem: a path over each box's DX,
// box 2's AS path three ASNs longer, box 1's DX the best.
func checkAWSPaths(t *testing.T) {
	t.Helper()
	out := labkit.AWSBird.C(t, "show", "route", labkit.OnPremNet16, "all")
	paths := map[string]string{} // BIRD protocol -> AS path
	best := ""
	var proto string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		for i, w := range f {
			if strings.HasPrefix(w, "[aws_") {
				proto = strings.TrimPrefix(w, "[")
				if i+2 < len(f) && f[i+2] == "*" {
					best = proto
				}
			}
		}
		if as, ok := strings.CutPrefix(strings.TrimSpace(line), "BGP.as_path: "); ok {
			paths[proto] = as
		}
	}
	t.Logf("lab-aws: %s AS paths %v, best %s", labkit.OnPremNet16, paths, best)
	if best != labkit.BirdDX || len(strings.Fields(paths[labkit.BirdDX2])) != len(strings.Fields(paths[labkit.BirdDX]))+3 {
		t.Errorf("BIRD: best %q, AS paths %v: want aws_dx best and aws_dx2's path 3 ASNs longer\n%s", best, paths, out)
	}
}
