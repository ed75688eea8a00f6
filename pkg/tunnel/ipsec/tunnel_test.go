package ipsec

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cgwd/cgwd/pkg/ike"
	"github.com/cgwd/cgwd/pkg/tunnel"
)

// inPrivateNetns runs f on a thread moved into a new, unnamed network
// namespace with lo up. The thread is never given back (it dies with its
// goroutine), and the namespace goes away with the last socket or TUN
// opened in it.
func inPrivateNetns(t *testing.T, f func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err != nil {
			errc <- fmt.Errorf("lo up: %w", err)
			return
		}
		errc <- f()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func loopTunnel(t *testing.T, name, local, remote, inside string, initiate bool) *Tunnel {
	t.Helper()
	ip, err := ike.ParseProposal(ike.DefaultIKEProposal, true)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := ike.ParseProposal(ike.DefaultESPProposal, false)
	if err != nil {
		t.Fatal(err)
	}
	tn, err := New(Config{
		Name: name, MTU: 1420, Inside: netip.MustParsePrefix(inside), Logger: quiet,
		IKE: ike.Config{Local: netip.MustParseAddr(local), Remote: netip.MustParseAddr(remote), PSK: []byte("unit-test-psk"),
			IKEProposals: []ike.Proposal{ip}, ESPProposals: []ike.Proposal{ep}, Initiate: initiate, ForceEncap: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

// TestTunnelTrafficAndClose runs two tunnels against each other over
// loopback in a private network namespace, sends UDP through them and
// checks that every ESP packet one sends the other accepts, and that Close
// leaves no goroutine behind (one crypto worker and several).
func TestTunnelTrafficAndClose(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespace, TUN)")
	}
	for _, workers := range []int{1, 4} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			base := runtime.NumGoroutine()
			a := loopTunnel(t, "cgwut-a", "127.0.0.1", "127.0.0.2", "169.254.99.1/30", true)
			b := loopTunnel(t, "cgwut-b", "127.0.0.2", "127.0.0.1", "169.254.99.2/30", false)
			a.workers, b.workers = workers, workers
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var c *net.UDPConn
			inPrivateNetns(t, func() error {
				for _, tn := range []*Tunnel{b, a} {
					if err := tn.Start(ctx); err != nil {
						return err
					}
				}
				link, err := netlink.LinkByName("cgwut-a")
				if err != nil {
					return err
				}
				// Packets to 10.99.0.0/24 leave by tunnel a; b hands them to
				// its TUN, where the kernel drops them (no forwarding).
				if err := netlink.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: &net.IPNet{IP: net.IPv4(10, 99, 0, 0), Mask: net.CIDRMask(24, 32)}}); err != nil {
					return err
				}
				c, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(10, 99, 0, 1), Port: 9})
				return err
			})
			defer c.Close()
			deadline := time.Now().Add(10 * time.Second)
			for a.Status().State != tunnel.StateUp || b.Status().State != tunnel.StateUp {
				if time.Now().After(deadline) {
					t.Fatalf("not up after 10s: a %+v, b %+v", a.Details(), b.Details())
				}
				time.Sleep(time.Millisecond)
			}
			payload := make([]byte, 1000)
			const chunks, per = 40, 50
			for i := 0; i < chunks; i++ {
				for j := 0; j < per; j++ {
					if _, err := c.Write(payload); err != nil {
						t.Fatal(err)
					}
				}
				// Wait until b has accepted all that a has sent (not more).
				deadline := time.Now().Add(5 * time.Second)
				for {
					// b's count is read before a's: a packet a sends
					// between the two reads can then only raise tx, so
					// rx > tx means b accepted what a never sent.
					rx := b.Details().RxPackets
					tx := a.Details().TxPackets
					if tx >= uint64((i+1)*per) && rx == tx {
						break
					}
					if rx > tx || time.Now().After(deadline) {
						t.Fatalf("chunk %d: a sent %d, b accepted %d", i, tx, rx)
					}
					time.Sleep(time.Millisecond)
				}
			}
			for r, n := range b.Details().Dropped {
				if n != 0 {
					t.Errorf("b dropped %d packets (%s)", n, r)
				}
			}
			cancel()
			a.Close()
			b.Close()
			if !allZero(a.cfg.IKE.PSK) || !allZero(b.cfg.IKE.PSK) {
				t.Error("a PSK survived Close of a running tunnel")
			}
			deadline = time.Now().Add(10 * time.Second)
			for runtime.NumGoroutine() > base {
				if time.Now().After(deadline) {
					buf := make([]byte, 1<<20)
					t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
}
