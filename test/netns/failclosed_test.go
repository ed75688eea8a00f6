package netns

import (
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cgwd/cgwd/test/netns/labkit"
)

// routeWatch polls `ip route get 10.200.0.10` in lab-cgw until finished and
// keeps every answer that sends the packet out of wan0, to the internet.
type routeWatch struct {
	stop, done chan struct{}
	polls      atomic.Int64
	mu         sync.Mutex
	leaks      []string
}

func watchRoute(t *testing.T) *routeWatch {
	t.Helper()
	w := &routeWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			out, _ := labkit.RouteGet(labkit.VPCHost)
			w.polls.Add(1)
			if strings.Contains(out, "dev "+labkit.WAN) {
				w.mu.Lock()
				w.leaks = append(w.leaks, time.Now().Format("15:04:05.000")+" "+strings.TrimSpace(out))
				w.mu.Unlock()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	t.Cleanup(w.finish)
	return w
}

// waitPolls waits until the watch has polled n more times.
func (w *routeWatch) waitPolls(t *testing.T, n int64) {
	t.Helper()
	want := w.polls.Load() + n
	labkit.Eventually(t, 30*time.Second, fmt.Sprintf("%d route polls", n), func() error {
		if got := w.polls.Load(); got < want {
			return fmt.Errorf("%d of %d", got, want)
		}
		return nil
	})
}

func (w *routeWatch) finish() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// check stops the watch and fails the test if the route ever led to wan0.
func (w *routeWatch) check(t *testing.T, window string) {
	t.Helper()
	w.finish()
	t.Logf("%s: %d route polls", window, w.polls.Load())
	if len(w.leaks) > 0 {
		t.Errorf("%s: 10.200.0.10 routed to the internet %d times, first: %s", window, len(w.leaks), w.leaks[0])
	}
}

// leakCounter counts, in lab-inet (the internet), every packet for the VPC
// (10.200.0.0/16) that arrives, before any routing decision.
func leakCounter(t *testing.T) func() int {
	t.Helper()
	labkit.Nft(t, labkit.Inet, "add", "table", "inet", "cgwdtest_leak")
	labkit.Nft(t, labkit.Inet, "add", "chain", "inet", "cgwdtest_leak", "pre", "{ type filter hook prerouting priority -300; }")
	labkit.Nft(t, labkit.Inet, "add", "rule", "inet", "cgwdtest_leak", "pre", "ip", "daddr", labkit.VPCNet, "counter")
	return func() int { return labkit.NftCounter(t, labkit.Inet, "cgwdtest_leak", labkit.VPCNet) }
}

// udpToVPC sends a UDP datagram from lab-onprem to 10.200.0.10 every 10 ms
// until the returned function stops it and returns how many left the socket.
// The socket is unconnected, so ICMP errors do not stop the stream.
func udpToVPC(t *testing.T) func() (sent int) {
	t.Helper()
	var c *net.UDPConn
	if err := labkit.Do(labkit.OnPrem, func() (err error) {
		c, err = net.ListenUDP("udp4", nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	dst := &net.UDPAddr{IP: net.ParseIP(labkit.VPCHost), Port: 9001}
	stop, done := make(chan struct{}), make(chan int, 1)
	go func() {
		n := 0
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				done <- n
				return
			case <-tick.C:
				if _, err := c.WriteToUDP([]byte("fail closed?"), dst); err == nil {
					n++
				}
			}
		}
	}()
	var once sync.Once
	var sent int
	halt := func() int {
		once.Do(func() { close(stop); sent = <-done; c.Close() })
		return sent
	}
	t.Cleanup(func() { halt() })
	return halt
}

// pingRecovers waits until pings from lab-onprem reach the VPC again.
func pingRecovers(t *testing.T) {
	t.Helper()
	labkit.Eventually(t, 30*time.Second, "10.200.0.10 answers pings from lab-onprem", func() error {
		out, err := labkit.InNS(labkit.OnPrem, "ping", "-c", "3", "-i", "0.1", "-W", "1", labkit.VPCHost)
		if err != nil || !strings.Contains(out, " 0% packet loss") {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
}

// closedWindow runs during() under a UDP stream from lab-onprem to the VPC
// and a watch on lab-cgw's route to it, then fails the test if the route
// ever led to the internet or a packet for the VPC reached lab-inet, and
// waits for traffic to flow again.
func closedWindow(t *testing.T, window string, leaked func() int, during func(w *routeWatch)) {
	t.Helper()
	before := leaked()
	w := watchRoute(t)
	stopUDP := udpToVPC(t)
	during(w)
	sent := stopUDP()
	w.check(t, window)
	t.Logf("%s: %d datagrams sent to the VPC", window, sent)
	if sent < 50 {
		t.Errorf("%s: only %d datagrams sent", window, sent)
	}
	if n := leaked() - before; n != 0 {
		t.Errorf("%s: %d packets for the VPC reached lab-inet", window, n)
	}
	pingRecovers(t)
}

// TestFailClosedLab sends a ping stream from lab-onprem to the VPC while
// cgwd stops and starts again, and while every path to AWS (DX and both
// tunnels) is cut: no packet for the VPC may reach lab-inet, the internet,
// and lab-cgw's kernel must never route 10.200.0.10 via wan0. Then traffic
// must flow again. Last, `cgwd cleanup` removes what the stop left.
func TestFailClosedLab(t *testing.T) {
	labkit.Require(t)
	labkit.Up(t)
	labkit.LogOnFailure(t)
	labkit.StartRouting(t)
	leaked := leakCounter(t)

	t.Run("StopAndRestart", func(t *testing.T) {
		closedWindow(t, "stop and restart", leaked, func(w *routeWatch) {
			labkit.StopCgwd(t)
			w.waitPolls(t, 25) // a second or so with cgwd stopped
			if _, closed, _ := labkit.CgwdKernel(t); !strings.Contains(closed, "unreachable 10.200.0.0/16 ") {
				t.Errorf("no fail-closed route for 10.200.0.0/16 while cgwd is stopped:\n%s", closed)
			}
			labkit.StartRouting(t)
		})
		// The new run adopted them, and says so in status and metrics.
		if n := labkit.Status(t).FailClosedRoutes; n < 1 {
			t.Errorf("status: %d fail-closed routes after the restart", n)
		}
		if v, ok := labkit.Scrape(t).Value("cgwd_fail_closed_routes "); !ok || v < 1 {
			t.Errorf("cgwd_fail_closed_routes = %v (found %v)", v, ok)
		}
	})

	t.Run("AllPathsDown", func(t *testing.T) {
		closedWindow(t, "all paths down", leaked, func(w *routeWatch) {
			restore := []func(){
				labkit.CutDX(t), // DX, both ways
				labkit.DropIngress(t, labkit.AWS, labkit.WAN), // both tunnels' underlay, past lab-inet's counter
			}
			// BFD tears every session down; their routes are withdrawn.
			labkit.Eventually(t, 60*time.Second, "every BGP session down", func() error {
				for _, p := range labkit.Status(t).BGP {
					if p.Up {
						return fmt.Errorf("%s still %s", p.Name, p.State)
					}
				}
				return nil
			})
			labkit.WaitRoute(t, 10*time.Second, labkit.VPCNet, "", "")
			w.waitPolls(t, 25)
			for _, r := range restore {
				r()
			}
			labkit.WaitDev(t, 60*time.Second, labkit.DX)
		})
	})

	t.Run("CleanupRemovesWhatAStopLeaves", func(t *testing.T) {
		cleanup := func() (string, error) {
			return labkit.InNS(labkit.CGW, labkit.CgwdBin, "cleanup", "-c", labkit.Config)
		}
		if out, err := cleanup(); err == nil || !strings.Contains(out, "cgwd is running") {
			t.Errorf("cleanup while cgwd runs: %v: %s", err, out)
		}
		labkit.StopCgwd(t)
		routes, closed, nexthops := labkit.CgwdKernel(t)
		if routes != "" || nexthops != "" {
			t.Errorf("a clean stop left routes or nexthop objects:\n%s\n%s", routes, nexthops)
		}
		if !strings.Contains(closed, "unreachable 10.200.0.0/16 ") {
			t.Errorf("a clean stop removed the fail-closed route for 10.200.0.0/16:\n%s", closed)
		}
		out, err := cleanup()
		if err != nil || !regexp.MustCompile(`removed 0 routes, [1-9]\d* fail-closed routes, 0 nexthop objects`).MatchString(out) {
			t.Fatalf("cgwd cleanup: %v: %s", err, out)
		}
		t.Log(strings.TrimSpace(out))
		if all, _ := labkit.InNS(labkit.CGW, "ip", "route", "show", "proto", "200"); strings.TrimSpace(all) != "" {
			t.Errorf("routes of cgwd's protocol left after cleanup:\n%s", all)
		}
		if _, _, nexthops := labkit.CgwdKernel(t); nexthops != "" {
			t.Errorf("nexthop objects left after cleanup:\n%s", nexthops)
		}
		if out, err := cleanup(); err != nil || !strings.Contains(out, "removed 0 routes, 0 fail-closed routes, 0 nexthop objects") {
			t.Errorf("cgwd cleanup again: %v: %s", err, out)
		}
	})
}
