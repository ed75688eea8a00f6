package netns

import (
	"syscall"
	"testing"
	"time"

	"github.com/cgwd/cgwd/test/netns/labkit"
)

// TestHAIPsecLab runs the two-box lab with IPsec tunnels (HA=1
// TUNNEL=ipsec: strongSwan with AWS's default options as each tunnel's AWS
// end, each box its own VPN connection) and DX cut on both boxes, so that
// on-prem reaches the VPC through box 1's IPsec tunnels only. cgwd's IPsec
// data path is in its own process: a SIGKILL of box 1 takes its tunnels
// down with it, and traffic must move to box 2's tunnels as it does in
// TestHALab (BFD 300 ms x 3 between lab-core and the boxes and inside every
// tunnel). One lab bring-up for the subtest.
func TestHAIPsecLab(t *testing.T) {
	labkit.Require(t)
	labkit.UpHAIPsec(t)
	labkit.StartHA(t)
	b1, b2 := labkit.Box1, labkit.Box2
	labkit.LogHAOnFailure(t)

	t.Run("Box1SIGKILLMovesBothWaysToBox2Tunnels", func(t *testing.T) {
		labkit.CutDX(t) // both boxes' DX (lab-dx's cut chain hooks both bridges); the lab ends with the test
		b1.WaitVia(t, 30*time.Second)
		rx0, tx0 := b2.TunnelBytes(t)
		up, down := labkit.TwoWay(t, 1000, 6*time.Second, 2*time.Second, func() { b1.Signal(t, syscall.SIGKILL) })
		t.Logf("box 1 SIGKILL, IPsec only: on-prem -> VPC %s; VPC -> on-prem %s", up, down)
		for dir, r := range map[string]labkit.GapRun{"on-prem -> VPC": up, "VPC -> on-prem": down} {
			if r.Received < r.Planned/2 || r.TailLost > 50 {
				t.Errorf("%s: the stream did not come back: %s", dir, r)
			}
			if r.Gap() > boxFailureGap {
				t.Errorf("%s: longest gap %v, want under %v", dir, r.Gap(), boxFailureGap)
			}
		}
		b2.WaitVia(t, 5*time.Second)
		// DX is cut: what arrived after the kill crossed box 2's tunnels.
		rx1, tx1 := b2.TunnelBytes(t)
		t.Logf("box 2's tunnels during the stream: rx %d bytes, tx %d bytes", rx1-rx0, tx1-tx0)
		if rx1-rx0 < 100_000 || tx1-tx0 < 100_000 {
			t.Errorf("box 2's tunnels carried rx %d, tx %d bytes: want >= 100000 each way (over 1,000 of the stream's packets)", rx1-rx0, tx1-tx0)
		}
	})
}
