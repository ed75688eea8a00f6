package netns

import (
	"fmt"
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

	t.Run("ReloadRoutingChangeNeedsRestart", func(t *testing.T) {
		editConfig(t, "prefixes: [10.10.0.0/16]", "prefixes: [10.10.0.0/16, 10.11.0.0/16]")
		defer editConfig(t, "prefixes: [10.10.0.0/16, 10.11.0.0/16]", "prefixes: [10.10.0.0/16]")
		hupAndWait(t, "needs a restart of cgwd")
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
				if tn.Name == "cgw-t2" && tn.State != "up" {
					return fmt.Errorf("cgw-t2 %s", tn.State)
				}
			}
			return nil
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
