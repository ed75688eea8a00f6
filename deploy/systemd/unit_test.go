// Package systemd holds cgwd's systemd unit; its test checks the unit with
// systemd-analyze when that is installed.
package systemd

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// unitForVerify returns the unit with ExecStart pointing at an executable
// that exists here, written to a temporary cgwd.service.
func unitForVerify(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("cgwd.service")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cgwd.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/cgwd", "/bin/true")), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestUnitHasWhatCgwdNeeds(t *testing.T) {
	b, err := os.ReadFile("cgwd.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, line := range []string{
		"Type=notify", "WatchdogSec=", "ExecStart=/usr/local/bin/cgwd run -c /etc/cgwd/cgwd.yaml",
		"ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "NoNewPrivileges=yes",
		"CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE",
		"AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE",
		"RuntimeDirectory=cgwd", "DeviceAllow=/dev/net/tun rw",
		"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK", "ReadWritePaths=-/run/wireguard",
		// Not root: a system user of its own, whose secret files cgwd checks it owns.
		"User=cgwd", "Group=cgwd",
		"ProtectKernelTunables=yes", "SystemCallFilter=~@privileged @resources",
	} {
		if !strings.Contains(unit, "\n"+line) {
			t.Errorf("cgwd.service lacks %q", line)
		}
	}
}

func TestSystemdAnalyzeVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed; skipping unit verification")
	}
	// verify exits 0 on unknown keys and bad values, so any output is a failure.
	out, err := exec.Command("systemd-analyze", "verify", unitForVerify(t)).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestSystemdAnalyzeSecurity(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed")
	}
	out, err := exec.Command("systemd-analyze", "security", "--offline=yes", "--no-pager", unitForVerify(t)).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for cgwd\.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Skipf("systemd-analyze security --offline unavailable here (%v)", err)
	}
	level, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("systemd-analyze security exposure: %.1f", level)
	// 0 is locked down, 10 is unprotected; a router with CAP_NET_ADMIN cannot reach 0.
	// 1.8 with its own user, ProtectKernelTunables and the syscall deny list
	// (2.8 as root without them).
	if level > 2.0 {
		t.Fatalf("exposure level %.1f is above 2.0: the hardening regressed\n%s", level, out)
	}
}

// sysctlWrite finds a /proc/sys path written on the same line (os.WriteFile
// or an open for writing).
var sysctlWrite = regexp.MustCompile(`(?:WriteFile\(|O_WRONLY|O_RDWR).*"(/proc/sys/[^"]+)"|"(/proc/sys/[^"]+)".*(?:O_WRONLY|O_RDWR)`)

// sysctlLiteral is a /proc/sys path in a string literal.
var sysctlLiteral = regexp.MustCompile(`"(/proc/sys/[^"]+)"`)

// With ProtectKernelTunables=yes every sysctl cgwd writes must be listed in
// ReadWritePaths=, and nothing else under /proc/sys may be.
func TestUnitMakesWritableExactlyTheSysctlsCgwdWrites(t *testing.T) {
	written := map[string]bool{}
	for _, dir := range []string{"../../pkg", "../../cmd"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range sysctlWrite.FindAllStringSubmatch(string(b), -1) {
				written[m[1]+m[2]] = true
			}
			if filepath.ToSlash(path) == "../../pkg/fib/sysctl.go" {
				// The one place routing's sysctls are written: every path
				// named there is written (conf/ for the netdevs' rp_filter).
				for _, m := range sysctlLiteral.FindAllStringSubmatch(string(b), -1) {
					written[strings.TrimSuffix(m[1], "/")] = true
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(written) == 0 {
		t.Fatal("found no sysctl write in pkg/ or cmd/: the pattern no longer matches the code")
	}
	b, err := os.ReadFile("cgwd.service")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "ReadWritePaths="); ok {
			for _, p := range strings.Fields(v) {
				if p = strings.TrimLeft(p, "-+"); strings.HasPrefix(p, "/proc/sys") {
					listed[p] = true
				}
			}
		}
	}
	for p := range written {
		if !listed[p] {
			t.Errorf("cgwd writes %s, which cgwd.service leaves read-only (add it to ReadWritePaths=)", p)
		}
	}
	for p := range listed {
		if !written[p] {
			t.Errorf("cgwd.service makes %s writable, which cgwd never writes", p)
		}
	}
}

// Every command's namespace needs the ReadWritePaths= that must exist, so
// the root ExecStartPre that creates /run/wireguard comes first; its own
// namespace is set up before it runs, so /run/wireguard is listed with "-"
// (TestUnitHasWhatCgwdNeeds). TestSystemdUnitLab (test/netns) runs it.
func TestWireGuardDirectoryIsMadeBeforeTheSandbox(t *testing.T) {
	b, err := os.ReadFile("cgwd.service")
	if err != nil {
		t.Fatal(err)
	}
	var pre []string
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "ExecStartPre="); ok {
			pre = append(pre, v)
		}
	}
	if len(pre) == 0 || !strings.HasPrefix(pre[0], "+") || !strings.Contains(pre[0], "/run/wireguard") {
		t.Fatalf("the first ExecStartPre must create /run/wireguard as root (\"+\"), got %q", pre)
	}
}

func TestSysusersDeclaresTheUnitsUser(t *testing.T) {
	b, err := os.ReadFile("cgwd.sysusers")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^u cgwd `).Match(b) {
		t.Fatalf("cgwd.sysusers does not declare user cgwd:\n%s", b)
	}
}
