package netns

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cgwdPID is the lab's cgwd process.
func cgwdPID(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(labState + "/pids/cgwd.pid")
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// stopCgwd sends the lab's cgwd SIGTERM and waits until it has exited.
func stopCgwd(t *testing.T) {
	t.Helper()
	pid := cgwdPID(t)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "cgwd exits", func() error {
		if err := syscall.Kill(pid, 0); err == nil {
			return fmt.Errorf("pid %d still running", pid)
		}
		return nil
	})
}

// hupAndWait sends SIGHUP and waits until the log has one more line containing want.
func hupAndWait(t *testing.T, want string) {
	t.Helper()
	count := func() int {
		b, _ := os.ReadFile(labState + "/logs/cgwd.log")
		return strings.Count(string(b), want)
	}
	before := count()
	if err := syscall.Kill(cgwdPID(t), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "log line "+want, func() error {
		if count() <= before {
			return fmt.Errorf("not logged")
		}
		return nil
	})
}

func editConfig(t *testing.T, from, to string) {
	t.Helper()
	path := labState + "/cgwd.yaml"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), from) {
		t.Fatalf("config lacks %q", from)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), from, to, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// testReload runs the SIGHUP scenarios; cgwd must be running with both tunnels up.
func testReload(t *testing.T) {
	eventually(t, 30*time.Second, "BIRD sees aws_t1, aws_t2, aws_dx Established", func() error {
		for _, p := range []string{"aws_t1", "aws_t2", "aws_dx"} {
			if !birdEstablished(t, p) {
				return fmt.Errorf("%s not Established", p)
			}
		}
		return nil
	})
	routeVia(t, 30*time.Second, "10.200.0.0/16", "169.254.255.1", "dx0")
	t.Run("ReloadUnchangedLosesNoPacket", func(t *testing.T) {
		ping := exec.Command("ip", "netns", "exec", "lab-onprem", "ping", "-q", "-c", "300", "-i", "0.01", "-W", "1", "10.200.0.10")
		var out strings.Builder
		ping.Stdout = &out
		if err := ping.Start(); err != nil {
			t.Fatal(err)
		}
		hs := map[string]time.Time{}
		for _, tn := range status(t).Tunnels {
			hs[tn.Name] = tn.LastHandshake
		}
		time.Sleep(500 * time.Millisecond) // the reload lands mid-stream, not before it
		hupAndWait(t, "reload: applied")
		if err := ping.Wait(); err != nil {
			t.Fatalf("ping across the reload: %v\n%s", err, out.String())
		}
		if !strings.Contains(out.String(), " 0% packet loss") {
			t.Errorf("packets lost across the reload:\n%s", out.String())
		}
		for _, tn := range status(t).Tunnels {
			if !tn.LastHandshake.Equal(hs[tn.Name]) {
				t.Errorf("%s re-handshook on an unchanged reload", tn.Name)
			}
		}
	})

	t.Run("ReloadInvalidIsRejectedAndKeepsRunning", func(t *testing.T) {
		editConfig(t, "inside: 169.254.11.0/30", "inside: 169.254.1.0/30")
		defer editConfig(t, "inside: 169.254.1.0/30", "inside: 169.254.11.0/30")
		hupAndWait(t, "reload rejected: invalid config")
		logs, _ := os.ReadFile(labState + "/logs/cgwd.log")
		if !strings.Contains(string(logs), "field=vpn[0].tunnels[1].inside") {
			t.Error("the rejected field is not named in the log")
		}
		for _, tn := range status(t).Tunnels {
			if tn.State != "up" {
				t.Errorf("%s is %s after a rejected reload", tn.Name, tn.State)
			}
		}
	})

	t.Run("ReloadRestartOnlyFieldIsRefused", func(t *testing.T) {
		editConfig(t, "stale_time: 10s", "stale_time: 20s")
		defer editConfig(t, "stale_time: 20s", "stale_time: 10s")
		hupAndWait(t, "needs a restart of cgwd")
	})

	t.Run("ReloadNewPrefixIsAdvertisedWithoutSessionReset", func(t *testing.T) {
		logOnFailure(t)
		since := birdSinceSettled(t)
		ping := startPing(t, 300)
		editConfig(t, "prefixes: [10.10.0.0/16]", "prefixes: [10.10.0.0/16, 10.11.0.0/16]")
		hupAndWait(t, "reload: applied")
		eventually(t, 15*time.Second, "BIRD learns 10.11.0.0/16 over all three sessions", func() error {
			out := birdc(t, "show", "route", "10.11.0.0/16", "all")
			for _, p := range []string{"aws_t1", "aws_t2", "aws_dx"} {
				if !strings.Contains(out, p) {
					return fmt.Errorf("not from %s:\n%s", p, out)
				}
			}
			return nil
		})
		editConfig(t, "prefixes: [10.10.0.0/16, 10.11.0.0/16]", "prefixes: [10.10.0.0/16]")
		hupAndWait(t, "reload: applied")
		eventually(t, 15*time.Second, "BIRD drops 10.11.0.0/16", func() error {
			out, _ := exec.Command("birdc", "-s", labState+"/bird-aws.ctl", "show", "route", "10.11.0.0/16").CombinedOutput()
			if strings.Contains(string(out), "10.11.0.0/16") {
				return fmt.Errorf("still there:\n%s", out)
			}
			return nil
		})
		ping.noLoss(t)
		if now := birdSince(t); !sameSessions(now, since) {
			t.Errorf("a session was reset by a prefix change: BIRD's protocol times %v, before %v", now, since)
		}
	})

	t.Run("ReloadAllowListAppliesWithSessionUp", func(t *testing.T) {
		logOnFailure(t)
		since := birdSinceSettled(t)
		routeVia(t, 10*time.Second, "10.200.0.0/16", "169.254.255.1", "dx0")
		// DX may now only bring 10.201.0.0/16: the VPC route it sent earlier
		// must leave, and tunnel 1 carries the VPC.
		editConfig(t, "      max_prefixes: 200000", "      allow: [10.201.0.0/16]\n      max_prefixes: 200000")
		hupAndWait(t, "reload: applied")
		routeVia(t, 10*time.Second, "10.200.0.0/16", "169.254.10.1", "cgw-t1")
		pingVPC(t)
		editConfig(t, "      allow: [10.201.0.0/16]\n      max_prefixes: 200000", "      max_prefixes: 200000")
		hupAndWait(t, "reload: applied")
		routeVia(t, 10*time.Second, "10.200.0.0/16", "169.254.255.1", "dx0")
		if now := birdSince(t); !sameSessions(now, since) {
			t.Errorf("an import policy change reset a session: BIRD's protocol times %v, before %v", now, since)
		}
	})

	t.Run("ReloadChangedSessionIsReestablishedAlone", func(t *testing.T) {
		since := birdSinceSettled(t)
		logs, _ := os.ReadFile(labState + "/logs/cgwd.log")
		t2Starts := strings.Count(string(logs), `msg="tunnel started" vpn=vpn1 tunnel=cgw-t2`)
		// Tunnel 2's hold time: a BGP setting of its own, not of the tunnel.
		editConfig(t, "        bfd: {enabled: true, interval: 300ms, multiplier: 3}\ndirect_connect:",
			"        bfd: {enabled: true, interval: 300ms, multiplier: 3}\n        bgp: {hold_time: 24s, keepalive: 8s}\ndirect_connect:")
		hupAndWait(t, "reload: applied")
		eventually(t, 30*time.Second, "aws_t2 re-established", func() error {
			now := birdSince(t)
			if sameSince(now["aws_t2"], since["aws_t2"]) || !birdEstablished(t, "aws_t2") {
				return fmt.Errorf("aws_t2 since %s (before %s)", now["aws_t2"], since["aws_t2"])
			}
			return nil
		})
		now := birdSince(t)
		for _, p := range []string{"aws_t1", "aws_dx"} {
			if !sameSince(now[p], since[p]) {
				t.Errorf("%s was reset by a change to cgw-t2's session (since %s, before %s)", p, now[p], since[p])
			}
		}
		if out := birdc(t, "show", "protocols", "all", "aws_t2"); !strings.Contains(out, "Hold timer") || !strings.Contains(out, "/24") {
			t.Errorf("aws_t2 did not negotiate the new hold time:\n%s", out)
		}
		logs, _ = os.ReadFile(labState + "/logs/cgwd.log")
		if n := strings.Count(string(logs), `msg="tunnel started" vpn=vpn1 tunnel=cgw-t2`); n != t2Starts {
			t.Error("a BGP-only change re-created the tunnel")
		}
		eventually(t, 10*time.Second, "cgw-t2 usable again after its hold-down", func() error {
			for _, p := range status(t).Paths {
				if p.Name == "cgw-t2" && !p.Usable {
					return fmt.Errorf("not usable")
				}
			}
			return nil
		})
	})

	t.Run("ReloadRemovesAndAddsDirectConnect", func(t *testing.T) {
		logOnFailure(t)
		since := birdSinceSettled(t)
		routeVia(t, 10*time.Second, "10.200.0.0/16", "169.254.255.1", "dx0")
		ping := startPing(t, 500)
		restore := cutConfig(t, "direct_connect:\n", "failover:\n")
		hupAndWait(t, "reload: applied")
		routeVia(t, 5*time.Second, "10.200.0.0/16", "169.254.10.1", "cgw-t1")
		eventually(t, 10*time.Second, "BIRD sees aws_dx down", func() error {
			if birdEstablished(t, "aws_dx") {
				return fmt.Errorf("still Established")
			}
			return nil
		})
		lost := ping.loss(t)
		t.Logf("DX removed by reload: %s of a 100/s ping lost", lost)
		if lost != "0%" {
			t.Errorf("packets lost when the DX link was removed by a reload: %s", lost)
		}
		for _, p := range status(t).Paths {
			if p.Name == "dx1" {
				t.Error("status still lists the removed DX path")
			}
		}
		if now := birdSince(t); !sameSince(now["aws_t1"], since["aws_t1"]) || !sameSince(now["aws_t2"], since["aws_t2"]) {
			t.Errorf("removing DX reset a tunnel session: %v, before %v", now, since)
		}

		restore()
		hupAndWait(t, "reload: applied")
		eventually(t, 30*time.Second, "aws_dx Established again", func() error {
			if !birdEstablished(t, "aws_dx") {
				return fmt.Errorf("not yet")
			}
			return nil
		})
		routeVia(t, 15*time.Second, "10.200.0.0/16", "169.254.255.1", "dx0")
		pingVPC(t)
	})

	t.Run("ReloadRemovesAndAddsVPNConnection", func(t *testing.T) {
		logOnFailure(t)
		since := birdSinceSettled(t)
		restore := cutConfig(t, "vpn:\n", "direct_connect:\n")
		hupAndWait(t, "reload: applied")
		for _, dev := range []string{"cgw-t1", "cgw-t2"} {
			if out, err := inNS("lab-cgw", "ip", "link", "show", dev); err == nil {
				t.Errorf("%s still exists after its connection was removed:\n%s", dev, out)
			}
		}
		eventually(t, 10*time.Second, "BIRD sees aws_t1 and aws_t2 down", func() error {
			for _, p := range []string{"aws_t1", "aws_t2"} {
				if birdEstablished(t, p) {
					return fmt.Errorf("%s still Established", p)
				}
			}
			return nil
		})
		if now := birdSince(t); !sameSince(now["aws_dx"], since["aws_dx"]) {
			t.Errorf("removing the VPN connection reset the DX session: %v, before %v", now, since)
		}
		pingVPC(t) // over DX

		restore()
		hupAndWait(t, "reload: applied")
		eventually(t, 30*time.Second, "aws_t1 and aws_t2 Established again", func() error {
			for _, p := range []string{"aws_t1", "aws_t2"} {
				if !birdEstablished(t, p) {
					return fmt.Errorf("%s not Established", p)
				}
			}
			return nil
		})
		for _, peer := range []string{"169.254.10.1", "169.254.11.1"} {
			if out, err := inNS("lab-cgw", "ping", "-c", "2", "-i", "0.2", "-W", "2", peer); err != nil {
				t.Errorf("ping across a re-added tunnel to %s: %v\n%s", peer, err, out)
			}
		}
	})

	t.Run("ReloadChangedTunnelIsReestablishedAlone", func(t *testing.T) {
		logs, _ := os.ReadFile(labState + "/logs/cgwd.log")
		t1Starts := strings.Count(string(logs), `msg="tunnel started" vpn=vpn1 tunnel=cgw-t1`)
		// Tunnel 2's keepalive is its last "persistent_keepalive: 5s" in the file.
		b, _ := os.ReadFile(labState + "/cgwd.yaml")
		i := strings.LastIndex(string(b), "persistent_keepalive: 5s")
		nb := string(b[:i]) + "persistent_keepalive: 7s" + string(b[i+len("persistent_keepalive: 5s"):])
		if err := os.WriteFile(labState+"/cgwd.yaml", []byte(nb), 0o600); err != nil {
			t.Fatal(err)
		}
		hupAndWait(t, "re-establishing\" tunnel=cgw-t2")
		eventually(t, 20*time.Second, "cgw-t2 up again", func() error {
			for _, tn := range status(t).Tunnels {
				if tn.Name == "cgw-t2" {
					if tn.State != "up" {
						return fmt.Errorf("cgw-t2 %s", tn.State)
					}
					return nil
				}
			}
			return fmt.Errorf("cgw-t2 not running (between its stop and its start)")
		})
		logs, _ = os.ReadFile(labState + "/logs/cgwd.log")
		if n := strings.Count(string(logs), `msg="tunnel started" vpn=vpn1 tunnel=cgw-t1`); n != t1Starts {
			t.Errorf("cgw-t1 was restarted by a change to cgw-t2 only")
		}
		if out, err := inNS("lab-cgw", "nft", "list", "table", "inet", "cgwd"); err != nil || !strings.Contains(out, "cgw-t2") {
			t.Errorf("firewall table after the reload: %v\n%s", err, out)
		}
		out, _ := inNS("lab-cgw", "wg", "show", "cgw-t2", "persistent-keepalive")
		if !strings.Contains(out, "\t7") {
			t.Errorf("cgw-t2 keepalive after reload: %q, want 7", out)
		}
	})
}

// cutConfig removes the lines of the lab's cgwd.yaml from the line starting
// with from up to the one starting with to; the returned func (also run when
// the test ends) puts the file back as it was.
func cutConfig(t *testing.T, from, to string) (restore func()) {
	t.Helper()
	path := labState + "/cgwd.yaml"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	full := string(b)
	i, j := strings.Index(full, from), strings.Index(full, to)
	if i < 0 || j < i {
		t.Fatalf("config has no %q before %q", from, to)
	}
	restore = func() {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(restore)
	if err := os.WriteFile(path, []byte(full[:i]+full[j:]), 0o600); err != nil {
		t.Fatal(err)
	}
	return restore
}

// birdSinceSettled is birdSince once two readings 200 ms apart agree: BIRD
// may restamp a protocol a millisecond after it came up.
func birdSinceSettled(t *testing.T) map[string]string {
	t.Helper()
	prev := birdSince(t)
	for i := 0; i < 25; i++ {
		time.Sleep(200 * time.Millisecond)
		cur := birdSince(t)
		if maps.Equal(cur, prev) {
			return cur
		}
		prev = cur
	}
	t.Fatalf("BIRD's protocol times still changing after 5 s: %v", prev)
	return nil
}

// sameSince reports whether two of BIRD's state-change times ("15:04:05.000")
// are the same stamp. BIRD sometimes restamps a protocol a millisecond after
// it came up, even after birdSinceSettled saw it stable; a session reset
// restamps it at least a reconnect later, so 50 ms tells the two apart.
func sameSince(a, b string) bool {
	ta, errA := time.Parse("15:04:05.000", a)
	tb, errB := time.Parse("15:04:05.000", b)
	if errA != nil || errB != nil {
		return a == b
	}
	return (ta.Sub(tb)).Abs() <= 50*time.Millisecond
}

// sameSessions reports whether no BIRD session of before was reset in now.
func sameSessions(now, before map[string]string) bool {
	if len(now) != len(before) {
		return false
	}
	for p, t := range before {
		if !sameSince(now[p], t) {
			return false
		}
	}
	return true
}

// birdSince maps each of BIRD's BGP protocols to the time its state last
// changed: a session reset shows as a new time.
func birdSince(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range strings.Split(birdc(t, "show", "protocols"), "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && strings.HasPrefix(f[0], "aws_") && f[1] == "BGP" {
			out[f[0]] = f[4]
		}
	}
	if len(out) == 0 {
		t.Fatal("no BGP protocols in birdc show protocols")
	}
	return out
}

// startPing starts count pings from lab-onprem to lab-vpc, 10 ms apart.
func startPing(t *testing.T, count int) *pingRun {
	t.Helper()
	return startPingIn(t, "lab-onprem", "-q", "-c", fmt.Sprint(count), "-i", "0.01", "-W", "1", "10.200.0.10")
}

// loss waits for the ping to end and returns its packet loss ("0%").
func (p *pingRun) loss(t *testing.T) string {
	t.Helper()
	out, _ := p.wait() // ping exits 1 when a packet is lost
	for _, f := range strings.Split(out, ", ") {
		if strings.HasSuffix(f, " packet loss") {
			return strings.TrimSuffix(f, " packet loss")
		}
	}
	t.Fatalf("no packet loss line in ping's output:\n%s", out)
	return ""
}

// noLoss fails the test if the ping lost a packet.
func (p *pingRun) noLoss(t *testing.T) {
	t.Helper()
	if l := p.loss(t); l != "0%" {
		t.Errorf("%s of the packets lost across the reload:\n%s", l, p.out.String())
	}
}

// logOnFailure prints the end of cgwd's log if the test fails.
func logOnFailure(t *testing.T) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		b, _ := os.ReadFile(labState + "/logs/cgwd.log")
		lines := strings.Split(string(b), "\n")
		t.Logf("cgwd.log (last 80 lines):\n%s", strings.Join(lines[max(0, len(lines)-80):], "\n"))
	})
}
