package netns

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/tunnel"
	"github.com/cgwd/cgwd/test/netns/labkit"
)

const (
	// containerImage is the tag the container test builds with deploy/container/image.sh.
	containerImage = "localhost/cgwd:lab-test"
	containerName  = "cgwd-lab"
)

// podman runs podman with args, on runc where it is installed (crun fails
// on a hybrid cgroup set-up), and returns its combined output.
func podman(args ...string) (string, error) {
	if _, err := exec.LookPath("runc"); err == nil {
		args = append([]string{"--runtime", "runc"}, args...)
	}
	out, err := exec.Command("podman", args...).CombinedOutput()
	return string(out), err
}

// installConfig writes the lab's cgwd.yaml and WireGuard keys into dir, all
// mode 0600, as an operator installs them in confDir: the config names its
// keys confDir/KEY and its control socket sock.
func installConfig(t *testing.T, dir, confDir, sock string) {
	t.Helper()
	cfg, err := os.ReadFile(labkit.Config)
	if err != nil {
		t.Fatal(err)
	}
	yaml := strings.ReplaceAll(string(cfg), labkit.State+"/keys/", confDir+"/")
	yaml = strings.Replace(yaml, "control_socket: "+labkit.Sock, "control_socket: "+sock, 1)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/cgwd.yaml", []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{labkit.T1 + ".key", labkit.T2 + ".key"} {
		b, err := os.ReadFile(labkit.State + "/keys/" + k)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dir+"/"+k, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// checkBasicLab asserts what a working cgwd shows in the lab, whatever runs
// it: both tunnels up (its status behind sock), the three BGP sessions
// Established in BIRD, the VPC prefix in lab-cgw's kernel, a ping from
// on-prem to the VPC, and the metrics on lab-cgw's loopback. The first two
// stop the test when they fail: nothing after them can pass.
func checkBasicLab(t *testing.T, sock string) {
	t.Helper()
	up := t.Run("BothTunnelsUp", func(t *testing.T) {
		labkit.Eventually(t, 30*time.Second, "both tunnels up", func() error {
			st, err := labkit.QueryStatus(sock)
			if err != nil {
				return err
			}
			if len(st.Tunnels) != 2 {
				return fmt.Errorf("%d tunnels", len(st.Tunnels))
			}
			for _, tn := range st.Tunnels {
				if tn.State != tunnel.StateUp {
					return fmt.Errorf("%s is %s", tn.Name, tn.State)
				}
			}
			return nil
		})
	})
	if !up {
		t.FailNow()
	}
	established := t.Run("ThreeBGPSessionsEstablished", func(t *testing.T) {
		labkit.AWSBird.WaitEstablished(t, 30*time.Second, true, labkit.BirdSessions...)
		labkit.WaitRoute(t, 10*time.Second, labkit.VPCNet, labkit.DXPeer, labkit.DX)
	})
	if !established {
		t.FailNow()
	}
	t.Run("PingOnPremToVPC", func(t *testing.T) { labkit.PingVPC(t) })
	t.Run("MetricsScrape", func(t *testing.T) { labkit.Scrape(t).CheckUp(t) })
}

// checkCleanStop asserts that a stopped cgwd took its netdevs, routes,
// nexthop objects and control socket with it (the fail-closed routes stay
// on purpose: TestFailClosedLab).
func checkCleanStop(t *testing.T, sock string) {
	t.Helper()
	links, _ := labkit.InNS(labkit.CGW, "ip", "-o", "link")
	for _, name := range []string{labkit.T1, labkit.T2} {
		if strings.Contains(links, name) {
			t.Errorf("netdev %s left behind", name)
		}
	}
	if routes, _, nexthops := labkit.CgwdKernel(t); routes != "" || nexthops != "" {
		t.Errorf("cgwd's routes or nexthop objects left behind:\n%s\n%s", routes, nexthops)
	}
	if _, err := os.Stat(sock); err == nil {
		t.Errorf("control socket %s left behind", sock)
	}
}

// TestContainerLab builds cgwd's image (deploy/container/image.sh, as
// `make image` does: a static binary on an empty base) and runs it with
// podman inside lab-cgw's network namespace, with only the capabilities and
// device deploy/container/README.md grants, a read-only root and the config
// mounted read-only; then it runs the basic lab checks and stops the
// container.
func TestContainerLab(t *testing.T) {
	labkit.Require(t)
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skip("podman not installed (Debian: apt-get install podman runc): skipping the container test")
	}
	build := exec.Command(filepath.Join(labkit.Root, "deploy/container/image.sh"), containerImage)
	build.Env = append(os.Environ(), "VERSION=lab-test")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("image.sh: %v\n%s", err, out)
	}
	labkit.Up(t)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := podman("logs", containerName)
			t.Logf("podman logs %s:\n%s", containerName, out)
		}
		_, _ = podman("rm", "-f", "-t", "5", containerName)
	})

	dir := labkit.State + "/container"
	installConfig(t, dir+"/etc", "/etc/cgwd", "/run/cgwd/cgwd.sock")
	// rp_filter of netdevs cgwd makes itself cannot be set beforehand by
	// the host: in a container forwarding is the host's (lab.sh turned it on).
	f, err := os.OpenFile(dir+"/etc/cgwd.yaml", os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("manage_forwarding: false\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.MkdirAll(dir+"/run", 0o700); err != nil {
		t.Fatal(err)
	}
	sock := dir + "/run/cgwd.sock"
	// The container's /proc/sys is read-only: the sysctl cgwd wants is set
	// by "the host" (lab-cgw is the container's network namespace), as
	// deploy/container/README.md tells operators to do in /etc/sysctl.d.
	labkit.MustInNS(t, labkit.CGW, "sysctl", "-qw", "net.ipv4.nexthop_compat_mode=0")

	out, err := podman("run", "-d", "--replace", "--name", containerName,
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
		"--network", "ns:/run/netns/"+labkit.CGW,
		"--cap-drop", "ALL", "--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW", "--cap-add", "NET_BIND_SERVICE",
		"--device", "/dev/net/tun", "--read-only", "--security-opt", "no-new-privileges",
		"-v", dir+"/etc:/etc/cgwd:ro", "-v", dir+"/run:/run/cgwd",
		"-v", "/run/wireguard:/var/run/wireguard",
		containerImage)
	if err != nil {
		t.Fatalf("podman run: %v\n%s", err, out)
	}

	t.Run("ConfigMountedReadOnly", func(t *testing.T) {
		out, err := podman("inspect", "--format", `{{range .Mounts}}{{.Destination}}={{.RW}} {{end}}`, containerName)
		if err != nil {
			t.Fatalf("podman inspect: %v\n%s", err, out)
		}
		if !strings.Contains(out, "/etc/cgwd=false") {
			t.Errorf("/etc/cgwd is not mounted read-only: %s", out)
		}
	})
	checkBasicLab(t, sock)

	t.Run("CleanStop", func(t *testing.T) {
		if out, err := podman("stop", "-t", "30", containerName); err != nil {
			t.Fatalf("podman stop: %v\n%s", err, out)
		}
		code, err := podman("inspect", "--format", "{{.State.ExitCode}}", containerName)
		if err != nil || strings.TrimSpace(code) != "0" {
			t.Errorf("container exit code %q (%v), want 0", strings.TrimSpace(code), err)
		}
		logs, _ := podman("logs", containerName)
		if !strings.Contains(logs, "cgwd stopped") {
			t.Errorf("no clean stop in the container's log:\n%s", logs)
		}
		checkCleanStop(t, sock)
	})
}
