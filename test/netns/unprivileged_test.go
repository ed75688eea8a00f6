package netns

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/tunnel"
	"github.com/cgwd/cgwd/test/netns/labkit"
)

// What deploy/systemd/cgwd.service grants: a user of its own and these
// ambient capabilities, nothing else.
const (
	unprivUID  = 65534 // nobody: any user that is not root will do
	unprivCaps = "+net_admin,+net_raw,+net_bind_service"
	// CAP_NET_BIND_SERVICE (10), CAP_NET_ADMIN (12), CAP_NET_RAW (13).
	unprivCapEff = "0000000000003400"
	unprivDir    = "/run/cgwd-unpriv"
)

// TestUnprivilegedCgwd runs the lab with cgwd as a user that is not root,
// holding only the systemd unit's three capabilities and owning its secret
// files: with WireGuard and with IPsec tunnels, ECMP (the one sysctl cgwd
// writes) and the nftables lock-down, everything must work as under root.
func TestUnprivilegedCgwd(t *testing.T) {
	labkit.Require(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv (util-linux) not installed")
	}
	for _, kind := range []string{"wireguard", "ipsec"} {
		t.Run(kind, func(t *testing.T) { testUnprivileged(t, kind) })
	}
}

func testUnprivileged(t *testing.T, kind string) {
	if kind == "ipsec" {
		labkit.UpIPsec(t)
	} else {
		labkit.Up(t)
	}

	// The lab's config and keys, moved to a directory the user owns.
	os.RemoveAll(unprivDir)
	if err := os.MkdirAll(unprivDir+"/keys", 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(unprivDir) })
	keys, _ := filepath.Glob(labkit.State + "/keys/*")
	for _, k := range keys {
		if strings.HasSuffix(k, ".pub") {
			continue
		}
		b, err := os.ReadFile(k)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(unprivDir+"/keys/"+filepath.Base(k), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	yaml := labkit.Edited(t, labkit.ReplaceN(labkit.State+"/", unprivDir+"/", -1), labkit.ECMP)
	cfgPath := unprivDir + "/cgwd.yaml"
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chown", "-R", fmt.Sprintf("%d:%d", unprivUID, unprivUID), unprivDir).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v\n%s", err, out)
	}
	// WireGuard's UAPI directory as the unit's ExecStartPre leaves it.
	if kind == "wireguard" {
		var st syscall.Stat_t
		if err := syscall.Stat("/run/wireguard", &st); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown("/run/wireguard", 0, unprivUID); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod("/run/wireguard", 0o775|os.ModeSticky); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			os.Chown("/run/wireguard", int(st.Uid), int(st.Gid))
			os.Chmod("/run/wireguard", os.FileMode(st.Mode&0o777))
		})
	}
	labkit.MustInNS(t, labkit.CGW, "sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy=0")

	runAs := []string{
		fmt.Sprintf("--reuid=%d", unprivUID), fmt.Sprintf("--regid=%d", unprivUID), "--clear-groups",
		"--inh-caps=-all," + unprivCaps, "--ambient-caps=-all," + unprivCaps,
		"--bounding-set=-all," + unprivCaps, "--no-new-privs", labkit.CgwdBin}
	if out, err := labkit.Command(labkit.CGW, "setpriv", append(runAs, "check-config", "-c", cfgPath)...).CombinedOutput(); err != nil {
		t.Fatalf("check-config as uid %d: %v\n%s", unprivUID, err, out)
	}
	logf, err := os.Create(filepath.Join(t.TempDir(), "cgwd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := labkit.Command(labkit.CGW, "setpriv", append(runAs, "run", "-c", cfgPath)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() error {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			return err
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("cgwd did not exit within 15 s of SIGTERM")
		}
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			stop()
		}
	})
	logOnFailure := func() {
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("cgwd log:\n%s", b)
		}
	}
	t.Cleanup(logOnFailure)

	labkit.Eventually(t, 30*time.Second, "both tunnels up", func() error {
		st, err := labkit.QueryStatus(unprivDir + "/cgwd.sock")
		if err != nil {
			return err
		}
		for _, tn := range st.Tunnels {
			if tn.State != tunnel.StateUp {
				return fmt.Errorf("%s is %s", tn.Name, tn.State)
			}
		}
		return nil
	})
	// ip netns exec and setpriv exec in place: the PID is cgwd's.
	procStatus, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{fmt.Sprintf("Uid:\t%d\t%d\t%d", unprivUID, unprivUID, unprivUID), "CapEff:\t" + unprivCapEff} {
		if !strings.Contains(string(procStatus), want) {
			t.Fatalf("cgwd's /proc status lacks %q:\n%s", want, procStatus)
		}
	}
	labkit.AWSBird.WaitEstablished(t, 30*time.Second, true, labkit.BirdSessions...)
	labkit.PingVPC(t)
	if out, _ := labkit.InNS(labkit.CGW, "sysctl", "-n", "net.ipv4.fib_multipath_hash_policy"); strings.TrimSpace(out) != "1" {
		t.Errorf("fib_multipath_hash_policy = %q, want 1 (written by cgwd for ECMP)", out)
	}
	if out, err := labkit.InNS(labkit.CGW, "nft", "list", "table", "inet", "cgwd"); err != nil {
		t.Errorf("cgwd's nftables table missing: %v\n%s", err, out)
	}

	stopped = true
	if err := stop(); err != nil {
		t.Fatalf("cgwd exit after SIGTERM: %v", err)
	}
	for _, dev := range []string{labkit.T1, labkit.T2} {
		if out, err := labkit.InNS(labkit.CGW, "ip", "link", "show", dev); err == nil {
			t.Errorf("%s left behind after SIGTERM:\n%s", dev, out)
		}
	}
}
