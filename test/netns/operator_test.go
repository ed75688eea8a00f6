package netns

import (
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/test/netns/labkit"
)

// cgwdCLI runs bin/cgwd against the lab's control socket and returns its
// output and exit status.
func cgwdCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(labkit.CgwdBin, append(args, "-s", labkit.Sock)...).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("cgwd %s: %v", strings.Join(args, " "), err)
	}
	return string(out), code
}

// mustCLI runs cgwdCLI and fails the test unless it exits 0.
func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, code := cgwdCLI(t, args...)
	if code != 0 {
		t.Fatalf("cgwd %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// linkMTU and linkIndex read a netdev of lab-cgw from the kernel.
func linkField(t *testing.T, dev, field string) int {
	t.Helper()
	f := strings.Fields(labkit.MustInNS(t, labkit.CGW, "ip", "-o", "link", "show", dev))
	if field == "index" {
		n, _ := strconv.Atoi(strings.TrimSuffix(f[0], ":"))
		return n
	}
	for i := range f[:len(f)-1] {
		if f[i] == field {
			n, _ := strconv.Atoi(f[i+1])
			return n
		}
	}
	t.Fatalf("%s has no %s: %v", dev, field, f)
	return 0
}

// awsHandshake is the AWS side's (wireguard-go in lab-aws) latest handshake
// with cgwd on dev, in Unix seconds.
func awsHandshake(t *testing.T, dev string) int64 {
	t.Helper()
	f := strings.Fields(labkit.MustInNS(t, labkit.AWS, "wg", "show", dev, "latest-handshakes"))
	if len(f) < 2 {
		t.Fatalf("wg show %s latest-handshakes: %v", dev, f)
	}
	n, _ := strconv.ParseInt(f[1], 10, 64)
	return n
}

// birdImported is how many route updates BIRD's protocol has received.
func birdImported(t *testing.T, protocol string) int {
	t.Helper()
	for _, line := range strings.Split(labkit.AWSBird.C(t, "show", "protocols", "all", protocol), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[0] == "Import" && f[1] == "updates:" {
			n, _ := strconv.Atoi(f[2])
			return n
		}
	}
	t.Fatalf("BIRD's %s has no import update counts", protocol)
	return 0
}

// hasRow reports whether a line of out has fields starting with want.
func hasRow(out string, want ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= len(want) && slices.Equal(f[:len(want)], want) {
			return true
		}
	}
	return false
}

// birdHasRoute reports whether the lab's BIRD has a route for prefix.
func birdHasRoute(t *testing.T, prefix string) bool {
	t.Helper()
	out, err := labkit.AWSBird.Try("show", "route", prefix)
	if strings.Contains(out, "Network not found") {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(out, prefix)
}

// TestOperatorLab drives the operator's commands against a running cgwd and
// checks what they did in the kernel and on the wire: status views, reload
// --dry-run (nothing moves) and reload (the tunnel's MTU changes in the
// kernel and BIRD learns the new prefix), path down/up (the kernel route
// moves to the tunnel and back), a BGP soft reset (routes cross again, the
// session stays) and a tunnel restart (a new netdev and a new handshake).
func TestOperatorLab(t *testing.T) {
	labkit.Require(t)
	labkit.Up(t)
	labkit.LogOnFailure(t)
	labkit.StartRouting(t)
	labkit.WaitTunnels(t, 20*time.Second)
	bird := labkit.AWSBird

	t.Run("StatusViews", func(t *testing.T) {
		out := mustCLI(t, "status", "paths", labkit.DXPath)
		if !strings.Contains(out, "PATH") || !strings.Contains(out, labkit.DXPath) || strings.Contains(out, labkit.T1) {
			t.Errorf("status paths dx1:\n%s", out)
		}
		out = mustCLI(t, "status", "bgp")
		for _, p := range []string{labkit.DXPath, labkit.T1, labkit.T2} {
			if !strings.Contains(out, p) || strings.Count(out, "established") != 3 {
				t.Errorf("status bgp (BIRD has the three sessions up):\n%s", out)
			}
		}
		if out, code := cgwdCLI(t, "status", "tunnels", "cgw-t9"); code != 1 || !strings.Contains(out, `no tunnel named "cgw-t9" (the daemon has: cgw-t1, cgw-t2)`) {
			t.Errorf("status tunnels cgw-t9: exit %d\n%s", code, out)
		}
	})

	t.Run("PathDownMovesTheRouteAndBack", func(t *testing.T) {
		since := bird.SinceSettled(t)
		if out := mustCLI(t, "path", "down", labkit.DXPath); !strings.Contains(out, "taken out of service") {
			t.Errorf("path down: %s", out)
		}
		labkit.WaitDev(t, 10*time.Second, labkit.T1)
		labkit.PingVPC(t)
		if out := mustCLI(t, "status", "paths", labkit.DXPath); !strings.Contains(out, "admin-down") {
			t.Errorf("status after path down:\n%s", out)
		}
		if !strings.Contains(labkit.Log(), `msg="operator: taking path out of service" path=dx1`) {
			t.Error("path down is not logged")
		}
		mustCLI(t, "path", "up", labkit.DXPath)
		labkit.WaitDev(t, 10*time.Second, labkit.DX)
		labkit.PingVPC(t)
		if now := bird.Since(t); !labkit.SameSessions(now, since) {
			t.Errorf("path down/up reset a BGP session: %v, before %v", now, since)
		}
	})

	t.Run("ReloadDryRunThenApply", func(t *testing.T) {
		const newNet = "10.30.0.0/16"
		restore := labkit.EditConfig(t,
			labkit.Replace("prefixes: [10.10.0.0/16]", "prefixes: [10.10.0.0/16, "+newNet+"]"),
			labkit.ReplaceLast("mtu: 1420", "mtu: 1400"))
		defer restore()
		out := mustCLI(t, "reload", "--dry-run")
		if !strings.Contains(out, "would apply (dry run)") || !hasRow(out, "tunnel", labkit.T2, "would", "re-establish") ||
			!hasRow(out, "prefix", newNet, "would", "advertise") {
			t.Errorf("reload --dry-run:\n%s", out)
		}
		time.Sleep(time.Second) // time for a wrongly applied change to show
		if mtu := linkField(t, labkit.T2, "mtu"); mtu != 1420 {
			t.Errorf("dry run changed %s's MTU to %d", labkit.T2, mtu)
		}
		if birdHasRoute(t, newNet) {
			t.Errorf("dry run advertised %s", newNet)
		}

		out = mustCLI(t, "reload")
		if !strings.Contains(out, "applied:") || !hasRow(out, "tunnel", labkit.T2, "re-established") || !hasRow(out, "prefix", newNet, "advertised") {
			t.Errorf("reload:\n%s", out)
		}
		labkit.Eventually(t, 10*time.Second, "cgw-t2 at MTU 1400", func() error {
			if mtu := linkField(t, labkit.T2, "mtu"); mtu != 1400 {
				return fmt.Errorf("mtu %d", mtu)
			}
			return nil
		})
		labkit.Eventually(t, 30*time.Second, "BIRD learns "+newNet, func() error {
			if !birdHasRoute(t, newNet) {
				return fmt.Errorf("absent")
			}
			return nil
		})

		restore()
		if out, code := cgwdCLI(t, "reload"); code != 0 {
			t.Fatalf("reload back: exit %d\n%s", code, out)
		}
		labkit.Eventually(t, 30*time.Second, "BIRD loses "+newNet, func() error {
			if birdHasRoute(t, newNet) {
				return fmt.Errorf("still there")
			}
			return nil
		})

		bad := labkit.EditConfig(t, labkit.Replace("inside: 169.254.11.0/30", "inside: 169.254.1.0/30"))
		out, code := cgwdCLI(t, "reload")
		bad()
		if code != 1 || !strings.Contains(out, "rejected") || !strings.Contains(out, "vpn[0].tunnels[1].inside") {
			t.Errorf("invalid reload: exit %d\n%s", code, out)
		}
		bird.WaitEstablished(t, 30*time.Second, true, labkit.BirdSessions...)
		labkit.WaitDev(t, 30*time.Second, labkit.DX)
	})

	t.Run("BGPSoftResetResendsRoutes", func(t *testing.T) {
		since := bird.SinceSettled(t)
		before := birdImported(t, labkit.BirdDX)
		mustCLI(t, "bgp", "reset", labkit.DXPath)
		labkit.Eventually(t, 10*time.Second, "cgwd's routes sent to BIRD again", func() error {
			if n := birdImported(t, labkit.BirdDX); n <= before {
				return fmt.Errorf("BIRD's import updates on %s: %d, before %d", labkit.BirdDX, n, before)
			}
			return nil
		})
		if now := bird.Since(t); !labkit.SameSessions(now, since) {
			t.Errorf("a soft reset reset a session: %v, before %v", now, since)
		}
	})

	t.Run("TunnelRestart", func(t *testing.T) {
		index := linkField(t, labkit.T1, "index")
		hs := awsHandshake(t, labkit.AWST1)
		time.Sleep(1100 * time.Millisecond) // handshake times are in seconds
		if out := mustCLI(t, "tunnel", "restart", labkit.T1); !strings.Contains(out, "restarted") {
			t.Errorf("tunnel restart: %s", out)
		}
		if n := linkField(t, labkit.T1, "index"); n == index {
			t.Errorf("%s is the same netdev (index %d) after a restart", labkit.T1, n)
		}
		labkit.Eventually(t, 20*time.Second, "a new handshake seen by AWS's side", func() error {
			if now := awsHandshake(t, labkit.AWST1); now <= hs {
				return fmt.Errorf("latest handshake %d, before %d", now, hs)
			}
			return nil
		})
		labkit.WaitTunnels(t, 20*time.Second)
		if out, code := cgwdCLI(t, "tunnel", "restart", "cgw-t9"); code != 1 || !strings.Contains(out, `no tunnel named "cgw-t9"`) {
			t.Errorf("restart of an unknown tunnel: exit %d\n%s", code, out)
		}
	})
}
