// Package netns holds cgwd's integration tests. They build the lab of network
// namespaces with lab.sh, run cgwd in lab-cgw against real third-party peers
// and assert on what crosses the network. They need root and /dev/net/tun.
package netns

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/test/netns/labkit"
)

// TestMain holds the lab lock for the whole package run.
func TestMain(m *testing.M) { os.Exit(labkit.Main(m)) }

func TestWireGuardLab(t *testing.T) {
	labkit.Require(t)
	labkit.Up(t)
	labkit.StartCgwd(t)

	t.Run("BothTunnelsHandshakeWithUpstreamWireGuard", func(t *testing.T) {
		labkit.WaitTunnels(t, 20*time.Second)
	})

	t.Run("PingCrossesEachInside30", func(t *testing.T) {
		for _, p := range [][2]string{{labkit.CGW, labkit.T1Peer}, {labkit.CGW, labkit.T2Peer}, {labkit.AWS, labkit.T1Local}, {labkit.AWS, labkit.T2Local}} {
			if out, err := labkit.Ping(p[0], p[1], 3); err != nil {
				t.Errorf("ping %s from %s: %v\n%s", p[1], p[0], err, out)
			}
		}
	})

	testBGP(t)

	t.Run("MetricsShowTunnelsUpWithTraffic", func(t *testing.T) {
		m := labkit.Scrape(t)
		m.CheckUp(t)
		for _, tn := range []string{labkit.T1, labkit.T2} {
			labels := fmt.Sprintf(`{kind="wireguard",tunnel="%s",vpn="vpn1"}`, tn)
			for _, name := range []string{"cgwd_tunnel_rx_bytes_total", "cgwd_tunnel_tx_bytes_total", "cgwd_tunnel_last_handshake_timestamp_seconds"} {
				if v, ok := m.Value(name + labels); !ok || v <= 0 {
					t.Errorf("%s%s = %v (found %v), want > 0", name, labels, v, ok)
				}
			}
		}
		if v, ok := m.Value(`cgwd_bgp_prefixes_installed{address="169.254.255.1",peer="dx1"}`); !ok || v < 2 {
			t.Errorf("cgwd_bgp_prefixes_installed for dx1 = %v (found %v), want >= 2", v, ok)
		}
		if v, ok := m.Value("cgwd_routes_programmed_total"); !ok || v < 2 {
			t.Errorf("cgwd_routes_programmed_total = %v (found %v)", v, ok)
		}
		if _, ok := m.Value("cgwd_build_info{"); !ok {
			t.Error("cgwd_build_info missing")
		}
		if _, ok := m.Value("go_goroutines"); !ok {
			t.Error("Go collector missing")
		}
	})

	t.Run("WgShowListsThePeer", func(t *testing.T) {
		awsPub, err := os.ReadFile(labkit.State + "/keys/aws-t1.pub")
		if err != nil {
			t.Fatal(err)
		}
		out := labkit.MustInNS(t, labkit.CGW, "wg", "show", labkit.T1)
		for _, want := range []string{"peer: " + strings.TrimSpace(string(awsPub)), "endpoint: 203.0.113.10:51820", "allowed ips: 0.0.0.0/0", "latest handshake:"} {
			if !strings.Contains(out, want) {
				t.Errorf("wg show cgw-t1 lacks %q:\n%s", want, out)
			}
		}
		// Tunnel 2's AWS endpoint answers from its own address, so cgwd's peer
		// endpoint does not roam to tunnel 1's.
		if out2, _ := labkit.InNS(labkit.CGW, "wg", "show", labkit.T2, "endpoints"); !strings.Contains(out2, "203.0.113.20:51821") {
			t.Errorf("cgw-t2 endpoint %q, want 203.0.113.20:51821", strings.TrimSpace(out2))
		}
		if strings.Contains(out, "private key: ") && !strings.Contains(out, "private key: (hidden)") {
			t.Error("wg show printed the private key")
		}
	})

	t.Run("StatusNeverShowsKeys", func(t *testing.T) {
		out, err := exec.Command(labkit.CgwdBin, "status", "-s", labkit.Sock, "--json").CombinedOutput()
		if err != nil {
			t.Fatalf("cgwd status: %v\n%s", err, out)
		}
		for _, k := range []string{"cgw-t1.key", "cgw-t2.key"} {
			key, err := os.ReadFile(labkit.State + "/keys/" + k)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(out), strings.TrimSpace(string(key))) {
				t.Fatalf("status leaks the private key in %s", k)
			}
		}
		key, _ := os.ReadFile(labkit.State + "/keys/cgw-t1.key")
		if strings.Contains(labkit.Log(), strings.TrimSpace(string(key))) {
			t.Fatal("log leaks the private key")
		}
	})

	testReload(t)

	testDrain(t)

	t.Run("SIGTERMLeavesNothingBehind", func(t *testing.T) {
		labkit.StopCgwd(t)
		links, _ := labkit.InNS(labkit.CGW, "ip", "-o", "link")
		for _, name := range []string{labkit.T1, labkit.T2} {
			if strings.Contains(links, name) {
				t.Errorf("netdev %s left behind", name)
			}
			if _, err := os.Stat("/var/run/wireguard/" + name + ".sock"); err == nil {
				t.Errorf("UAPI socket of %s left behind", name)
			}
		}
		if _, err := os.Stat(labkit.Sock); err == nil {
			t.Error("control socket left behind")
		}
		if _, err := os.Stat(labkit.State + "/gobgp.sock"); err == nil {
			t.Error("gobgp API socket left behind")
		}
		// What stays on purpose: the fail-closed routes (TestFailClosedLab).
		if routes, _, nexthops := labkit.CgwdKernel(t); routes != "" || nexthops != "" {
			t.Errorf("cgwd's routes or nexthop objects left behind:\n%s\n%s", routes, nexthops)
		}
		if logs := labkit.Log(); !strings.Contains(logs, "cgwd stopped") {
			t.Errorf("no clean stop in the log:\n%s", logs)
		}
	})
}

// TestLabDownRemovesEverything checks that lab.sh down leaves no namespace.
func TestLabDownRemovesEverything(t *testing.T) {
	labkit.Require(t)
	labkit.Sh(t, "up")
	labkit.Down(t)
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "lab-") {
			t.Errorf("namespace left behind: %s", line)
		}
	}
	if _, err := os.Stat(labkit.State); err == nil {
		t.Errorf("%s left behind", labkit.State)
	}
}
