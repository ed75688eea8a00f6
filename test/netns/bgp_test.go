package netns

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// birdc runs a BIRD CLI command against the lab's AWS-side BIRD.
func birdc(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("birdc", append([]string{"-s", labState + "/bird-aws.ctl"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("birdc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// kernelRoute is one route of `ip -j route`.
type kernelRoute struct {
	Dst      string `json:"dst"`
	Gateway  string `json:"gateway"`
	Dev      string `json:"dev"`
	Protocol string `json:"protocol"`
}

// cgwRoutes lists lab-cgw's main-table unicast routes of cgwd's protocol
// (200): its fail-closed routes (unreachable) are not routes to AWS.
func cgwRoutes(t *testing.T) map[string]kernelRoute {
	t.Helper()
	out, err := inNS("lab-cgw", "ip", "-j", "route", "show", "proto", "200", "type", "unicast")
	if err != nil {
		t.Fatalf("ip route: %v\n%s", err, out)
	}
	var rs []kernelRoute
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("ip -j route: %v\n%s", err, out)
	}
	m := map[string]kernelRoute{}
	for _, r := range rs {
		m[r.Dst] = r
	}
	return m
}

// routeVia waits until prefix is in lab-cgw's kernel (a route of cgwd's
// protocol) and packets to its first address leave via gw on dev; gw == ""
// means: no route of cgwd's for prefix. It asks `ip route get`, because cgwd's
// routes point at nexthop groups, which `ip route` shows as "nhid N".
func routeVia(t *testing.T, timeout time.Duration, prefix, gw, dev string) {
	t.Helper()
	addr := netip.MustParsePrefix(prefix).Addr().Next().String()
	eventually(t, timeout, fmt.Sprintf("%s via %q dev %q", prefix, gw, dev), func() error {
		r, ok := cgwRoutes(t)[prefix]
		switch {
		case gw == "" && ok:
			return fmt.Errorf("still there: %+v", r)
		case gw == "":
			return nil
		case !ok:
			return fmt.Errorf("absent")
		}
		out, err := inNS("lab-cgw", "ip", "route", "get", addr)
		if err != nil {
			return fmt.Errorf("ip route get %s: %v: %s", addr, err, out)
		}
		if !strings.Contains(out, "via "+gw+" dev "+dev+" ") {
			return fmt.Errorf("ip route get %s: %s", addr, strings.TrimSpace(out))
		}
		return nil
	})
}

func birdEstablished(t *testing.T, protocol string) bool {
	for _, line := range strings.Split(birdc(t, "show", "protocols", protocol), "\n") {
		if strings.HasPrefix(line, protocol+" ") {
			return strings.Contains(line, "Established")
		}
	}
	return false
}

func pingVPC(t *testing.T) {
	t.Helper()
	if out, err := inNS("lab-onprem", "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.200.0.10"); err != nil {
		t.Fatalf("ping lab-onprem -> lab-vpc: %v\n%s", err, out)
	}
}

// gobgpTarget is cgwd's gobgp API in the lab, as the stock CLI's --target takes
// it: the default socket, next to the control socket.
const gobgpTarget = "unix://" + labState + "/gobgp.sock"

// binsForAnyone copies the named binaries of bin/ to a directory any user may
// run them from (the checkout may sit where nobody cannot reach).
func binsForAnyone(t *testing.T, names ...string) map[string]string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cgwd-lab-bin")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	paths := map[string]string{}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(root, "bin", n))
		if err != nil {
			t.Fatal(err)
		}
		paths[n] = filepath.Join(dir, n)
		if err := os.WriteFile(paths[n], b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return paths
}

// asNobody runs a command as uid and gid 65534 with no supplementary groups.
func asNobody(args ...string) (string, error) {
	out, err := exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups"}, args...)...).CombinedOutput()
	return string(out), err
}

// testBGP runs the BGP scenarios against BIRD in lab-aws; cgwd must be running.
func testBGP(t *testing.T) {
	t.Run("ThreeSessionsEstablished", func(t *testing.T) {
		eventually(t, 30*time.Second, "BIRD sees aws_t1, aws_t2, aws_dx Established", func() error {
			for _, p := range []string{"aws_t1", "aws_t2", "aws_dx"} {
				if !birdEstablished(t, p) {
					return fmt.Errorf("%s not Established", p)
				}
			}
			return nil
		})
		for _, p := range status(t).BGP {
			if !p.Up {
				t.Errorf("cgwd: peer %s is %s", p.Name, p.State)
			}
		}
	})

	t.Run("VPCPrefixInKernelViaDX", func(t *testing.T) {
		routeVia(t, 10*time.Second, "10.200.0.0/16", "169.254.255.1", "dx0")
	})

	t.Run("OnPremPrefixInBIRDPreferringDX", func(t *testing.T) {
		out := birdc(t, "show", "route", "10.10.0.0/16", "all")
		for _, p := range []string{"aws_dx", "aws_t1", "aws_t2"} {
			if !strings.Contains(out, "["+p+" ") {
				t.Errorf("BIRD has no 10.10.0.0/16 from %s:\n%s", p, out)
			}
		}
		// Tunnel 2 is the standby: cgwd prepends its ASN twice there, once on tunnel 1.
		if !strings.Contains(out, "BGP.as_path: 65000 65000 65000") || !strings.Contains(out, "BGP.as_path: 65000 65000\n") {
			t.Errorf("AS-path prepends not as configured:\n%s", out)
		}
		k, _ := inNS("lab-aws", "ip", "route", "show", "10.10.0.0/16")
		if !strings.Contains(k, "via 169.254.255.2 dev dx0 proto bird") {
			t.Errorf("lab-aws kernel route to on-prem is not via DX: %q", k)
		}
	})

	t.Run("PingOnpremToVPCOverBGPRoutes", pingVPC)

	t.Run("WithdrawnPrefixLeavesKernel", func(t *testing.T) {
		routeVia(t, 10*time.Second, "10.201.0.0/16", "169.254.255.1", "dx0")
		birdc(t, "disable", "extra")
		routeVia(t, 10*time.Second, "10.201.0.0/16", "", "")
		birdc(t, "enable", "extra")
		routeVia(t, 10*time.Second, "10.201.0.0/16", "169.254.255.1", "dx0")
	})

	t.Run("DXSessionDownMovesToTunnel1AndBack", func(t *testing.T) {
		before := tunnelRx(t, "cgw-t1")
		birdc(t, "disable", "aws_dx")
		routeVia(t, 15*time.Second, "10.200.0.0/16", "169.254.10.1", "cgw-t1")
		pingVPC(t)
		if after := tunnelRx(t, "cgw-t1"); after <= before {
			t.Errorf("cgw-t1 received nothing new (%d -> %d): the ping did not cross tunnel 1", before, after)
		}
		birdc(t, "enable", "aws_dx")
		routeVia(t, 30*time.Second, "10.200.0.0/16", "169.254.255.1", "dx0")
	})

	t.Run("ReconcileRestoresRouteAndSparesOthers", func(t *testing.T) {
		if out, err := inNS("lab-cgw", "ip", "route", "add", "10.77.0.0/16", "via", "169.254.255.1", "proto", "static"); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		defer inNS("lab-cgw", "ip", "route", "del", "10.77.0.0/16", "proto", "static")
		if out, err := inNS("lab-cgw", "ip", "route", "del", "10.200.0.0/16", "proto", "200"); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		routeVia(t, 10*time.Second, "10.200.0.0/16", "169.254.255.1", "dx0")
		if out, _ := inNS("lab-cgw", "ip", "route", "show", "10.77.0.0/16"); !strings.Contains(out, "proto static") {
			t.Errorf("reconcile touched a route that is not cgwd's: %q", out)
		}
	})

	t.Run("GobgpCLIWorksAgainstCgwd", func(t *testing.T) {
		out, err := exec.Command(filepath.Join(root, "bin/gobgp"), "--target", gobgpTarget, "neighbor").CombinedOutput()
		if err != nil {
			t.Fatalf("gobgp neighbor: %v\n%s", err, out)
		}
		for _, a := range []string{"169.254.255.1", "169.254.10.1", "169.254.11.1"} {
			if !strings.Contains(string(out), a) {
				t.Errorf("gobgp neighbor lacks %s:\n%s", a, out)
			}
		}
		if n := strings.Count(string(out), "Establ"); n != 3 {
			t.Errorf("gobgp neighbor shows %d Established, want 3:\n%s", n, out)
		}
	})

	t.Run("GobgpAPIOnlyForRoot", func(t *testing.T) {
		sock := strings.TrimPrefix(gobgpTarget, "unix://")
		if fi, err := os.Lstat(sock); err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want a socket with mode 0600", sock, fi.Mode(), err)
		}
		bin := binsForAnyone(t, "gobgp", "cgwd")
		if out, err := asNobody(bin["gobgp"], "--help"); err != nil {
			t.Fatalf("gobgp does not run as nobody at all: %v\n%s", err, out)
		}
		out, err := asNobody(bin["gobgp"], "--target", gobgpTarget, "neighbor", "-j")
		if err == nil || strings.Contains(out, "169.254.") {
			t.Errorf("the stock gobgp CLI as nobody reached cgwd's API (err %v):\n%s", err, out)
		}
		// The CLI only says its dial timed out; cgwd status says why connect() failed.
		if out, err := asNobody(bin["cgwd"], "status", "-s", sock); err == nil || !strings.Contains(out, "permission denied: run this as root") {
			t.Errorf("connect to %s as nobody: %v\n%s", sock, err, out)
		}
		if out, err := inNS("lab-cgw", "ss", "-Hltn", "sport = :50051"); err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("something listens on TCP 50051 in lab-cgw (%v):\n%s", err, out)
		}
	})

	t.Run("MaxPrefixTearsSessionDownThenRecovers", func(t *testing.T) {
		birdc(t, "enable", "flood") // 150 prefixes over tunnel 1; the VGW limit is 100
		eventually(t, 15*time.Second, "cgw-t1 session torn down", func() error {
			for _, p := range status(t).BGP {
				if p.Name == "cgw-t1" && p.Up {
					return fmt.Errorf("cgw-t1 still %s with %d received", p.State, p.Received)
				}
			}
			return nil
		})
		logs, _ := os.ReadFile(labState + "/logs/cgwd.log")
		if !strings.Contains(strings.ToLower(string(logs)), "prefix") || !strings.Contains(string(logs), "169.254.10.1") {
			t.Errorf("no max-prefix log line for 169.254.10.1")
		}
		if _, ok := cgwRoutes(t)["100.0.0.0/24"]; ok {
			t.Error("flood prefixes were installed")
		}
		eventually(t, 5*time.Second, "BIRD told why", func() error {
			b, _ := os.ReadFile(labState + "/logs/bird-aws.log")
			if !strings.Contains(string(b), "aws_t1: Received: Maximum number of prefixes reached") {
				return fmt.Errorf("no Cease/max-prefixes notification from cgwd in BIRD's log")
			}
			return nil
		})
		birdc(t, "disable", "flood")
		eventually(t, 40*time.Second, "cgw-t1 re-established on both sides", func() error {
			if !birdEstablished(t, "aws_t1") {
				return fmt.Errorf("aws_t1 not Established in BIRD")
			}
			for _, p := range status(t).BGP {
				if p.Name == "cgw-t1" && !p.Up {
					return fmt.Errorf("cgw-t1 %s in cgwd", p.State)
				}
			}
			return nil
		})
	})
}

// tunnelRx is the tunnel's received byte counter from cgwd status.
func tunnelRx(t *testing.T, name string) uint64 {
	for _, tn := range status(t).Tunnels {
		if tn.Name == name {
			return tn.RxBytes
		}
	}
	t.Fatalf("no tunnel %s", name)
	return 0
}
