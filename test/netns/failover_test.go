package netns

import (
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/test/netns/labkit"
)

// detection is the lab's BFD detection time (300 ms x 3, cgwd.lab.yaml).
const detection = 900 * time.Millisecond

// gapWithinDetection fails the test if the stream's longest gap exceeds the
// BFD detection time plus 100 ms for the nexthop group's replacement.
func gapWithinDetection(t *testing.T, rep labkit.GapReport) {
	t.Helper()
	if rep.LongestGap > detection+100*time.Millisecond {
		t.Errorf("longest gap %v, want under detection %v + 100ms", rep.LongestGap, detection)
	}
}

// streamLargeEnough fails the test if the stream did not get through at all.
func streamLargeEnough(t *testing.T, rep labkit.GapReport) {
	t.Helper()
	if rep.Received == 0 || rep.Sent < 7000 {
		t.Errorf("stream too small: %s", rep)
	}
}

func TestFailoverLab(t *testing.T) {
	labkit.Require(t)
	labkit.Up(t)
	labkit.StartRouting(t)

	// Direct Connect fails 2 s into a stream from on-prem to the VPC: traffic
	// moves to tunnel 1 within the detection time, and back to DX after
	// BFD, BIRD's session and the hold-down (2 s) once the fault is gone.
	for _, c := range []struct {
		name  string
		fault func(t *testing.T) (restore func())
		check func(t *testing.T, rep labkit.GapReport, logOff int) // logOff: where cgwd's log stood before the stream
	}{
		{"DXSilentDropFailsOverToTunnel1", func(t *testing.T) func() { return labkit.CutDX(t) }, func(t *testing.T, rep labkit.GapReport, _ int) {
			streamLargeEnough(t, rep)
			if dev := labkit.RouteDev(); dev != labkit.T1 {
				t.Errorf("after the cut, traffic goes via %s, want cgw-t1", dev)
			}
			for _, p := range labkit.Status(t).Paths {
				if p.Name == labkit.DXPath && (p.Usable || p.Active) {
					t.Errorf("dx1 still usable=%v active=%v", p.Usable, p.Active)
				}
			}
		}},
		// cgwd's dx0 loses carrier (lab-dx's end of its veth goes down).
		{"DXLinkDownFailsOverAndBack", func(t *testing.T) func() { return labkit.DXLinkDown(t, labkit.CGW) },
			func(t *testing.T, _ labkit.GapReport, _ int) { labkit.WaitDev(t, 5*time.Second, labkit.T1) }},
		// The far side's link goes down (lab-dx's end toward lab-aws): cgwd's
		// dx0 keeps carrier, so only BFD can tell cgwd that DX is gone.
		{"DXFarLinkDownIsSeenByBFD", func(t *testing.T) func() { return labkit.DXLinkDown(t, labkit.AWS) },
			func(t *testing.T, rep labkit.GapReport, logOff int) {
				if !labkit.Carrier(t, labkit.CGW, labkit.DX) {
					t.Errorf("lab-cgw's dx0 lost carrier when only the far side went down")
				}
				streamLargeEnough(t, rep)
				labkit.WaitDev(t, 5*time.Second, labkit.T1)
				logs, _ := labkit.LogSince(t, logOff)
				if !strings.Contains(logs, `msg="path usable changed" component=failover path=dx1 usable=false cause=bfd-Down`) {
					t.Errorf("no failover of dx1 caused by BFD Down in cgwd's log since the link went down:\n%s", logs)
				}
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, off := labkit.LogSince(t, 0)
			var restore func()
			rep := labkit.Stream(t, func() { restore = c.fault(t) })
			defer func() {
				if restore != nil {
					restore()
				}
			}()
			t.Logf("%s: %s", c.name, rep)
			gapWithinDetection(t, rep)
			c.check(t, rep, off)
			restore()
			restore = nil
			labkit.WaitDev(t, 40*time.Second, labkit.DX)
		})
	}

	t.Run("Tunnel1SilentDropMovesToTunnel2", func(t *testing.T) {
		restoreDX := labkit.CutDX(t)
		labkit.WaitDev(t, 10*time.Second, labkit.T1)
		// Drop tunnel 1's outside packets at the AWS end: the tunnel goes silent.
		drop := labkit.NewInputFilter(t, labkit.AWS, "cgwdtest_t1")
		rep := labkit.Stream(t, func() { drop.DropUDP(51820) })
		t.Logf("tunnel 1 silent drop: %s", rep)
		gapWithinDetection(t, rep)
		if dev := labkit.RouteDev(); dev != labkit.T2 {
			t.Errorf("traffic via %s, want cgw-t2", dev)
		}
		drop.Delete()
		restoreDX()
		labkit.WaitDev(t, 40*time.Second, labkit.DX)
	})

	t.Run("FailoversAreCountedWithCause", func(t *testing.T) {
		m := labkit.Scrape(t)
		if v, ok := m.Value(`cgwd_failovers_total{from="dx1",reason="bfd-Down",to="cgw-t1"}`); !ok || v < 2 {
			t.Errorf("failovers dx1 -> cgw-t1 by BFD = %v (found %v), want >= 2", v, ok)
		}
		// Tunnel 1 goes down by our BFD, or by BIRD's: its BFD tears its BGP
		// session down and the NOTIFICATION can reach us first.
		bfd, _ := m.Value(`cgwd_failovers_total{from="cgw-t1",reason="bfd-Down",to="cgw-t2"}`)
		bgp, _ := m.Value(`cgwd_failovers_total{from="cgw-t1",reason="bgp-down",to="cgw-t2"}`)
		if bfd+bgp < 1 {
			t.Errorf("failovers cgw-t1 -> cgw-t2 by BFD %v or BGP %v, want at least 1; counted:\n%s", bfd, bgp, strings.Join(m.Lines("cgwd_failovers_total"), "\n"))
		}
		if v, ok := m.Value(`cgwd_path_active{kind="dx",path="dx1",vpn=""}`); !ok || v != 1 {
			t.Errorf("cgwd_path_active dx1 = %v (found %v), want 1 after recovery", v, ok)
		}
		if v, ok := m.Value("cgwd_failover_duration_seconds_count"); !ok || v < 1 {
			t.Errorf("cgwd_failover_duration_seconds_count = %v (found %v)", v, ok)
		}
	})
}
