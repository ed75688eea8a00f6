package netns

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/bgp"
	"github.com/cgwd/cgwd/test/netns/labkit"
)

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
		b, err := os.ReadFile(filepath.Join(labkit.Root, "bin", n))
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
	bird := labkit.AWSBird
	t.Run("ThreeSessionsEstablished", func(t *testing.T) {
		bird.WaitEstablished(t, 30*time.Second, true, labkit.BirdSessions...)
		for _, p := range labkit.Status(t).BGP {
			if !p.Up {
				t.Errorf("cgwd: peer %s is %s", p.Name, p.State)
			}
		}
	})

	t.Run("VPCPrefixInKernelViaDX", func(t *testing.T) {
		labkit.WaitRoute(t, 10*time.Second, labkit.VPCNet, labkit.DXPeer, labkit.DX)
	})

	t.Run("OnPremPrefixInBIRDPreferringDX", func(t *testing.T) {
		out := bird.C(t, "show", "route", "10.10.0.0/16", "all")
		for _, p := range []string{"aws_dx", "aws_t1", "aws_t2"} {
			if !strings.Contains(out, "["+p+" ") {
				t.Errorf("BIRD has no 10.10.0.0/16 from %s:\n%s", p, out)
			}
		}
		// Tunnel 2 is the standby: cgwd prepends its ASN twice there, once on tunnel 1.
		if !strings.Contains(out, "BGP.as_path: 65000 65000 65000") || !strings.Contains(out, "BGP.as_path: 65000 65000\n") {
			t.Errorf("AS-path prepends not as configured:\n%s", out)
		}
		k, _ := labkit.InNS(labkit.AWS, "ip", "route", "show", "10.10.0.0/16")
		if !strings.Contains(k, "via 169.254.255.2 dev dx0 proto bird") {
			t.Errorf("lab-aws kernel route to on-prem is not via DX: %q", k)
		}
	})

	t.Run("PingOnpremToVPCOverBGPRoutes", func(t *testing.T) { labkit.PingVPC(t) })

	t.Run("WithdrawnPrefixLeavesKernel", func(t *testing.T) {
		labkit.WaitRoute(t, 10*time.Second, labkit.ExtraNet, labkit.DXPeer, labkit.DX)
		bird.C(t, "disable", "extra")
		labkit.WaitRoute(t, 10*time.Second, labkit.ExtraNet, "", "")
		bird.C(t, "enable", "extra")
		labkit.WaitRoute(t, 10*time.Second, labkit.ExtraNet, labkit.DXPeer, labkit.DX)
	})

	t.Run("DXSessionDownMovesToTunnel1AndBack", func(t *testing.T) {
		before, _ := labkit.TunnelBytes(t, labkit.T1)
		bird.C(t, "disable", "aws_dx")
		labkit.WaitRoute(t, 15*time.Second, labkit.VPCNet, labkit.T1Peer, labkit.T1)
		labkit.PingVPC(t)
		if after, _ := labkit.TunnelBytes(t, labkit.T1); after <= before {
			t.Errorf("cgw-t1 received nothing new (%d -> %d): the ping did not cross tunnel 1", before, after)
		}
		bird.C(t, "enable", "aws_dx")
		labkit.WaitRoute(t, 30*time.Second, labkit.VPCNet, labkit.DXPeer, labkit.DX)
	})

	t.Run("ReconcileRestoresRouteAndSparesOthers", func(t *testing.T) {
		if out, err := labkit.InNS(labkit.CGW, "ip", "route", "add", "10.77.0.0/16", "via", "169.254.255.1", "proto", "static"); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		defer labkit.InNS(labkit.CGW, "ip", "route", "del", "10.77.0.0/16", "proto", "static")
		if out, err := labkit.InNS(labkit.CGW, "ip", "route", "del", "10.200.0.0/16", "proto", "200"); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		labkit.WaitRoute(t, 10*time.Second, labkit.VPCNet, labkit.DXPeer, labkit.DX)
		if out, _ := labkit.InNS(labkit.CGW, "ip", "route", "show", "10.77.0.0/16"); !strings.Contains(out, "proto static") {
			t.Errorf("reconcile touched a route that is not cgwd's: %q", out)
		}
	})

	t.Run("GobgpCLIWorksAgainstCgwd", func(t *testing.T) {
		out, err := exec.Command(filepath.Join(labkit.Root, "bin/gobgp"), "--target", labkit.GobgpAPI, "neighbor").CombinedOutput()
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
		sock := strings.TrimPrefix(labkit.GobgpAPI, "unix://")
		if fi, err := os.Lstat(sock); err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want a socket with mode 0600", sock, fi.Mode(), err)
		}
		bin := binsForAnyone(t, "gobgp", "cgwd")
		if out, err := asNobody(bin["gobgp"], "--help"); err != nil {
			t.Fatalf("gobgp does not run as nobody at all: %v\n%s", err, out)
		}
		out, err := asNobody(bin["gobgp"], "--target", labkit.GobgpAPI, "neighbor", "-j")
		if err == nil || strings.Contains(out, "169.254.") {
			t.Errorf("the stock gobgp CLI as nobody reached cgwd's API (err %v):\n%s", err, out)
		}
		// The CLI only says its dial timed out; cgwd status says why connect() failed.
		if out, err := asNobody(bin["cgwd"], "status", "-s", sock); err == nil || !strings.Contains(out, "permission denied: run this as root") {
			t.Errorf("connect to %s as nobody: %v\n%s", sock, err, out)
		}
		if out, err := labkit.InNS(labkit.CGW, "ss", "-Hltn", "sport = :50051"); err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("something listens on TCP 50051 in lab-cgw (%v):\n%s", err, out)
		}
	})

	// AWS's quota: a VGW's VPN connection sends up to 1,000 routes. cgwd
	// takes them all with the session up (it used to tear it down at 100).
	t.Run("VGW1000RoutesAcceptedWithoutFlap", func(t *testing.T) {
		since := bird.SinceSettled(t)
		bird.C(t, "enable", "flood") // 998 + vpc + extra = 1,000 over tunnel 1
		defer bird.Try("disable", "flood")
		labkit.Eventually(t, 20*time.Second, "cgw-t1 receives 1,000 prefixes", func() error {
			p := peerStatus(t, labkit.T1)
			if p.Received != 1000 || !p.Up {
				return fmt.Errorf("cgw-t1 %s with %d received", p.State, p.Received)
			}
			return nil
		})
		labkit.WaitRoute(t, 10*time.Second, "100.3.229.0/24", labkit.T1Peer, labkit.T1) // the 998th
		if now := bird.Since(t); !labkit.SameSince(now[labkit.BirdT1], since[labkit.BirdT1]) {
			t.Errorf("aws_t1 was reset: BIRD's protocol times %v, before %v", now, since)
		}
		if strings.Contains(labkit.Log(), "more prefixes than max_prefixes") {
			t.Error("cgwd logged a max-prefix trip for 1,000 routes")
		}
	})

	t.Run("MaxPrefixTearsSessionDownThenRecovers", func(t *testing.T) {
		bird.C(t, "enable", "flood")
		bird.C(t, "enable", "flood1") // the 1,001st route over tunnel 1
		labkit.Eventually(t, 15*time.Second, "cgw-t1 session torn down", func() error {
			if p := peerStatus(t, labkit.T1); p.Up {
				return fmt.Errorf("cgw-t1 still %s with %d received", p.State, p.Received)
			}
			return nil
		})
		if logs := labkit.Log(); !strings.Contains(logs, "peer sent more prefixes than max_prefixes") || !strings.Contains(logs, labkit.T1Peer) {
			t.Errorf("no max-prefix log line for 169.254.10.1")
		}
		labkit.Eventually(t, 5*time.Second, "BIRD told why", func() error {
			b, _ := os.ReadFile(labkit.AWSBirdLog)
			if !strings.Contains(string(b), "aws_t1: Received: Maximum number of prefixes reached") {
				return fmt.Errorf("no Cease/max-prefixes notification from cgwd in BIRD's log")
			}
			return nil
		})
		bird.C(t, "disable", "flood1")
		bird.C(t, "disable", "flood")
		labkit.Eventually(t, 40*time.Second, "cgw-t1 re-established on both sides", func() error {
			if !bird.Established(t, labkit.BirdT1) {
				return fmt.Errorf("aws_t1 not Established in BIRD")
			}
			if p := peerStatus(t, labkit.T1); !p.Up {
				return fmt.Errorf("cgw-t1 %s in cgwd", p.State)
			}
			return nil
		})
		if _, ok := labkit.CgwdRoutes(t)["100.0.0.0/24"]; ok {
			t.Error("flood prefixes still installed once withdrawn")
		}
	})

	// 150 on-prem prefixes, and every lab session (VGW VPN, DX private VIF)
	// may send 100: check-config refuses it by name; with hold-back BIRD
	// gets exactly the first 100 on each session and the log names the rest.
	t.Run("AdvertiseLimitRefusesOrHoldsBack150Prefixes", func(t *testing.T) {
		labkit.LogOnFailure(t)
		many := make([]string, 150)
		for i := range many {
			many[i] = fmt.Sprintf("10.11.%d.0/24", i)
		}
		many[0] = "10.10.0.0/16"
		prefixes := labkit.Replace("prefixes: [10.10.0.0/16]", "prefixes: ["+strings.Join(many, ", ")+"]")
		path := filepath.Join(t.TempDir(), "cgwd.yaml")
		if err := os.WriteFile(path, []byte(labkit.Edited(t, prefixes)), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(labkit.CgwdBin, "check-config", "--skip-secrets", path).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "prefixes: 150 prefixes, more than the advertise limit of session cgw-t1 (vpn[0].tunnels[0].bgp.advertise_limit 100)") {
			t.Errorf("check-config with 150 prefixes: %v\n%s", err, out)
		}

		restore := labkit.EditConfig(t, prefixes, labkit.Replace("\nbgp:\n", "\nbgp:\n  advertise_over_limit: hold-back\n"))
		defer func() {
			restore()
			labkit.Reload(t, "reload: applied")
			labkit.Eventually(t, 15*time.Second, "BIRD back to one on-prem prefix per session", func() error {
				if n := birdRoutes(t, labkit.BirdT1); n != 1 {
					return fmt.Errorf("%d routes from aws_t1", n)
				}
				return nil
			})
		}()
		labkit.Reload(t, "reload: applied")
		labkit.Eventually(t, 15*time.Second, "BIRD has exactly 100 on-prem prefixes from each session", func() error {
			for _, p := range labkit.BirdSessions {
				if n := birdRoutes(t, p); n != 100 {
					return fmt.Errorf("%d routes from %s", n, p)
				}
			}
			return nil
		})
		if out, _ := bird.Try("show", "route", "10.11.149.0/24"); strings.Contains(out, "10.11.149.0/24") {
			t.Errorf("BIRD has the 150th prefix, which is over the limit:\n%s", out)
		}
		if out := bird.C(t, "show", "route", "10.11.99.0/24"); !strings.Contains(out, labkit.BirdT1) {
			t.Errorf("BIRD lacks the 100th prefix from aws_t1:\n%s", out)
		}
		logs := labkit.Log()
		if !strings.Contains(logs, `msg="bgp: prefixes held back: more than the session's advertise limit" component=bgp peer=cgw-t1 advertise_limit=100 held_back=50 prefixes="[10.11.100.0/24 `) ||
			!strings.Contains(logs, " 10.11.149.0/24]") {
			t.Error("no log line naming the held-back prefixes of cgw-t1")
		}
		if v, ok := labkit.Scrape(t).Value(`cgwd_bgp_prefixes_held_back{address="169.254.10.1",peer="cgw-t1"}`); !ok || v != 50 {
			t.Errorf("cgwd_bgp_prefixes_held_back for cgw-t1 = %v (found %v), want 50", v, ok)
		}
	})

	// mode: ecmp: both tunnels carry the same AS path to AWS (no 1x/2x
	// prepends), so a TGW with ECMP can spread traffic over both.
	t.Run("ECMPAdvertisesEqualASPaths", func(t *testing.T) {
		labkit.LogOnFailure(t)
		restore := labkit.EditConfig(t, labkit.ECMP)
		defer func() {
			restore()
			labkit.Reload(t, "reload: applied")
			waitASPaths(t, map[string]int{labkit.BirdT1: 2, labkit.BirdT2: 3})
		}()
		labkit.Reload(t, "reload: applied")
		waitASPaths(t, map[string]int{labkit.BirdT1: 1, labkit.BirdT2: 1})
	})
}

// peerStatus is cgwd's status of the named BGP peer.
func peerStatus(t *testing.T, name string) bgp.PeerStatus {
	t.Helper()
	for _, p := range labkit.Status(t).BGP {
		if p.Name == name {
			return p.PeerStatus
		}
	}
	t.Fatalf("cgwd has no BGP peer %s", name)
	return bgp.PeerStatus{}
}

// birdRoutes counts the routes BIRD has from its protocol.
func birdRoutes(t *testing.T, protocol string) int {
	t.Helper()
	return strings.Count(labkit.AWSBird.C(t, "show", "route", "protocol", protocol), "["+protocol+" ")
}

// waitASPaths waits until BIRD's route to the on-prem prefix from each
// protocol carries an AS path of the given length.
func waitASPaths(t *testing.T, want map[string]int) {
	t.Helper()
	labkit.Eventually(t, 15*time.Second, fmt.Sprintf("AS path lengths %v in BIRD", want), func() error {
		for p, n := range want {
			out := labkit.AWSBird.C(t, "show", "route", labkit.OnPremNet, "protocol", p, "all")
			_, path, ok := strings.Cut(out, "BGP.as_path: ")
			if !ok {
				return fmt.Errorf("no route from %s:\n%s", p, out)
			}
			path, _, _ = strings.Cut(path, "\n")
			if got := len(strings.Fields(path)); got != n {
				return fmt.Errorf("%s: AS path %q, want length %d", p, path, n)
			}
		}
		return nil
	})
}
