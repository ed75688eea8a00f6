// Package netns holds cgwd's integration tests. They build the lab of network
// namespaces with lab.sh, run cgwd in lab-cgw against real third-party peers
// and assert on what crosses the network. They need root and /dev/net/tun.
package netns

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/control"
	"github.com/cgwd/cgwd/pkg/tunnel"
)

const (
	labState = "/run/cgwd-lab"
	// labLock serialises everything that builds the lab: the namespace names
	// are global, so two lab users at once would tear down each other's lab.
	labLock = "/run/cgwd-lab.lock"
)

// TestMain holds the lab lock for the whole package run.
func TestMain(m *testing.M) {
	if os.Geteuid() == 0 {
		f, err := os.OpenFile(labLock, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		code := m.Run()
		f.Close()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

var (
	root   = mustAbs("../..")
	labSh  = filepath.Join(root, "test/netns/lab.sh")
	cgwBin = filepath.Join(root, "bin/cgwd")
)

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		panic(err)
	}
	return a
}

// requireLab skips when the machine cannot host the lab.
func requireLab(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("integration tests need root (network namespaces, TUN): run as root or with sudo")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("integration tests need /dev/net/tun: " + err.Error())
	}
	for _, tool := range []string{"wg", "jq", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (make deps installs it)", tool)
		}
	}
}

// lab runs a lab.sh subcommand.
func lab(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(labSh, args...)
	cmd.Env = append(os.Environ(), "LAB_STATE="+labState)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("lab.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// inNS runs a command inside a namespace and returns its combined output.
func inNS(ns string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	return string(out), err
}

// status asks the lab's cgwd for its status over the control socket.
func status(t *testing.T) *control.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := control.Query(ctx, labState+"/cgwd.sock")
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// eventually polls cond every 100 ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// httpGetInNS fetches url from inside namespace ns: the socket is created
// on a thread switched into ns, so the request never leaves the lab.
func httpGetInNS(ns, url string) (string, error) {
	dial := func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		err = inNetns(ns, func() error {
			var d net.Dialer
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: dial}}
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// metricValue finds the value of the sample whose name and labels start with prefix.
func metricValue(body, prefix string) (float64, bool) {
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, prefix) {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			return v, err == nil
		}
	}
	return 0, false
}

func TestWireGuardLab(t *testing.T) {
	requireLab(t)
	lab(t, "up")
	t.Cleanup(func() { lab(t, "down") })
	lab(t, "start-cgwd")

	t.Run("BothTunnelsHandshakeWithUpstreamWireGuard", func(t *testing.T) {
		eventually(t, 20*time.Second, "both tunnels up", func() error {
			for _, tn := range status(t).Tunnels {
				if tn.State != tunnel.StateUp || tn.LastHandshake.IsZero() {
					return fmt.Errorf("%s is %s", tn.Name, tn.State)
				}
			}
			return nil
		})
	})

	t.Run("PingCrossesEachInside30", func(t *testing.T) {
		for _, dst := range []string{"169.254.10.1", "169.254.11.1"} {
			if out, err := inNS("lab-cgw", "ping", "-c", "3", "-i", "0.2", "-W", "2", dst); err != nil {
				t.Errorf("ping %s from lab-cgw: %v\n%s", dst, err, out)
			}
		}
		for _, dst := range []string{"169.254.10.2", "169.254.11.2"} {
			if out, err := inNS("lab-aws", "ping", "-c", "3", "-i", "0.2", "-W", "2", dst); err != nil {
				t.Errorf("ping %s from lab-aws: %v\n%s", dst, err, out)
			}
		}
	})

	testBGP(t)

	t.Run("MetricsShowTunnelsUpWithTraffic", func(t *testing.T) {
		body, err := httpGetInNS("lab-cgw", "http://127.0.0.1:9477/metrics")
		if err != nil {
			t.Fatal(err)
		}
		for _, tn := range []string{"cgw-t1", "cgw-t2"} {
			labels := fmt.Sprintf(`{kind="wireguard",tunnel="%s",vpn="vpn1"}`, tn)
			if v, ok := metricValue(body, "cgwd_tunnel_up"+labels); !ok || v != 1 {
				t.Errorf("cgwd_tunnel_up%s = %v (found %v)", labels, v, ok)
			}
			for _, m := range []string{"cgwd_tunnel_rx_bytes_total", "cgwd_tunnel_tx_bytes_total", "cgwd_tunnel_last_handshake_timestamp_seconds"} {
				if v, ok := metricValue(body, m+labels); !ok || v <= 0 {
					t.Errorf("%s%s = %v (found %v), want > 0", m, labels, v, ok)
				}
			}
		}
		for peer, addr := range map[string]string{"dx1": "169.254.255.1", "cgw-t1": "169.254.10.1", "cgw-t2": "169.254.11.1"} {
			labels := fmt.Sprintf(`{address="%s",peer="%s"}`, addr, peer)
			if v, ok := metricValue(body, "cgwd_bgp_session_up"+labels); !ok || v != 1 {
				t.Errorf("cgwd_bgp_session_up%s = %v (found %v)", labels, v, ok)
			}
		}
		if v, ok := metricValue(body, `cgwd_bgp_prefixes_installed{address="169.254.255.1",peer="dx1"}`); !ok || v < 2 {
			t.Errorf("cgwd_bgp_prefixes_installed for dx1 = %v (found %v), want >= 2", v, ok)
		}
		if v, ok := metricValue(body, "cgwd_routes_programmed_total"); !ok || v < 2 {
			t.Errorf("cgwd_routes_programmed_total = %v (found %v)", v, ok)
		}
		if _, ok := metricValue(body, "cgwd_build_info{"); !ok {
			t.Error("cgwd_build_info missing")
		}
		if _, ok := metricValue(body, "go_goroutines"); !ok {
			t.Error("Go collector missing")
		}
	})

	t.Run("WgShowListsThePeer", func(t *testing.T) {
		awsPub, err := os.ReadFile(labState + "/keys/aws-t1.pub")
		if err != nil {
			t.Fatal(err)
		}
		out, err := inNS("lab-cgw", "wg", "show", "cgw-t1")
		if err != nil {
			t.Fatalf("wg show: %v\n%s", err, out)
		}
		for _, want := range []string{"peer: " + strings.TrimSpace(string(awsPub)), "endpoint: 203.0.113.10:51820", "allowed ips: 0.0.0.0/0", "latest handshake:"} {
			if !strings.Contains(out, want) {
				t.Errorf("wg show cgw-t1 lacks %q:\n%s", want, out)
			}
		}
		// Tunnel 2's AWS endpoint answers from its own address, so cgwd's peer
		// endpoint does not roam to tunnel 1's.
		if out2, _ := inNS("lab-cgw", "wg", "show", "cgw-t2", "endpoints"); !strings.Contains(out2, "203.0.113.20:51821") {
			t.Errorf("cgw-t2 endpoint %q, want 203.0.113.20:51821", strings.TrimSpace(out2))
		}
		if strings.Contains(out, "private key: ") && !strings.Contains(out, "private key: (hidden)") {
			t.Error("wg show printed the private key")
		}
	})

	t.Run("StatusNeverShowsKeys", func(t *testing.T) {
		out, err := exec.Command(cgwBin, "status", "-s", labState+"/cgwd.sock", "--json").CombinedOutput()
		if err != nil {
			t.Fatalf("cgwd status: %v\n%s", err, out)
		}
		for _, k := range []string{"cgw-t1.key", "cgw-t2.key"} {
			key, err := os.ReadFile(labState + "/keys/" + k)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(out), strings.TrimSpace(string(key))) {
				t.Fatalf("status leaks the private key in %s", k)
			}
		}
		logs, _ := os.ReadFile(labState + "/logs/cgwd.log")
		key, _ := os.ReadFile(labState + "/keys/cgw-t1.key")
		if strings.Contains(string(logs), strings.TrimSpace(string(key))) {
			t.Fatal("log leaks the private key")
		}
	})

	testReload(t)

	t.Run("SIGTERMLeavesNothingBehind", func(t *testing.T) {
		stopCgwd(t)
		links, _ := inNS("lab-cgw", "ip", "-o", "link")
		for _, name := range []string{"cgw-t1", "cgw-t2"} {
			if strings.Contains(links, name) {
				t.Errorf("netdev %s left behind", name)
			}
			if _, err := os.Stat("/var/run/wireguard/" + name + ".sock"); err == nil {
				t.Errorf("UAPI socket of %s left behind", name)
			}
		}
		if _, err := os.Stat(labState + "/cgwd.sock"); err == nil {
			t.Error("control socket left behind")
		}
		if _, err := os.Stat(labState + "/gobgp.sock"); err == nil {
			t.Error("gobgp API socket left behind")
		}
		// What stays on purpose: the fail-closed routes (TestFailClosedLab).
		if routes, _, nexthops := cgwdKernel(t); routes != "" || nexthops != "" {
			t.Errorf("cgwd's routes or nexthop objects left behind:\n%s\n%s", routes, nexthops)
		}
		logs, _ := os.ReadFile(labState + "/logs/cgwd.log")
		if !strings.Contains(string(logs), "cgwd stopped") {
			t.Errorf("no clean stop in the log:\n%s", logs)
		}
	})
}

// TestLabDownRemovesEverything checks that lab.sh down leaves no namespace.
func TestLabDownRemovesEverything(t *testing.T) {
	requireLab(t)
	lab(t, "up")
	lab(t, "down")
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "lab-") {
			t.Errorf("namespace left behind: %s", line)
		}
	}
	if _, err := os.Stat(labState); err == nil {
		t.Errorf("%s left behind", labState)
	}
}
