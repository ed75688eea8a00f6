package netns

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/control"
	"github.com/cgwd/cgwd/pkg/tunnel"
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
	requireLab(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv (util-linux) not installed")
	}
	for _, kind := range []string{"wireguard", "ipsec"} {
		t.Run(kind, func(t *testing.T) { testUnprivileged(t, kind) })
	}
}

func testUnprivileged(t *testing.T, kind string) {
	if kind == "ipsec" {
		ipsecRun(t, labSh, nil, "up")
	} else {
		lab(t, "up")
	}
	t.Cleanup(func() { lab(t, "down") })

	// The lab's config and keys, moved to a directory the user owns.
	os.RemoveAll(unprivDir)
	if err := os.MkdirAll(unprivDir+"/keys", 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(unprivDir) })
	keys, _ := filepath.Glob(labState + "/keys/*")
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
	cfg, err := os.ReadFile(labState + "/cgwd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	yaml := strings.ReplaceAll(string(cfg), labState+"/", unprivDir+"/")
	yaml = strings.Replace(yaml, "  - name: vpn1\n", "  - name: vpn1\n    mode: ecmp\n", 1)
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
	if out, err := inNS("lab-cgw", "sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy=0"); err != nil {
		t.Fatalf("sysctl: %v\n%s", err, out)
	}

	runAs := []string{"netns", "exec", "lab-cgw", "setpriv",
		fmt.Sprintf("--reuid=%d", unprivUID), fmt.Sprintf("--regid=%d", unprivUID), "--clear-groups",
		"--inh-caps=-all," + unprivCaps, "--ambient-caps=-all," + unprivCaps,
		"--bounding-set=-all," + unprivCaps, "--no-new-privs", cgwBin}
	if out, err := exec.Command("ip", append(runAs, "check-config", "-c", cfgPath)...).CombinedOutput(); err != nil {
		t.Fatalf("check-config as uid %d: %v\n%s", unprivUID, err, out)
	}
	logf, err := os.Create(filepath.Join(t.TempDir(), "cgwd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", append(runAs, "run", "-c", cfgPath)...)
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

	query := func() (*control.Status, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return control.Query(ctx, unprivDir+"/cgwd.sock")
	}
	eventually(t, 30*time.Second, "both tunnels up", func() error {
		st, err := query()
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
	eventually(t, 30*time.Second, "three BGP sessions Established in BIRD", func() error {
		for _, p := range []string{"aws_t1", "aws_t2", "aws_dx"} {
			if !birdEstablished(t, p) {
				return fmt.Errorf("%s not Established", p)
			}
		}
		return nil
	})
	pingVPC(t)
	if out, _ := inNS("lab-cgw", "sysctl", "-n", "net.ipv4.fib_multipath_hash_policy"); strings.TrimSpace(out) != "1" {
		t.Errorf("fib_multipath_hash_policy = %q, want 1 (written by cgwd for ECMP)", out)
	}
	if out, err := inNS("lab-cgw", "nft", "list", "table", "inet", "cgwd"); err != nil {
		t.Errorf("cgwd's nftables table missing: %v\n%s", err, out)
	}

	stopped = true
	if err := stop(); err != nil {
		t.Fatalf("cgwd exit after SIGTERM: %v", err)
	}
	for _, dev := range []string{"cgw-t1", "cgw-t2"} {
		if out, err := inNS("lab-cgw", "ip", "link", "show", dev); err == nil {
			t.Errorf("%s left behind after SIGTERM:\n%s", dev, out)
		}
	}
}
