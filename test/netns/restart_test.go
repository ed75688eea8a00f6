package netns

import (
	"encoding/json"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestRestartWithoutOutage kills cgwd hard and starts it again while a UDP
// stream crosses Direct Connect: the kernel keeps cgwd's routes and nexthop
// groups, the new cgwd adopts them, and the stream does not stop.
func TestRestartWithoutOutage(t *testing.T) {
	requireLab(t)
	lab(t, "up")
	t.Cleanup(func() { lab(t, "down") })
	lab(t, "start-cgwd")
	lab(t, "wait-bgp")
	waitDev(t, 30*time.Second, "dx0")

	rep := stream(t, func() {
		pid := cgwdPID(t)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// The thread-group leader turns zombie before the other threads have
		// released the files: wait until the control socket stops answering.
		eventually(t, 10*time.Second, "killed cgwd's sockets closed", func() error {
			c, err := net.Dial("unix", labState+"/cgwd.sock")
			if err != nil {
				return nil
			}
			c.Close()
			return fmt.Errorf("pid %d still answers", pid)
		})
		lab(t, "start-cgwd")
	})
	t.Logf("restart under traffic: %s", rep)
	if rep.LongestGap > 100*time.Millisecond || rep.Lost > 100 {
		t.Errorf("restart interrupted the stream: %s", rep)
	}
	eventually(t, 40*time.Second, "BGP back and routes re-learned", func() error {
		for _, p := range status(t).BGP {
			if !p.Up {
				return fmt.Errorf("%s %s", p.Name, p.State)
			}
		}
		return nil
	})
	waitDev(t, 10*time.Second, "dx0")
	// The groups the killed run left behind are collected once no route uses them.
	eventually(t, 20*time.Second, "only groups in use remain", func() error {
		out, err := inNS("lab-cgw", "ip", "-j", "nexthop", "show", "protocol", "200")
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
		routes, err := inNS("lab-cgw", "ip", "-j", "route", "show", "proto", "200", "type", "unicast")
		if err != nil {
			return err
		}
		var rs []struct {
			NHID uint32 `json:"nhid"`
		}
		if err := json.Unmarshal([]byte(routes), &rs); err != nil {
			return err
		}
		used := map[uint32]bool{}
		for _, r := range rs {
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
