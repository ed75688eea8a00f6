package nexthop

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The tests and benchmarks in this file build a throwaway network namespace
// (cgwdtest-nh) and need root. They hold the lab lock while they do.

const (
	testNS   = "cgwdtest-nh"
	labLock  = "/run/cgwd-lab.lock"
	gw1, gw2 = "192.0.2.2", "198.51.100.2"
)

var lockOnce sync.Once

// lockLab takes the lab lock for the rest of the test binary's life.
func lockLab(tb testing.TB) {
	lockOnce.Do(func() {
		f, err := os.OpenFile(labLock, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			tb.Fatal(err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			tb.Fatal(err)
		}
		// f stays open: the lock is released when the process exits.
	})
}

func sh(tb testing.TB, args ...string) string {
	tb.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		tb.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func ipn(tb testing.TB, args ...string) string {
	tb.Helper()
	return sh(tb, append([]string{"ip", "-n", testNS}, args...)...)
}

// testNamespace builds cgwdtest-nh with two veth ends (nh0 192.0.2.1/24,
// nh1 198.51.100.1/24) and a TUN device tun0 held open by the test, and
// returns a Handle in it.
func testNamespace(tb testing.TB) *Handle {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root: creates a network namespace")
	}
	lockLab(tb)
	exec.Command("ip", "netns", "del", testNS).Run() // leftover of an aborted run
	sh(tb, "ip", "netns", "add", testNS)
	tb.Cleanup(func() { exec.Command("ip", "netns", "del", testNS).Run() })
	ipn(tb, "link", "set", "lo", "up")
	ipn(tb, "link", "add", "nh0", "type", "veth", "peer", "name", "nh1")
	ipn(tb, "addr", "add", "192.0.2.1/24", "dev", "nh0")
	ipn(tb, "addr", "add", "198.51.100.1/24", "dev", "nh1")
	ipn(tb, "link", "set", "nh0", "up")
	ipn(tb, "link", "set", "nh1", "up")
	tun, err := openTUN(testNS, "tun0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { tun.Close() })
	ipn(tb, "addr", "add", "169.254.10.2/30", "dev", "tun0")
	ipn(tb, "link", "set", "tun0", "up")
	h, err := openNamespace(testNS)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Close() })
	return h
}

// openTUN creates a TUN device in namespace ns; it has carrier while the
// returned file is open, like a running tunnel's.
func openTUN(ns, name string) (*os.File, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return nil, err
	}
	defer orig.Close()
	target, err := netns.GetFromName(ns)
	if err != nil {
		return nil, err
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return nil, err
	}
	defer netns.Set(orig)
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUNSETIFF %s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), "/dev/net/tun"), nil
}

func link(tb testing.TB, h *Handle, name string) int {
	tb.Helper()
	i, err := h.LinkIndex(name)
	if err != nil {
		tb.Fatal(err)
	}
	return i
}

// prefixes returns n distinct /24s: 10.0.0.0/24, 10.0.1.0/24, ... (n <= 2^16),
// continuing into 11.x.y.0/24 beyond 65,536.
func prefixes(n int) []netip.Prefix {
	out := make([]netip.Prefix, n)
	for i := range n {
		out[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(10 + i>>16), byte(i >> 8), byte(i), 0}), 24)
	}
	return out
}

func routesVia(ps []netip.Prefix, nhid uint32, table uint32) []Route {
	rs := make([]Route, len(ps))
	for i, p := range ps {
		rs[i] = Route{Dst: p, NexthopID: nhid, Table: table, Protocol: rtProtBGP}
	}
	return rs
}

// checkAllVia asserts that `ip route show proto bgp` lists exactly n routes
// and that each resolves through nhid and, when the kernel reports it
// (nexthop_compat_mode), through want ("via G dev D" or "dev D").
func checkAllVia(t *testing.T, n int, nhid uint32, want string) {
	t.Helper()
	out := strings.TrimSpace(ipn(t, "route", "show", "proto", "bgp"))
	lines := strings.Split(out, "\n")
	if out == "" {
		lines = nil
	}
	if len(lines) != n {
		t.Fatalf("ip route shows %d bgp routes, want %d", len(lines), n)
	}
	compat := strings.TrimSpace(sh(t, "ip", "netns", "exec", testNS, "sysctl", "-n", "net.ipv4.nexthop_compat_mode")) == "1"
	nh := fmt.Sprintf(" nhid %d ", nhid)
	for _, l := range lines {
		l += " "
		if !strings.Contains(l, nh) || (compat && !strings.Contains(l, " "+want+" ")) {
			t.Fatalf("route %q does not resolve via nhid %d %s", l, nhid, want)
		}
	}
}

func TestNamespaceNexthopsGroupsAndRoutes(t *testing.T) {
	h := testNamespace(t)
	if ok, err := h.Supported(); err != nil || !ok {
		t.Fatalf("Supported() = %v, %v on a kernel with nexthop objects", ok, err)
	}
	nh0, nh1, tun0 := link(t, h, "nh0"), link(t, h, "nh1"), link(t, h, "tun0")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(h.add(Nexthop{ID: 1, Gateway: netip.MustParseAddr(gw1), LinkIndex: nh0}))
	must(h.add(Nexthop{ID: 2, Gateway: netip.MustParseAddr(gw2), LinkIndex: nh1}))
	must(h.add(Nexthop{ID: 3, LinkIndex: tun0})) // device only: point-to-point TUN
	must(h.add(Nexthop{ID: 10, Group: []Member{{ID: 1}}}))
	if err := h.add(Nexthop{ID: 1, Gateway: netip.MustParseAddr(gw2), LinkIndex: nh1}); !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("adding an existing id: %v, want EEXIST", err)
	}
	if err := h.add(Nexthop{ID: 4, Gateway: netip.MustParseAddr("203.0.113.9"), LinkIndex: nh0}); err == nil {
		t.Fatal("gateway outside every connected subnet accepted")
	} else {
		t.Logf("unreachable gateway refused: %v", err)
	}
	got, err := h.get(10)
	must(err)
	if !(len(got.Group) == 1 && got.Group[0] == Member{ID: 1, Weight: 1}) {
		t.Fatalf("Get(10) = %+v", got)
	}
	if got, err := h.get(1); err != nil || got.Gateway != netip.MustParseAddr(gw1) || got.LinkIndex != nh0 {
		t.Fatalf("Get(1) = %+v, %v", got, err)
	}
	out := ipn(t, "nexthop", "show")
	for _, want := range []string{"id 1 via 192.0.2.2 dev nh0", "id 2 via 198.51.100.2 dev nh1", "id 3 dev tun0", "id 10 group 1"} {
		if !strings.Contains(out, want) {
			t.Fatalf("ip nexthop lacks %q:\n%s", want, out)
		}
	}

	const n = 10000
	ps := prefixes(n)
	start := time.Now()
	must(h.ReplaceRoutes(routesVia(ps, 10, 0)))
	t.Logf("installed %d routes on group 10 in %v", n, time.Since(start).Round(time.Millisecond))
	listed, err := h.ListRoutes(0, rtProtBGP)
	must(err)
	if len(listed) != n {
		t.Fatalf("ListRoutes: %d routes, want %d", len(listed), n)
	}
	for _, r := range listed {
		if r.NexthopID != 10 || r.Protocol != rtProtBGP || r.Dst.Bits() != 24 {
			t.Fatalf("listed route %+v", r)
		}
	}
	checkAllVia(t, n, 10, "via 192.0.2.2 dev nh0")

	// One message moves every route.
	start = time.Now()
	must(h.Replace(Nexthop{ID: 10, Group: []Member{{ID: 2}}}))
	t.Logf("group replace moved %d routes in %v", n, time.Since(start).Round(time.Microsecond))
	checkAllVia(t, n, 10, "via 198.51.100.2 dev nh1")
	if out := ipn(t, "route", "get", "10.39.15.7"); !strings.Contains(out, "via 198.51.100.2 dev nh1") {
		t.Fatalf("ip route get after replace: %s", out)
	}
	if out := ipn(t, "nexthop", "show", "id", "10"); !strings.Contains(out, "group 2") {
		t.Fatalf("ip nexthop show id 10: %s", out)
	}
	// Onto the tunnel (device-only nexthop).
	must(h.Replace(Nexthop{ID: 10, Group: []Member{{ID: 3}}}))
	checkAllVia(t, n, 10, "dev tun0")
	if out := ipn(t, "route", "get", "10.0.0.1"); !strings.Contains(out, "dev tun0") || strings.Contains(out, "via") {
		t.Fatalf("ip route get via tunnel: %s", out)
	}

	// ECMP with weights.
	must(h.Replace(Nexthop{ID: 10, Group: []Member{{ID: 1, Weight: 1}, {ID: 2, Weight: 3}}}))
	got, err = h.get(10)
	must(err)
	if len(got.Group) != 2 || got.Group[0] != (Member{ID: 1, Weight: 1}) || got.Group[1] != (Member{ID: 2, Weight: 3}) {
		t.Fatalf("ECMP group %+v", got.Group)
	}
	if out := ipn(t, "nexthop", "show", "id", "10"); !strings.Contains(out, "group 1/2,3") {
		t.Fatalf("ip nexthop show id 10: %s", out)
	}
	// Deleting one member of a multi-member group keeps the group and routes.
	must(h.Delete(1))
	if got, err := h.get(10); err != nil || len(got.Group) != 1 || got.Group[0].ID != 2 {
		t.Fatalf("group after deleting member 1: %+v %v", got, err)
	}
	checkAllVia(t, n, 10, "via 198.51.100.2 dev nh1")

	// Routes in another table, a table above 255, and the gateway fallback.
	must(h.ReplaceRoutes([]Route{
		{Dst: netip.MustParsePrefix("10.250.0.0/16"), NexthopID: 10, Table: 1000, Protocol: rtProtBGP},
		{Dst: netip.MustParsePrefix("10.251.0.0/16"), Gateway: netip.MustParseAddr(gw1), LinkIndex: nh0, Table: 1000, Protocol: rtProtBGP, Priority: 5},
	}))
	if out := ipn(t, "route", "show", "table", "1000"); !strings.Contains(out, "10.250.0.0/16 nhid 10") ||
		!strings.Contains(out, "10.251.0.0/16 via 192.0.2.2 dev nh0 proto bgp metric 5") {
		t.Fatalf("table 1000:\n%s", out)
	}
	if rs, err := h.ListRoutes(1000, rtProtBGP); err != nil || len(rs) != 2 {
		t.Fatalf("ListRoutes(1000) = %+v, %v", rs, err)
	}

	// Cleanup by protocol.
	if k, err := h.DeleteRoutesByProtocol(0, rtProtBGP); err != nil || k != n {
		t.Fatalf("DeleteRoutesByProtocol(main) = %d, %v; want %d", k, err, n)
	}
	if out := strings.TrimSpace(ipn(t, "route", "show", "proto", "bgp")); out != "" {
		t.Fatalf("routes left in main:\n%s", out)
	}
	if k, err := h.DeleteRoutesByProtocol(1000, rtProtBGP); err != nil || k != 2 {
		t.Fatalf("DeleteRoutesByProtocol(1000) = %d, %v", k, err)
	}
	for _, id := range []uint32{10, 2, 3} {
		must(h.Delete(id))
	}
	if all, err := h.List(); err != nil || len(all) != 0 {
		t.Fatalf("List after delete = %+v, %v", all, err)
	}
	if _, err := h.get(10); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(10) after delete: %v", err)
	}
	if err := h.Delete(10); !errors.Is(err, syscall.ENOENT) || !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting a missing nexthop: %v", err)
	}
}

// TestLastMemberGotcha shows why a group must be replaced before its only
// member is deleted: the kernel drops the group and its routes.
func TestLastMemberGotcha(t *testing.T) {
	h := testNamespace(t)
	nh0 := link(t, h, "nh0")
	if err := h.add(Nexthop{ID: 1, Gateway: netip.MustParseAddr(gw1), LinkIndex: nh0}); err != nil {
		t.Fatal(err)
	}
	if err := h.add(Nexthop{ID: 10, Group: []Member{{ID: 1}}}); err != nil {
		t.Fatal(err)
	}
	if err := h.ReplaceRoutes(routesVia(prefixes(10), 10, 0)); err != nil {
		t.Fatal(err)
	}
	if err := h.Delete(1); err != nil {
		t.Fatal(err)
	}
	if _, err := h.get(10); !errors.Is(err, ErrNotFound) {
		t.Fatalf("group 10 survived deleting its only member: %v", err)
	}
	if rs, err := h.ListRoutes(0, rtProtBGP); err != nil || len(rs) != 0 {
		t.Fatalf("%d routes survived, %v", len(rs), err)
	}
}

func TestReplaceRoutesNamesRefusedRoute(t *testing.T) {
	h := testNamespace(t)
	rs := routesVia(prefixes(3), 10, 0)
	rs[2].NexthopID = 99 // no such nexthop
	if err := h.add(Nexthop{ID: 10, Blackhole: true}); err != nil {
		t.Fatal(err)
	}
	err := h.ReplaceRoutes(rs)
	if err == nil || !strings.Contains(err.Error(), "10.0.2.0/24") {
		t.Fatalf("error %v does not name 10.0.2.0/24", err)
	}
	t.Log(err)
}

// TestUnreachableRoutes checks the fail-closed routes cgwd keeps below its
// own: the kernel answers "no route to host" once the unicast route is gone,
// unicast listing and deletion never touch them, and they are listed and
// deleted by type, IPv4 and IPv6 alike.
func TestUnreachableRoutes(t *testing.T) {
	h := testNamespace(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	const metric = 4000000000
	vpc := netip.MustParsePrefix("10.200.0.0/16")
	fc := []Route{
		{Dst: vpc, Type: TypeUnreachable, Protocol: rtProtBGP, Priority: metric},
		{Dst: netip.MustParsePrefix("2001:db8:200::/48"), Type: TypeUnreachable, Protocol: rtProtBGP, Priority: metric},
	}
	ipn(t, "route", "add", "default", "via", gw1)
	must(h.ReplaceRoutes(fc))
	must(h.ReplaceRoutes(fc)) // replace: idempotent
	nh1 := link(t, h, "nh1")
	must(h.ReplaceRoutes([]Route{{Dst: vpc, Gateway: netip.MustParseAddr(gw2), LinkIndex: nh1, Protocol: rtProtBGP}}))
	if out := ipn(t, "route", "get", "10.200.0.10"); !strings.Contains(out, "dev nh1") {
		t.Fatalf("the unicast route does not win: %s", out)
	}
	if rs, err := h.ListRoutes(0, rtProtBGP); err != nil || len(rs) != 1 || rs[0].Type != 0 {
		t.Fatalf("ListRoutes = %+v, %v; want the unicast route only", rs, err)
	}
	got, err := h.ListRoutesOfType(0, rtProtBGP, TypeUnreachable)
	must(err)
	if !reflect.DeepEqual(got, []Route{{Dst: vpc, Type: TypeUnreachable, Table: unix.RT_TABLE_MAIN, Protocol: rtProtBGP, Priority: metric},
		{Dst: fc[1].Dst, Type: TypeUnreachable, Table: unix.RT_TABLE_MAIN, Protocol: rtProtBGP, Priority: metric}}) {
		t.Fatalf("ListRoutesOfType = %+v", got)
	}
	if k, err := h.DeleteRoutesByProtocol(0, rtProtBGP); err != nil || k != 1 {
		t.Fatalf("DeleteRoutesByProtocol = %d, %v; want the unicast route only", k, err)
	}
	out, err := exec.Command("ip", "-n", testNS, "route", "get", "10.200.0.10").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "No route to host") {
		t.Fatalf("ip route get 10.200.0.10 with the unreachable route only: %v: %s", err, out)
	}
	must(h.DeleteRoutes(fc))
	if out := ipn(t, "route", "get", "10.200.0.10"); !strings.Contains(out, "via "+gw1) {
		t.Fatalf("after deleting the unreachable route: %s", out)
	}
	if rs, err := h.ListRoutesOfType(0, rtProtBGP, TypeUnreachable); err != nil || len(rs) != 0 {
		t.Fatalf("left: %+v, %v", rs, err)
	}
}

func BenchmarkInstallRoutes(b *testing.B) {
	for _, n := range []int{100, 10000, 100000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			h := testNamespace(b)
			if err := h.add(Nexthop{ID: 1, Gateway: netip.MustParseAddr(gw1), LinkIndex: link(b, h, "nh0")}); err != nil {
				b.Fatal(err)
			}
			if err := h.add(Nexthop{ID: 10, Group: []Member{{ID: 1}}}); err != nil {
				b.Fatal(err)
			}
			rs := routesVia(prefixes(n), 10, 0)
			for b.Loop() {
				if err := h.ReplaceRoutes(rs); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := h.DeleteRoutes(rs); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/route")
		})
	}
}

// BenchmarkGroupReplace times one group replace (netlink request to ack)
// with n routes on the group, with net.ipv4.nexthop_compat_mode on (the
// default: the kernel then notifies every route of the group before it
// acks) and off.
func BenchmarkGroupReplace(b *testing.B) {
	for _, compat := range []int{1, 0} {
		for _, n := range []int{100, 10000, 100000} {
			b.Run(fmt.Sprintf("compat=%d/routes=%d", compat, n), func(b *testing.B) {
				h := testNamespace(b)
				sh(b, "ip", "netns", "exec", testNS, "sysctl", "-q", "-w", fmt.Sprintf("net.ipv4.nexthop_compat_mode=%d", compat))
				if err := h.add(Nexthop{ID: 1, Gateway: netip.MustParseAddr(gw1), LinkIndex: link(b, h, "nh0")}); err != nil {
					b.Fatal(err)
				}
				if err := h.add(Nexthop{ID: 2, Gateway: netip.MustParseAddr(gw2), LinkIndex: link(b, h, "nh1")}); err != nil {
					b.Fatal(err)
				}
				if err := h.add(Nexthop{ID: 10, Group: []Member{{ID: 1}}}); err != nil {
					b.Fatal(err)
				}
				if err := h.ReplaceRoutes(routesVia(prefixes(n), 10, 0)); err != nil {
					b.Fatal(err)
				}
				member := uint32(1)
				for b.Loop() {
					member = 3 - member
					if err := h.Replace(Nexthop{ID: 10, Group: []Member{{ID: member}}}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// inNS runs f on a thread switched into the test namespace.
func inNS(tb testing.TB, f func() error) {
	tb.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		target, err := netns.GetFromName(testNS)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	if err := <-errc; err != nil {
		tb.Fatal(err)
	}
}

func TestCompatMode(t *testing.T) {
	h := testNamespace(t)
	rootBefore, err := compatMode()
	if err != nil {
		t.Fatal(err)
	}
	inNS(t, func() error {
		if err := setCompatMode(false); err != nil {
			return err
		}
		if on, err := compatMode(); err != nil || on {
			return fmt.Errorf("compatMode() = %v, %v after setCompatMode(false)", on, err)
		}
		return nil
	})
	if got := strings.TrimSpace(sh(t, "ip", "netns", "exec", testNS, "sysctl", "-n", "net.ipv4.nexthop_compat_mode")); got != "0" {
		t.Fatalf("sysctl in %s = %s, want 0", testNS, got)
	}
	if rootAfter, _ := compatMode(); rootAfter != rootBefore {
		t.Fatal("SetCompatMode in the namespace changed the root namespace")
	}
	// Without compat mode the replace still moves the forwarding of every route.
	for _, n := range []Nexthop{
		{ID: 1, Gateway: netip.MustParseAddr(gw1), LinkIndex: link(t, h, "nh0")},
		{ID: 2, Gateway: netip.MustParseAddr(gw2), LinkIndex: link(t, h, "nh1")},
		{ID: 10, Group: []Member{{ID: 1}}},
	} {
		if err := h.add(n); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.ReplaceRoutes(routesVia(prefixes(100), 10, 0)); err != nil {
		t.Fatal(err)
	}
	if out := ipn(t, "route", "get", "10.0.99.1"); !strings.Contains(out, "via 192.0.2.2 dev nh0") {
		t.Fatalf("before replace: %s", out)
	}
	if err := h.Replace(Nexthop{ID: 10, Group: []Member{{ID: 2}}}); err != nil {
		t.Fatal(err)
	}
	for _, dst := range []string{"10.0.0.1", "10.0.99.1"} {
		if out := ipn(t, "route", "get", dst); !strings.Contains(out, "via 198.51.100.2 dev nh1") {
			t.Fatalf("after replace, %s: %s", dst, out)
		}
	}
}
