package netns

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/test/netns/labkit"
)

// sysroot is the Debian root filesystem test/netns/sysroot.sh builds for
// TestSystemdUnitLab (CGWD_SYSROOT, as sysroot.sh takes it).
func sysroot() string {
	if d := os.Getenv("CGWD_SYSROOT"); d != "" {
		return d
	}
	return "/var/cache/cgwd/sysroot-bookworm"
}

// machine is a Debian system booted with systemd-nspawn: systemd is its
// PID 1, its network namespace is lab-cgw.
type machine struct {
	t      *testing.T
	nspawn *exec.Cmd
	exited chan struct{}
	leader int // PID 1 of the machine, as the host sees it
	log    *labkit.Buffer
}

// bootMachine boots the root filesystem dir read-only with a tmpfs overlay
// (nothing it writes outlives it) in lab-cgw's network namespace, with
// /dev/net/tun and install bound in at /root/install, and waits until
// systemd has finished booting.
func bootMachine(t *testing.T, dir, install string) *machine {
	t.Helper()
	m := &machine{t: t, exited: make(chan struct{}), log: &labkit.Buffer{}}
	m.nspawn = exec.Command("systemd-nspawn", "--quiet", "-D", dir, "--volatile=overlay", "--boot",
		// No systemd on the host: no machined to register with, no scope to ask for.
		"--register=no", "--keep-unit", "--console=read-only", "--machine=cgwd-lab",
		"--network-namespace-path=/run/netns/"+labkit.CGW,
		// nspawn keeps CAP_NET_ADMIN for --private-network only: lab-cgw
		// is this machine's own network, as the host's is a router's.
		"--capability=CAP_NET_ADMIN",
		"--bind=/dev/net/tun", "--bind-ro="+install+":/root/install")
	m.nspawn.Stdout, m.nspawn.Stderr = m.log, m.log
	if err := m.nspawn.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = m.nspawn.Wait(); close(m.exited) }()
	t.Cleanup(m.shutdown)
	// nspawn's first child sets the machine up and exits; PID 1 (systemd)
	// is the child of nspawn's that runs in another PID namespace.
	labkit.Eventually(t, 20*time.Second, "systemd-nspawn starts the machine's PID 1", func() error {
		self, err := os.Readlink("/proc/self/ns/pid")
		if err != nil {
			return err
		}
		pid := m.nspawn.Process.Pid
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		if err != nil {
			return err
		}
		for _, f := range strings.Fields(string(b)) {
			child, _ := strconv.Atoi(f)
			if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", child)); err == nil && ns != self {
				m.leader = child
				return nil
			}
		}
		return fmt.Errorf("no child of systemd-nspawn in a PID namespace of its own yet (children: %q)", strings.TrimSpace(string(b)))
	})
	labkit.Eventually(t, 60*time.Second, "the machine's systemd finishes booting", func() error {
		out, _ := m.try("systemctl", "is-system-running")
		switch s := strings.TrimSpace(out); s {
		case "running":
			return nil
		case "degraded":
			failed, _ := m.try("systemctl", "--no-pager", "--failed")
			t.Logf("the machine booted degraded:\n%s", failed)
			return nil
		default:
			return fmt.Errorf("%s", s)
		}
	})
	return m
}

// try runs a command inside the machine (all its namespaces) and returns its combined output.
func (m *machine) try(args ...string) (string, error) {
	ns := []string{"-t", strconv.Itoa(m.leader), "-m", "-u", "-i", "-n", "-p", "--"}
	out, err := exec.Command("nsenter", append(ns, args...)...).CombinedOutput()
	return string(out), err
}

// run is try that fails t on an error.
func (m *machine) run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := m.try(args...)
	if err != nil {
		t.Fatalf("in the machine: %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// unit is cgwd.service's properties in the machine.
func (m *machine) unit(t *testing.T) map[string]string {
	t.Helper()
	props := map[string]string{}
	for _, line := range strings.Split(m.run(t, "systemctl", "show", "cgwd.service",
		"-p", "ActiveState,SubState,Result,MainPID,NRestarts,StatusText,ExecMainStatus,WatchdogTimestampMonotonic"), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			props[k] = v
		}
	}
	return props
}

// journal is cgwd.service's journal in the machine.
func (m *machine) journal() string {
	out, _ := m.try("journalctl", "--no-pager", "-o", "short-precise", "-u", "cgwd.service")
	return out
}

// shutdown powers the machine off and waits (30 s at most) for nspawn to exit.
func (m *machine) shutdown() {
	if m.t.Failed() {
		m.t.Logf("cgwd.service's journal:\n%s", m.journal())
	}
	if m.leader != 0 {
		_, _ = m.try("systemctl", "--no-block", "poweroff")
	}
	select {
	case <-m.exited:
		return
	case <-time.After(30 * time.Second):
	}
	m.t.Errorf("the machine did not power off within 30 s; killing systemd-nspawn (pid %d)\n%s", m.nspawn.Process.Pid, m.log.String())
	_ = m.nspawn.Process.Kill()
	<-m.exited
}

// installSteps are the "Install" lines of deploy/systemd/cgwd.service's
// header, as a shell script with secrets for SECRETS.
func installSteps(t *testing.T, secrets string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(labkit.Root, "deploy/systemd/cgwd.service"))
	if err != nil {
		t.Fatal(err)
	}
	// The indented comment lines after "# Install", up to the first other line.
	var steps []string
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		cmd, ok := strings.CutPrefix(line, "#   ")
		if strings.HasPrefix(line, "# Install") {
			in = true
		} else if in && ok {
			steps = append(steps, strings.ReplaceAll(cmd, "SECRETS", secrets))
		} else if len(steps) > 0 {
			break
		}
	}
	if len(steps) == 0 {
		t.Fatal("no install steps in cgwd.service's header")
	}
	return strings.Join(steps, "\n")
}

// TestSystemdUnitLab runs deploy/systemd/cgwd.service under a real systemd:
// a Debian 12 root filesystem (test/netns/sysroot.sh, `make test-system`)
// booted with systemd-nspawn in lab-cgw's network namespace. It installs
// and starts cgwd with the unit header's install lines, checks READY, that the
// sandbox lets cgwd use TUN, netlink (routes, nexthop objects), nftables and
// the one sysctl it writes, the basic lab checks, that `systemctl reload`
// applies a change, a restart without outage on SIGUSR2 as the unit's
// comments say, that the watchdog restarts a daemon that stopped answering
// (SIGSTOP), and a clean `systemctl stop` that puts ip_forward back as it
// was before the first start, across both restarts.
func TestSystemdUnitLab(t *testing.T) {
	labkit.Require(t)
	for _, tool := range []string{"systemd-nspawn", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian: systemd-container, util-linux): make test-system installs it", tool)
		}
	}
	dir := sysroot()
	if _, err := os.Stat(filepath.Join(dir, ".cgwd-sysroot")); err != nil {
		t.Skipf("no Debian root filesystem at %s: make test-system builds it (test/netns/sysroot.sh, from Debian's mirrors)", dir)
	}
	labkit.Up(t)

	// /root/install in the machine: the checkout's files the install steps
	// name, cgwd.yaml and its key files.
	install := labkit.State + "/systemd-install"
	installConfig(t, install, "/etc/cgwd", "/run/cgwd/cgwd.sock")
	for _, f := range []string{"bin/cgwd", "deploy/systemd/cgwd.service", "deploy/systemd/cgwd.sysusers"} {
		b, err := os.ReadFile(filepath.Join(labkit.Root, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(install, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(install, f), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The kernel's default, so that cgwd has to write it through the unit's
	// ReadWritePaths= hole in ProtectKernelTunables=.
	labkit.MustInNS(t, labkit.CGW, "sysctl", "-qw", "net.ipv4.nexthop_compat_mode=1")
	// A fresh box forwards nothing: cgwd turns forwarding on, and its last
	// stop, after a SIGUSR2 and a watchdog restart, must turn it off again.
	forward := strings.TrimSpace(labkit.MustInNS(t, labkit.CGW, "sysctl", "-n", "net.ipv4.ip_forward"))
	labkit.MustInNS(t, labkit.CGW, "sysctl", "-qw", "net.ipv4.ip_forward=0")
	t.Cleanup(func() { _, _ = labkit.InNS(labkit.CGW, "sysctl", "-qw", "net.ipv4.ip_forward="+forward) })

	m := bootMachine(t, dir, install)
	sock := fmt.Sprintf("/proc/%d/root/run/cgwd/cgwd.sock", m.leader)

	var mainPID string
	t.Run("InstalledAsTheUnitSaysStartsAtReady", func(t *testing.T) {
		// The last step, systemctl enable --now, returns once cgwd sent
		// READY=1 (Type=notify).
		m.run(t, "timeout", "120", "sh", "-eu", "-c", "cd /root/install\n"+installSteps(t, labkit.T1+".key "+labkit.T2+".key"))
		u := m.unit(t)
		if u["ActiveState"] != "active" || u["SubState"] != "running" || u["StatusText"] != "running" {
			t.Fatalf("after start: %v\n%s", u, m.journal())
		}
		mainPID = u["MainPID"]
		st, err := labkit.QueryStatus(sock)
		if err != nil || len(st.Tunnels) != 2 {
			t.Fatalf("READY=1 sent but the control socket does not answer with both tunnels: %v", err)
		}
	})
	if mainPID == "" {
		t.FailNow()
	}

	t.Run("RunsAsItsOwnUserWithThreeCapabilities", func(t *testing.T) {
		uid := strings.TrimSpace(m.run(t, "id", "-u", "cgwd"))
		status := m.run(t, "cat", "/proc/"+mainPID+"/status")
		for _, want := range []string{
			"Uid:\t" + uid + "\t" + uid + "\t" + uid + "\t" + uid,
			"CapEff:\t0000000000003400", // NET_BIND_SERVICE, NET_ADMIN, NET_RAW
			"NoNewPrivs:\t1",
			"Seccomp:\t2",
		} {
			if !strings.Contains(status, want+"\n") {
				t.Errorf("cgwd's /proc/PID/status lacks %q:\n%s", want, status)
			}
		}
	})

	checkBasicLab(t, sock)

	t.Run("SandboxAllowsTUNNetlinkNftablesAndItsSysctl", func(t *testing.T) {
		if out := labkit.MustInNS(t, labkit.CGW, "ip", "-d", "link", "show", labkit.T1); !strings.Contains(out, "tun type tun") {
			t.Errorf("%s is not a TUN netdev:\n%s", labkit.T1, out)
		}
		if _, _, nexthops := labkit.CgwdKernel(t); nexthops == "" {
			t.Error("no nexthop object of cgwd's in lab-cgw")
		}
		if out := labkit.Nft(t, labkit.CGW, "list", "table", "inet", "cgwd"); !strings.Contains(out, labkit.WAN) {
			t.Errorf("cgwd's nftables table does not name %s:\n%s", labkit.WAN, out)
		}
		if v := strings.TrimSpace(labkit.MustInNS(t, labkit.CGW, "sysctl", "-n", "net.ipv4.nexthop_compat_mode")); v != "0" {
			t.Errorf("net.ipv4.nexthop_compat_mode = %s, want 0 (cgwd writes it at start)", v)
		}
	})

	t.Run("ReloadAppliesAChange", func(t *testing.T) {
		m.run(t, "sed", "-i", "s|prefixes: \\[10.10.0.0/16\\]|prefixes: [10.10.0.0/16, 10.11.0.0/16]|", "/etc/cgwd/cgwd.yaml")
		m.run(t, "systemctl", "reload", "cgwd.service")
		labkit.Eventually(t, 15*time.Second, "BIRD learns 10.11.0.0/16 from cgwd", func() error {
			out, err := labkit.AWSBird.Try("show", "route", "10.11.0.0/16")
			if err != nil || !strings.Contains(out, "10.11.0.0/16") {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
		if u := m.unit(t); u["MainPID"] != mainPID || u["NRestarts"] != "0" {
			t.Errorf("reload restarted cgwd: %v (MainPID was %s)", u, mainPID)
		}
		if j := m.journal(); !strings.Contains(j, "reload: applied") {
			t.Errorf("no \"reload: applied\" in the journal:\n%s", j)
		}
	})

	t.Run("WatchdogRestartsAStoppedDaemon", func(t *testing.T) {
		m.run(t, "kill", "-STOP", mainPID)
		// WatchdogSec=30s, then SIGABRT (and SIGCONT), RestartSec=2s, start.
		labkit.Eventually(t, 90*time.Second, "systemd restarts cgwd", func() error {
			u := m.unit(t)
			if u["NRestarts"] == "0" || u["MainPID"] == mainPID || u["ActiveState"] != "active" || u["SubState"] != "running" {
				return fmt.Errorf("%v", u)
			}
			return nil
		}, labkit.Every(time.Second))
		if j := m.journal(); !strings.Contains(j, "Watchdog timeout") {
			t.Errorf("the journal does not say the watchdog fired:\n%s", j)
		}
		mainPID = m.unit(t)["MainPID"]
	})
	t.Run("SIGUSR2RestartsInPlace", func(t *testing.T) {
		// systemd at debug level logs each notification and state change,
		// in order: what the restart told it, without racing a short state.
		level := strings.TrimSpace(m.run(t, "systemd-analyze", "log-level"))
		m.run(t, "systemd-analyze", "log-level", "debug")
		defer m.run(t, "systemd-analyze", "log-level", level)
		seen := len(strings.Split(m.journal(), "\n"))
		since := func() string { return strings.Join(strings.Split(m.journal(), "\n")[seen-1:], "\n") }
		restarts := m.unit(t)["NRestarts"]
		start := time.Now()
		m.run(t, "systemctl", "kill", "-s", "SIGUSR2", "cgwd.service")
		// Until the new run answers: the same process, the unit active or
		// reloading (never failed or restarted), cgwd's route in the kernel.
		labkit.Eventually(t, 20*time.Second, "cgwd running again in the same process", func() error {
			if _, ok := labkit.CgwdRoutes(t)[labkit.VPCNet]; !ok {
				t.Fatalf("%s left lab-cgw's kernel during the restart", labkit.VPCNet)
			}
			u := m.unit(t)
			if u["MainPID"] != mainPID || u["NRestarts"] != restarts || (u["ActiveState"] != "active" && u["ActiveState"] != "reloading") {
				t.Fatalf("during the restart: %v (MainPID was %s)", u, mainPID)
			}
			if u["ActiveState"] != "active" || !strings.Contains(since(), "msg=\"cgwd running\"") {
				return fmt.Errorf("%v, no second run logged", u)
			}
			_, err := labkit.QueryStatus(sock)
			return err
		}, labkit.Every(50*time.Millisecond))
		t.Logf("cgwd answered again %v after the signal", time.Since(start).Round(time.Millisecond))
		j := since()
		for _, want := range []string{
			"SIGUSR2: restarting without outage",
			"cgwd.service: Changed running -> reload",
			"cgwd.service: Changed reload -> running",
		} {
			if !strings.Contains(j, want) {
				t.Errorf("no %q in the journal since the signal:\n%s", want, j)
			}
		}
		// WATCHDOG_USEC survives the exec, not the old run's last ping,
		// which may be WatchdogSec/2 old already: the new run pings at
		// READY=1, not only WatchdogSec/2 later, when the watchdog may have
		// fired.
		labkit.Eventually(t, 3*time.Second, "the new run pings the watchdog at READY=1", func() error {
			_, after, ok := strings.Cut(since(), "Got notification message from PID "+mainPID+" (READY=1")
			if !ok {
				return fmt.Errorf("no READY=1 from PID %s logged", mainPID)
			}
			if !strings.Contains(after, "WATCHDOG=1") {
				return fmt.Errorf("no WATCHDOG=1 with or after READY=1:%s", after)
			}
			return nil
		})
		if v := strings.TrimSpace(labkit.MustInNS(t, labkit.CGW, "sysctl", "-n", "net.ipv4.ip_forward")); v != "1" {
			t.Errorf("ip_forward = %s after the restart, want 1", v)
		}
	})
	checkBasicLab(t, sock)

	t.Run("StopIsClean", func(t *testing.T) {
		m.run(t, "timeout", "60", "systemctl", "stop", "cgwd.service")
		if u := m.unit(t); u["ActiveState"] != "inactive" || u["Result"] != "success" {
			t.Errorf("after stop: %v", u)
		}
		if j := m.journal(); !strings.Contains(j, "cgwd stopped") {
			t.Errorf("no clean stop in the journal:\n%s", j)
		}
		checkCleanStop(t, sock)
		if v := strings.TrimSpace(labkit.MustInNS(t, labkit.CGW, "sysctl", "-n", "net.ipv4.ip_forward")); v != "0" {
			t.Errorf("ip_forward = %s after the stop, want 0 as before the first start (recorded in /run/cgwd across the restarts)", v)
		}
	})
}
