// Package systemd holds cgwd's systemd unit; its test checks the unit with
// systemd-analyze when that is installed.
package systemd

import (
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
		"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK", "ReadWritePaths=/run/wireguard",
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
	if level > 3.5 {
		t.Fatalf("exposure level %.1f is above 3.5: the hardening regressed\n%s", level, out)
	}
}
