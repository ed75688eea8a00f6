package netns

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/cgwd/cgwd/test/netns/labkit"
)

// TestRestartWithoutOutage kills cgwd hard and starts it again while a UDP
// stream crosses Direct Connect: the kernel keeps cgwd's routes and nexthop
// groups, the new cgwd adopts them, and the stream does not stop.
func TestRestartWithoutOutage(t *testing.T) {
	labkit.Require(t)
	labkit.Up(t)
	labkit.StartRouting(t)

	rep := labkit.Stream(t, func() {
		labkit.KillCgwd(t)
		labkit.StartCgwd(t)
	})
	t.Logf("restart under traffic: %s", rep)
	if rep.LongestGap > 100*time.Millisecond || rep.Lost > 100 {
		t.Errorf("restart interrupted the stream: %s", rep)
	}
	labkit.Eventually(t, 40*time.Second, "BGP back and routes re-learned", func() error {
		for _, p := range labkit.Status(t).BGP {
			if !p.Up {
				return fmt.Errorf("%s %s", p.Name, p.State)
			}
		}
		return nil
	})
	labkit.WaitDev(t, 10*time.Second, labkit.DX)
	// The groups the killed run left behind are collected once no route uses them.
	labkit.Eventually(t, 20*time.Second, "only groups in use remain", func() error {
		out, err := labkit.InNS(labkit.CGW, "ip", "-j", "nexthop", "show", "protocol", "200")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		var nhs []struct {
			ID    uint32            `json:"id"`
			Group []json.RawMessage `json:"group"`
		}
		if err := json.Unmarshal([]byte(out), &nhs); err != nil {
			return err
		}
		used := map[uint32]bool{}
		for _, r := range labkit.CgwdRoutes(t) {
			used[r.NHID] = true
		}
		for _, n := range nhs {
			if len(n.Group) > 0 && !used[n.ID] {
				return fmt.Errorf("group %d is used by no route", n.ID)
			}
		}
		return nil
	})
}
