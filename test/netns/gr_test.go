package netns

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgwd/cgwd/test/netns/labkit"
)

// grOnDX turns graceful restart on for the DX session, which has BFD and
// so by default runs without it (AWS's advice; README, "Hitless restart").
var grOnDX = labkit.Replace("      max_prefixes: 200000", "      max_prefixes: 200000\n      graceful_restart: true")

// grMaxLost is the most packets a restart may cost each way of a 500/s
// stream (before graceful restart: 45-58 for a kill and restart, 155-246
// for a stop and start, all of them on the way back from AWS).
const grMaxLost = 25

// TestGracefulRestartLab restarts cgwd under a two-way stream between
// lab-onprem and the VPC host, both ways over Direct Connect, with BGP
// graceful restart negotiated with BIRD (graceful restart on, bfd
// graceful): while cgwd is away BIRD keeps cgwd's route as stale, so the
// return path holds, and cgwd's own routes stay in the kernel for the next
// run to adopt. First a restart on SIGUSR2 (same process, sessions closed
// without a NOTIFICATION, forwarding left on), then a SIGKILL and a start.
func TestGracefulRestartLab(t *testing.T) {
	labkit.Require(t)
	labkit.Up(t)
	labkit.LogOnFailure(t)
	// A fresh box forwards nothing: cgwd turns forwarding on, and a
	// restart must not turn it off again.
	if out, err := labkit.InNS(labkit.CGW, "sysctl", "-qw", "net.ipv4.ip_forward=0"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	labkit.StartRouting(t, grOnDX)
	labkit.Eventually(t, 15*time.Second, "graceful restart negotiated on DX", func() error {
		out := labkit.AWSBird.C(t, "show", "protocols", "all", labkit.BirdDX)
		if !strings.Contains(neighborCaps(out), "Graceful restart") {
			return fmt.Errorf("cgwd's OPEN has no graceful restart capability:\n%s", out)
		}
		return nil
	})
	// What was sent before each restart is re-sent once cgwd is back: wait
	// for the whole table over DX before streaming.
	labkit.WaitRoute(t, 10*time.Second, labkit.VPCNet, labkit.DXPeer, labkit.DX)

	t.Run("SIGUSR2", func(t *testing.T) {
		pid := labkit.PID(t)
		before := strings.Count(labkit.Log(), "cgwd running")
		var stale string
		toVPC, toOnPrem := labkit.TwoWay(t, 500, 8*time.Second, 2*time.Second, func() {
			if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
				t.Fatal(err)
			}
			stale = awaitStale(t)
			labkit.Eventually(t, 20*time.Second, "cgwd running again in the same process", func() error {
				if n := strings.Count(labkit.Log(), "cgwd running"); n <= before {
					return fmt.Errorf("%d runs logged", n)
				}
				_, err := labkit.QueryStatus(labkit.Sock)
				return err
			})
		})
		t.Logf("SIGUSR2 restart: to the VPC %s; back to on-prem %s", toVPC, toOnPrem)
		t.Logf("BIRD while cgwd was away: %s", stale)
		if got := labkit.PID(t); got != pid {
			t.Errorf("pid %d after the restart, want %d (the same process)", got, pid)
		}
		checkLoss(t, toVPC, toOnPrem)
		if out := labkit.MustInNS(t, labkit.CGW, "sysctl", "-n", "net.ipv4.ip_forward"); strings.TrimSpace(out) != "1" {
			t.Errorf("ip_forward %s after the restart, want 1", out)
		}
		log := labkit.Log()
		if !strings.Contains(log, "stopping for a restart: routes, nexthop objects and kernel settings left in place") {
			t.Error("the FIB did not log that it kept its routes")
		}
		if strings.Contains(log, "kernel setting restored") {
			t.Error("a restart restored kernel settings")
		}
		backOnDX(t)
	})

	t.Run("SIGKILL", func(t *testing.T) {
		var stale string
		toVPC, toOnPrem := labkit.TwoWay(t, 500, 8*time.Second, 2*time.Second, func() {
			labkit.KillCgwd(t)
			stale = awaitStale(t)
			labkit.StartCgwd(t)
		})
		t.Logf("SIGKILL and start: to the VPC %s; back to on-prem %s", toVPC, toOnPrem)
		t.Logf("BIRD while cgwd was away: %s", stale)
		checkLoss(t, toVPC, toOnPrem)
		backOnDX(t)
	})

	// The other way round: BIRD restarts and cgwd, helping, keeps its
	// routes in the kernel, even once BIRD's BFD has gone with it.
	t.Run("BIRD restarts", func(t *testing.T) {
		_, off := labkit.LogSince(t, 0)
		since := func() string { l, _ := labkit.LogSince(t, off); return l }
		start := birdRestart(t)
		labkit.Eventually(t, 10*time.Second, "cgwd keeps DX's routes while BIRD restarts", func() error {
			l := since()
			if !strings.Contains(l, `msg="bgp peer restarting gracefully: its routes stay" component=bgp peer=dx1`) {
				return fmt.Errorf("no graceful restart of dx1 logged")
			}
			if !strings.Contains(l, "path=dx1 bfd_peer=169.254.255.1 interface=dx0 from=Up to=Down") {
				return fmt.Errorf("DX's BFD not down yet")
			}
			return nil
		})
		// With every path's BFD down the route's nexthop group is a
		// blackhole, but the route is still cgwd's (not only the
		// fail-closed unreachable below it).
		routes := labkit.MustInNS(t, labkit.CGW, "ip", "route", "show", labkit.VPCNet, "proto", "200")
		if !strings.Contains(routes, labkit.VPCNet+" nhid ") {
			t.Errorf("%s left lab-cgw's kernel while BIRD restarts:\n%s", labkit.VPCNet, routes)
		}
		start()
		labkit.Eventually(t, 10*time.Second, "BIRD answers again", func() error {
			_, err := labkit.AWSBird.Try("show", "status")
			return err
		})
		labkit.AWSBird.WaitEstablished(t, 40*time.Second, true, labkit.BirdSessions...)
		labkit.Eventually(t, 10*time.Second, "dx1's restart finished", func() error {
			if !strings.Contains(since(), `msg="bgp peer restarted: routes not announced again withdrawn" component=bgp peer=dx1 withdrawn=0`) {
				return fmt.Errorf("not logged")
			}
			return nil
		})
		if l := since(); strings.Contains(l, "did not finish its graceful restart") || strings.Contains(l, `Communicated-Reason="BFD down"`) {
			t.Errorf("BIRD's restart was not helped through:\n%s", l)
		}
		labkit.WaitRoute(t, 20*time.Second, labkit.VPCNet, labkit.DXPeer, labkit.DX)
	})

	// Forwarding was off before the first run: the runs after the SIGUSR2
	// and SIGKILL restarts found it on, and a plain stop must still put it
	// back (the first run recorded it in the runtime directory).
	t.Run("plain stop restores forwarding", func(t *testing.T) {
		labkit.StopCgwd(t)
		if out := labkit.MustInNS(t, labkit.CGW, "sysctl", "-n", "net.ipv4.ip_forward"); strings.TrimSpace(out) != "0" {
			t.Errorf("ip_forward %s after a plain stop that followed restarts, want 0 (as before cgwd)", strings.TrimSpace(out))
		}
	})
}

// birdRestart kills the lab's BIRD (a crash: its sessions close without a
// NOTIFICATION) and returns a function that starts it again as lab.sh
// does, its PID where lab.sh down finds it.
func birdRestart(t *testing.T) (start func()) {
	t.Helper()
	pidFile := labkit.State + "/pids/bird-aws.pid"
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	return func() {
		logf, err := os.OpenFile(labkit.AWSBirdLog, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer logf.Close()
		cmd := labkit.Command(labkit.AWS, "bird", "-f", "-c", labkit.AWSBirdConf, "-s", labkit.AWSBird.Ctl, "-P", labkit.State+"/bird-aws.pidfile")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = cmd.Wait() }()
		if err := os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// awaitStale waits until BIRD has lost its DX session with cgwd and checks
// that it still routes the on-prem prefix over DX, as a stale route; it
// returns BIRD's lines on the restart.
func awaitStale(t *testing.T) string {
	t.Helper()
	var proto string
	labkit.Eventually(t, 5*time.Second, "BIRD sees cgwd gone from DX", func() error {
		if labkit.AWSBird.Established(t, labkit.BirdDX) {
			return fmt.Errorf("%s still Established", labkit.BirdDX)
		}
		proto = labkit.AWSBird.C(t, "show", "protocols", "all", labkit.BirdDX)
		return nil
	}, labkit.Every(20*time.Millisecond))
	// BIRD marks no route stale in `show route`; the protocol says it keeps
	// them: "Neighbor graceful restart active", channel in START with the
	// routes still imported.
	if !strings.Contains(proto, "Neighbor graceful restart active") {
		t.Errorf("BIRD is not helping cgwd restart:\n%s", proto)
	}
	routes := labkit.AWSBird.C(t, "show", "route", labkit.OnPremNet, "protocol", labkit.BirdDX)
	if !strings.Contains(routes, labkit.OnPremNet) {
		t.Errorf("BIRD dropped %s from DX while cgwd restarts:\n%s", labkit.OnPremNet, routes)
	}
	var keep []string
	for _, l := range strings.Split(proto, "\n") {
		if l = strings.TrimSpace(l); strings.Contains(l, "graceful restart") || strings.HasPrefix(l, "Restart timer") || strings.HasPrefix(l, "Routes:") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "; ")
}

// checkLoss fails the test when either way lost more than grMaxLost packets.
func checkLoss(t *testing.T, toVPC, toOnPrem labkit.GapRun) {
	t.Helper()
	if toVPC.Lost+toVPC.TailLost > grMaxLost || toOnPrem.Lost+toOnPrem.TailLost > grMaxLost {
		t.Errorf("the restart cost more than %d packets one way: to the VPC %s; back %s", grMaxLost, toVPC, toOnPrem)
		out, _ := labkit.AWSBird.Try("show", "route", labkit.OnPremNet, "all")
		t.Logf("BIRD's routes to on-prem:\n%s", out)
		if b, err := os.ReadFile(labkit.AWSBirdLog); err == nil {
			lines := strings.Split(string(b), "\n")
			t.Logf("BIRD's log (last 40 lines):\n%s", strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	}
}

// backOnDX waits until cgwd has its BGP sessions again and BIRD has
// cgwd's route from a fresh (not stale) DX session.
func backOnDX(t *testing.T) {
	t.Helper()
	labkit.AWSBird.WaitEstablished(t, 40*time.Second, true, labkit.BirdDX)
	labkit.WaitRoute(t, 20*time.Second, labkit.VPCNet, labkit.DXPeer, labkit.DX)
	// The restarted cgwd said so: Restart State bit and, its routes having
	// stayed in the kernel, Forwarding State bit for IPv4 unicast.
	caps := neighborCaps(labkit.AWSBird.C(t, "show", "protocols", "all", labkit.BirdDX))
	if !strings.Contains(caps, "Restart recovery") || !strings.Contains(caps, "AF preserved: ipv4") {
		t.Errorf("cgwd's OPEN after the restart lacks the restart or forwarding state bit:\n%s", caps)
	}
}

// neighborCaps is the part of BIRD's `show protocols all` that lists the
// capabilities the neighbor (cgwd) sent.
func neighborCaps(out string) string {
	_, caps, _ := strings.Cut(out, "Neighbor capabilities")
	caps, _, _ = strings.Cut(caps, "Session:")
	return caps
}
