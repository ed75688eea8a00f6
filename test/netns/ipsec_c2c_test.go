package netns

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/cgwd/cgwd/pkg/ike"
	"github.com/cgwd/cgwd/pkg/tunnel"
	"github.com/cgwd/cgwd/pkg/tunnel/ipsec"
)

// c2cNamespaces are private to the cgwd-to-cgwd test (not lab names).
var c2cNamespaces = []string{"ipc-a", "ipc-b"}

// c2cPair builds two namespaces joined by a veth: ipc-a 10.97.0.1, ipc-b 10.97.0.2.
func c2cPair(t testing.TB) {
	t.Helper()
	c2cDown()
	for _, c := range [][]string{
		{"netns", "add", "ipc-a"}, {"netns", "add", "ipc-b"},
		{"link", "add", "v0", "netns", "ipc-a", "type", "veth", "peer", "name", "v0", "netns", "ipc-b"},
		{"-n", "ipc-a", "addr", "add", "10.97.0.1/24", "dev", "v0"}, {"-n", "ipc-b", "addr", "add", "10.97.0.2/24", "dev", "v0"},
		{"-n", "ipc-a", "link", "set", "v0", "up"}, {"-n", "ipc-b", "link", "set", "v0", "up"},
		{"-n", "ipc-a", "link", "set", "lo", "up"}, {"-n", "ipc-b", "link", "set", "lo", "up"},
	} {
		if out, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v %s", strings.Join(c, " "), err, out)
		}
	}
	t.Cleanup(c2cDown)
}

func c2cDown() {
	for _, ns := range c2cNamespaces {
		exec.Command("ip", "netns", "del", ns).Run()
	}
}

// startInNS starts tun with its netdev and sockets created inside namespace ns.
func startTunnelInNS(ctx context.Context, tn *ipsec.Tunnel, ns string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // the thread is left in ns and dies with the goroutine
		target, err := netns.GetFromName(ns)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- err
			return
		}
		errc <- tn.Start(ctx)
	}()
	return <-errc
}

func c2cTunnel(t testing.TB, name string, local, remote, inside string, initiate bool, ikeP, espP string) *ipsec.Tunnel {
	t.Helper()
	ip, err := ike.ParseProposal(ikeP, true)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := ike.ParseProposal(espP, false)
	if err != nil {
		t.Fatal(err)
	}
	p := netip.MustParsePrefix(inside)
	tn, err := ipsec.New(ipsec.Config{
		Name: name, MTU: 1420, Inside: p,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		IKE: ike.Config{Local: netip.MustParseAddr(local), Remote: netip.MustParseAddr(remote), PSK: []byte("c2c-lab-psk"),
			IKEProposals: []ike.Proposal{ip}, ESPProposals: []ike.Proposal{ep}, Initiate: initiate, ForceEncap: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

// c2cUp starts a tunnel in each namespace (a initiates unless aResponds) and
// waits until both are up; it returns how long establishment took.
func c2cUp(t testing.TB, ctx context.Context, aInitiates bool, ikeP, espP string) (a, b *ipsec.Tunnel, took time.Duration) {
	t.Helper()
	a = c2cTunnel(t, "ipc-ta", "10.97.0.1", "10.97.0.2", "169.254.77.1/30", aInitiates, ikeP, espP)
	b = c2cTunnel(t, "ipc-tb", "10.97.0.2", "10.97.0.1", "169.254.77.2/30", !aInitiates, ikeP, espP)
	// The responder first, so the initiator's first message is answered.
	first, second, nsFirst, nsSecond := b, a, "ipc-b", "ipc-a"
	if !aInitiates {
		first, second, nsFirst, nsSecond = a, b, "ipc-a", "ipc-b"
	}
	if err := startTunnelInNS(ctx, first, nsFirst); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.Close() })
	start := time.Now()
	if err := startTunnelInNS(ctx, second, nsSecond); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { second.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for a.Status().State != tunnel.StateUp || b.Status().State != tunnel.StateUp {
		if time.Now().After(deadline) {
			t.Fatalf("not up after 10s: a=%+v b=%+v", a.Details(), b.Details())
		}
		time.Sleep(time.Millisecond)
	}
	return a, b, time.Since(start)
}

// c2cIperf prints iperf3 throughput from ipc-a to dst in ipc-b (for bench-ipsec.sh).
func c2cIperf(t *testing.T, dst string) {
	t.Helper()
	srv := exec.Command("ip", "netns", "exec", "ipc-b", "iperf3", "-s", "-1")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	var out []byte
	var err error
	for i := 0; i < 50; i++ { // until the server listens
		if out, err = exec.Command("ip", "netns", "exec", "ipc-a", "iperf3", "-c", dst, "-t", "5", "-f", "m").CombinedOutput(); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("iperf3: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "receiver") {
			t.Logf("BENCH cgwd-ipsec-both-ends aes256gcm16: %s", strings.Join(strings.Fields(l)[6:8], " "))
		}
	}
}

// TestIPsecCgwdToCgwd runs cgwd's IPsec tunnel on both ends, in both roles.
func TestIPsecCgwdToCgwd(t *testing.T) {
	requireLab(t)
	for _, aInitiates := range []bool{true, false} {
		t.Run(fmt.Sprintf("aInitiates=%v", aInitiates), func(t *testing.T) {
			c2cPair(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			a, b, took := c2cUp(t, ctx, aInitiates, ike.DefaultIKEProposal, ike.DefaultESPProposal)
			t.Logf("BENCH cgwd-ike-establish: %v (IKE_SA_INIT + IKE_AUTH + Child SA)", took.Round(100*time.Microsecond))
			for _, p := range [][2]string{{"ipc-a", "169.254.77.2"}, {"ipc-b", "169.254.77.1"}} {
				if out, err := inNS(p[0], "ping", "-c", "3", "-i", "0.2", "-W", "2", p[1]); err != nil {
					t.Errorf("ping %s from %s: %v\n%s", p[1], p[0], err, out)
				}
			}
			da, db := a.Details(), b.Details()
			if (da.Role == "initiator") != aInitiates || (db.Role == "initiator") == aInitiates {
				t.Errorf("roles: a %s, b %s", da.Role, db.Role)
			}
			if da.RxPackets < 3 || db.RxPackets < 3 || da.ChildInSPI != db.ChildOutSPI {
				t.Errorf("a %+v\nb %+v", da, db)
			}
			if os.Getenv("CGWD_IPSEC_BENCH") != "" && aInitiates {
				c2cIperf(t, "169.254.77.2")
			}
		})
	}
}
