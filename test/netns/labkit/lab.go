// Package labkit is the one harness of cgwd's lab tests: it builds and tears
// down the lab of network namespaces (through lab.sh, which `make lab` uses
// too), starts and stops cgwd with config edits, enters namespaces, reads
// routes, drives nftables, BIRD and strongSwan, scrapes metrics and polls
// with one poller. Names and addresses of the lab are the constants below;
// test/netns/README.md draws them.
package labkit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/control"
	"github.com/cgwd/cgwd/pkg/tunnel"
)

// Namespaces of the lab.
const (
	OnPrem = "lab-onprem" // an on-prem host
	CGW    = "lab-cgw"    // the customer gateway: cgwd runs here
	Inet   = "lab-inet"   // the internet between cgwd and AWS
	AWS    = "lab-aws"    // AWS's VPN endpoints (WireGuard lab), BIRD, the DX router
	VPC    = "lab-vpc"    // a host in the VPC
)

// Addresses of the lab.
const (
	OnPremHost = "10.10.0.10"                    // lab-onprem
	OnPremNet  = "10.10.0.0/16"                  // the prefix cgwd announces
	CGWLAN     = "10.10.0.1"                     // lab-cgw lan0
	CGWWAN     = "198.51.100.2"                  // lab-cgw wan0
	AWSOut1    = "203.0.113.10"                  // AWS's endpoint of tunnel 1
	AWSOut2    = "203.0.113.20"                  // AWS's endpoint of tunnel 2
	DXPeer     = "169.254.255.1"                 // AWS's end of Direct Connect
	DXLocal    = "169.254.255.2"                 // cgwd's end of Direct Connect
	T1Peer     = "169.254.10.1"                  // AWS's inside address of tunnel 1
	T1Local    = "169.254.10.2"                  // cgwd's inside address of tunnel 1
	T2Peer     = "169.254.11.1"                  // AWS's inside address of tunnel 2
	T2Local    = "169.254.11.2"                  // cgwd's inside address of tunnel 2
	VPCHost    = "10.200.0.10"                   // lab-vpc
	VPCNet     = "10.200.0.0/16"                 // BIRD's static "vpc"
	ExtraNet   = "10.201.0.0/16"                 // BIRD's static "extra", which tests withdraw
	MetricsURL = "http://127.0.0.1:9477/metrics" // cgwd's metrics, on lab-cgw's loopback
)

// Devices and cgwd's names for them.
const (
	DX      = "dx0"    // Direct Connect, in lab-cgw and lab-aws
	WAN     = "wan0"   // lab-cgw's internet side (and lab-aws's)
	T1      = "cgw-t1" // cgwd's tunnel 1
	T2      = "cgw-t2" // cgwd's tunnel 2
	AWST1   = "aws-t1" // AWS's side of tunnel 1, in lab-aws
	AWST2   = "aws-t2" // AWS's side of tunnel 2, in lab-aws
	DXPath  = "dx1"    // cgwd's Direct Connect path
	VPNName = "vpn1"
)

// BIRD's BGP protocols, one per session with cgwd.
const (
	BirdT1 = "aws_t1"
	BirdT2 = "aws_t2"
	BirdDX = "aws_dx"
)

// BirdSessions are BIRD's three BGP sessions with cgwd.
var BirdSessions = []string{BirdT1, BirdT2, BirdDX}

// Files of the lab.
const (
	State    = "/run/cgwd-lab"                   // lab.sh's LAB_STATE
	Lock     = "/run/cgwd-lab.lock"              // held by every lab user
	Sock     = State + "/cgwd.sock"              // cgwd's control socket
	Config   = State + "/cgwd.yaml"              // cgwd's config in the lab
	LogFile  = State + "/logs/cgwd.log"          // cgwd's log
	PIDFile  = State + "/pids/cgwd.pid"          // cgwd's PID
	GobgpAPI = "unix://" + State + "/gobgp.sock" // cgwd's gobgp API, as gobgp --target takes it
)

// Root is the checkout's root directory.
var Root = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "../../.."))
}()

// Paths of the lab's scripts and binaries.
var (
	LabSh       = filepath.Join(Root, "test/netns/lab.sh")
	IPsecShPath = filepath.Join(Root, "test/netns/ipsec.sh")
	CgwdBin     = filepath.Join(Root, "bin/cgwd")
)

// Main runs the tests holding the lab lock (as root): the namespace names
// are global, so two lab users at once would tear down each other's lab.
// A package's TestMain calls os.Exit(labkit.Main(m)).
func Main(m *testing.M) int {
	if os.Geteuid() != 0 {
		return m.Run()
	}
	f, err := os.OpenFile(Lock, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// RequireRoot skips unless the test runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("integration tests need root (network namespaces, TUN): run as root or with sudo")
	}
}

// RequireTools fails the test when one of tools is not installed.
func RequireTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (make deps installs it)", tool)
		}
	}
}

// Require skips when the machine cannot host the lab.
func Require(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("integration tests need /dev/net/tun: " + err.Error())
	}
	RequireTools(t, "wg", "jq", "ping")
}

// RequireStrongSwan is Require plus strongSwan's charon and swanctl.
func RequireStrongSwan(t testing.TB) {
	t.Helper()
	Require(t)
	for _, f := range []string{"/usr/lib/ipsec/charon", "/usr/sbin/swanctl"} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("strongSwan not installed (%s): make deps installs it", f)
		}
	}
}

// script runs a lab script with the lab's state directory and env.
func script(t testing.TB, path string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env = append(append(os.Environ(), "LAB_STATE="+State), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(path), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Sh runs a lab.sh subcommand (up, start-cgwd, wait-bgp, down, ...).
func Sh(t testing.TB, args ...string) { t.Helper(); script(t, LabSh, nil, args...) }

// Up builds the WireGuard lab (lab.sh up) and tears it down when the test ends.
func Up(t testing.TB) {
	t.Helper()
	Sh(t, "up")
	t.Cleanup(func() { Down(t) })
}

// UpIPsec builds the IPsec lab (TUNNEL=ipsec lab.sh up: strongSwan as AWS)
// and tears it down when the test ends.
func UpIPsec(t testing.TB) {
	t.Helper()
	script(t, LabSh, []string{"TUNNEL=ipsec"}, "up")
	t.Cleanup(func() { Down(t) })
}

// Down tears the lab down (lab.sh down).
func Down(t testing.TB) { t.Helper(); Sh(t, "down") }

// StartCgwd applies edits to the lab's cgwd.yaml and starts cgwd in
// lab-cgw; it returns once cgwd answers on its control socket.
func StartCgwd(t testing.TB, edits ...Edit) {
	t.Helper()
	if len(edits) > 0 {
		EditConfig(t, edits...)
	}
	Sh(t, "start-cgwd")
}

// WaitBGP waits (at most 30 s) until BIRD has all three sessions Established.
func WaitBGP(t testing.TB) { t.Helper(); Sh(t, "wait-bgp") }

// StartRouting starts cgwd with edits and waits until BIRD has all three
// sessions and lab-cgw routes the VPC host over Direct Connect.
func StartRouting(t testing.TB, edits ...Edit) {
	t.Helper()
	StartCgwd(t, edits...)
	WaitBGP(t)
	WaitDev(t, 30*time.Second, DX)
}

// RestartRouting stops cgwd (lab.sh stop-cgwd) and starts it again as
// StartRouting does.
func RestartRouting(t testing.TB, edits ...Edit) {
	t.Helper()
	Sh(t, "stop-cgwd")
	StartRouting(t, edits...)
}

// PID is the lab's cgwd process.
func PID(t testing.TB) int { t.Helper(); return Box1.PID(t) }

// StopCgwd sends the lab's cgwd SIGTERM and waits (at most 10 s) until it has exited.
func StopCgwd(t testing.TB) { t.Helper(); Box1.Signal(t, syscall.SIGTERM) }

// Reload sends cgwd SIGHUP and waits until its log has one more line containing want.
func Reload(t testing.TB, want string) {
	t.Helper()
	reload(t, PID(t), Log, want)
}

// reload sends pid SIGHUP and waits until log() has one more line containing want.
func reload(t testing.TB, pid int, log func() string, want string) {
	t.Helper()
	before := strings.Count(log(), want)
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 10*time.Second, "log line "+want, func() error {
		if strings.Count(log(), want) <= before {
			return fmt.Errorf("not logged")
		}
		return nil
	})
}

// Status asks the lab's cgwd for its status over the control socket.
func Status(t testing.TB) *control.Status {
	t.Helper()
	st, err := QueryStatus(Sock)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// QueryStatus asks the cgwd at control socket sock for its status.
func QueryStatus(sock string) (*control.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return control.Query(ctx, sock)
}

// Log is cgwd's log in the lab so far ("" when there is none).
func Log() string {
	b, _ := os.ReadFile(LogFile)
	return string(b)
}

// LogSince returns cgwd's log after offset, and the log's current length.
func LogSince(t testing.TB, offset int) (string, int) {
	t.Helper()
	b, err := os.ReadFile(LogFile)
	if err != nil {
		t.Fatal(err)
	}
	if offset > len(b) {
		offset = 0
	}
	return string(b[offset:]), len(b)
}

// LogOnFailure prints the end of cgwd's log if the test fails.
func LogOnFailure(t testing.TB) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		lines := strings.Split(Log(), "\n")
		t.Logf("cgwd.log (last 80 lines):\n%s", strings.Join(lines[max(0, len(lines)-80):], "\n"))
	})
}

// Eventually's poll interval unless Every says otherwise; lib.sh's
// wait_for polls at the same 0.1 s.
const pollInterval = 100 * time.Millisecond

// Every is an Eventually option: poll at this interval instead of 100 ms,
// for waits whose end is a measurement.
type Every time.Duration

// Eventually polls cond until it returns nil, and fails the test naming
// what it waited for and cond's last error once timeout has passed.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() error, every ...Every) {
	t.Helper()
	if err := Poll(timeout, cond, every...); err != nil {
		t.Fatalf("%s: not after %v: %v", what, timeout, err)
	}
}

// Poll is Eventually for a wait that may end unmet: it returns cond's last
// error once timeout has passed (cond runs at least once).
func Poll(timeout time.Duration, cond func() error, every ...Every) error {
	interval := pollInterval
	if len(every) > 0 {
		interval = time.Duration(every[0])
	}
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(interval)
	}
}

// WaitTunnels waits until cgwd reports every tunnel up and handshaken.
func WaitTunnels(t testing.TB, timeout time.Duration) {
	t.Helper()
	Eventually(t, timeout, "every tunnel up", func() error {
		for _, tn := range Status(t).Tunnels {
			if tn.State != tunnel.StateUp || tn.LastHandshake.IsZero() {
				return fmt.Errorf("%s is %s", tn.Name, tn.State)
			}
		}
		return nil
	})
}

// TunnelBytes is a tunnel's received and sent byte counters from cgwd's status.
func TunnelBytes(t testing.TB, name string) (rx, tx uint64) {
	t.Helper()
	for _, tn := range Status(t).Tunnels {
		if tn.Name == name {
			return tn.RxBytes, tn.TxBytes
		}
	}
	t.Fatalf("no tunnel %s", name)
	return 0, 0
}
