package netns

import (
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/test/netns/labkit"
)

// TestDXCarrierLab: DX without BFD (health from its BGP session alone) and
// cgwd's dx0 loses carrier. The kernel drops dx0's nexthop with the link;
// cgwd sees the link go down and moves the VPC prefixes to tunnel 1 at once,
// without waiting for BGP's hold timer, then back to DX once carrier returns
// (after the hold-down). Before the fix, the VPC prefixes had no route at all
// until the DX session's hold timer expired.
func TestDXCarrierLab(t *testing.T) {
	labkit.Require(t)
	labkit.Up(t)
	labkit.StartRouting(t, labkit.Replace("bfd: {interval: 300ms, multiplier: 3}   # AWS DX", "bfd: {enabled: false}   # AWS DX"))
	labkit.PingVPC(t)
	_, off := labkit.LogSince(t, 0)

	up := labkit.DXLinkDown(t, labkit.CGW)
	defer func() {
		if up != nil {
			up()
		}
	}()
	if labkit.Carrier(t, labkit.CGW, labkit.DX) {
		t.Fatal("lab-cgw's dx0 kept carrier with lab-dx's end of its veth down")
	}
	labkit.WaitDev(t, 3*time.Second, labkit.T1) // BGP's hold timer is 90 s
	// On-prem's pings now reach the VPC host over tunnel 1 (dx0 has no
	// carrier). Their answers do not come back yet: lab-aws's dx0 keeps
	// carrier and, without BFD, BIRD keeps routing on-prem over DX until
	// its hold timer; so count the requests that reach the VPC host.
	rx0, _ := labkit.LinkPackets(t, labkit.VPC, "eth0")
	const pings = 10
	_, _ = labkit.Ping(labkit.OnPrem, labkit.VPCHost, pings)
	if rx1, _ := labkit.LinkPackets(t, labkit.VPC, "eth0"); rx1-rx0 < pings {
		t.Errorf("the VPC host received %d packets during %d pings from on-prem, want at least %d", rx1-rx0, pings, pings)
	}
	for _, p := range labkit.Status(t).Paths {
		if p.Name == labkit.DXPath && (p.Usable || !p.BGPUp) {
			t.Errorf("dx1 usable=%v bgp_up=%v, want unusable with its BGP session still up (the link, not BGP, moved traffic)", p.Usable, p.BGPUp)
		}
	}
	logs, _ := labkit.LogSince(t, off)
	if !strings.Contains(logs, `msg="path usable changed" component=failover path=dx1 usable=false cause=link-down`) {
		t.Errorf("no failover of dx1 caused by link-down in cgwd's log:\n%s", logs)
	}

	up()
	up = nil
	labkit.WaitDev(t, 15*time.Second, labkit.DX) // carrier, then the 2 s hold-down
	labkit.PingVPC(t)
}
