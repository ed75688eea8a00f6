package labkit

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

func itoa(n int) string { return strconv.Itoa(n) }

// Route is one route of `ip -j route`.
type Route struct {
	Dst      string `json:"dst"`
	Gateway  string `json:"gateway"`
	Dev      string `json:"dev"`
	Protocol string `json:"protocol"`
	NHID     uint32 `json:"nhid"`
}

// CgwdRoutes lists lab-cgw's main-table unicast routes of cgwd's protocol
// (200) by destination: its fail-closed routes (unreachable) are not routes
// to AWS.
func CgwdRoutes(t testing.TB) map[string]Route {
	t.Helper()
	out := MustInNS(t, CGW, "ip", "-j", "route", "show", "proto", "200", "type", "unicast")
	var rs []Route
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("ip -j route: %v\n%s", err, out)
	}
	m := map[string]Route{}
	for _, r := range rs {
		m[r.Dst] = r
	}
	return m
}

// CgwdKernel lists what cgwd owns in lab-cgw: its unicast routes, its
// fail-closed (unreachable) routes and its nexthop objects.
func CgwdKernel(t testing.TB) (routes, closed, nexthops string) {
	t.Helper()
	get := func(args ...string) string { return strings.TrimSpace(MustInNS(t, CGW, args...)) }
	return get("ip", "route", "show", "proto", "200", "type", "unicast"),
		get("ip", "route", "show", "proto", "200", "type", "unreachable"),
		get("ip", "nexthop", "show", "protocol", "200")
}

// RouteGet is lab-cgw's `ip route get dst`.
func RouteGet(dst string) (string, error) { return InNS(CGW, "ip", "route", "get", dst) }

// RouteDev is the device lab-cgw's kernel uses for the VPC host now, or
// "none" when it has no way there (no route, or cgwd's blackhole group while
// no path is usable, which `ip route get` answers with EINVAL).
func RouteDev() string { return RouteDevIn(CGW, VPCHost) }

// RouteDevIn is the device namespace ns's kernel uses for dst now, or
// "none" when it has no way there.
func RouteDevIn(ns, dst string) string {
	out, err := InNS(ns, "ip", "route", "get", dst)
	if err != nil {
		return "none"
	}
	f := strings.Fields(out)
	for i := range f[:len(f)-1] {
		if f[i] == "dev" {
			return f[i+1]
		}
	}
	return ""
}

// WaitDev waits until lab-cgw routes the VPC host via dev.
func WaitDev(t testing.TB, timeout time.Duration, dev string) {
	t.Helper()
	Eventually(t, timeout, VPCHost+" routed via "+dev, func() error {
		if got := RouteDev(); got != dev {
			return fmt.Errorf("via %s", got)
		}
		return nil
	})
}

// WaitRoute waits until prefix is in lab-cgw's kernel (a route of cgwd's
// protocol) and packets to its first address leave via gw on dev; gw == ""
// means: no route of cgwd's for prefix. It asks `ip route get`, because
// cgwd's routes point at nexthop groups, which `ip route` shows as "nhid N".
func WaitRoute(t testing.TB, timeout time.Duration, prefix, gw, dev string) {
	t.Helper()
	addr := netip.MustParsePrefix(prefix).Addr().Next().String()
	Eventually(t, timeout, fmt.Sprintf("%s via %q dev %q", prefix, gw, dev), func() error {
		r, ok := CgwdRoutes(t)[prefix]
		switch {
		case gw == "" && ok:
			return fmt.Errorf("still there: %+v", r)
		case gw == "":
			return nil
		case !ok:
			return fmt.Errorf("absent")
		}
		out, err := RouteGet(addr)
		if err != nil {
			return fmt.Errorf("ip route get %s: %v: %s", addr, err, out)
		}
		if !strings.Contains(out, "via "+gw+" dev "+dev+" ") {
			return fmt.Errorf("ip route get %s: %s", addr, strings.TrimSpace(out))
		}
		return nil
	})
}

var nhDevRE = regexp.MustCompile(`\bdev (\S+)`)

// NexthopDevs maps each of cgwd's routes in lab-cgw to the sorted devices
// of its nexthop (the members of its nexthop group, or its own dev).
func NexthopDevs(t testing.TB) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for dst, r := range CgwdRoutes(t) {
		f := strings.Fields(MustInNS(t, CGW, "ip", "route", "show", "exact", dst, "proto", "200", "type", "unicast"))
		var devs []string
		for i := 0; i+1 < len(f); i++ {
			if f[i] != "nhid" {
				continue
			}
			grp := MustInNS(t, CGW, "ip", "nexthop", "show", "id", f[i+1])
			g := strings.Fields(grp)
			for j := 0; j+1 < len(g); j++ {
				if g[j] != "group" {
					continue
				}
				for _, m := range strings.Split(g[j+1], "/") {
					m, _, _ = strings.Cut(m, ",") // id,weight
					if d := nhDevRE.FindStringSubmatch(MustInNS(t, CGW, "ip", "nexthop", "show", "id", m)); d != nil {
						devs = append(devs, d[1])
					}
				}
			}
			if d := nhDevRE.FindStringSubmatch(grp); d != nil { // a single nexthop object
				devs = append(devs, d[1])
			}
		}
		if len(devs) == 0 && r.Dev != "" {
			devs = []string{r.Dev}
		}
		sort.Strings(devs)
		out[dst] = devs
	}
	return out
}

// WaitAllVia waits until every one of cgwd's routes leaves via exactly devs.
func WaitAllVia(t testing.TB, timeout time.Duration, devs ...string) {
	t.Helper()
	want := strings.Join(devs, ",")
	Eventually(t, timeout, "every cgwd route via "+want, func() error {
		rs := NexthopDevs(t)
		if len(rs) == 0 {
			return errors.New("no routes of cgwd's")
		}
		for dst, d := range rs {
			if got := strings.Join(d, ","); got != want {
				return fmt.Errorf("%s via %s", dst, got)
			}
		}
		return nil
	})
}

// LinkPackets is a netdev's rx and tx packet counters in ns.
func LinkPackets(t testing.TB, ns, dev string) (rx, tx uint64) {
	t.Helper()
	out := MustInNS(t, ns, "ip", "-j", "-s", "link", "show", "dev", dev)
	var links []struct {
		Stats struct {
			Rx struct{ Packets uint64 } `json:"rx"`
			Tx struct{ Packets uint64 } `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		t.Fatalf("ip -j -s link %s: %v\n%s", dev, err, out)
	}
	return links[0].Stats.Rx.Packets, links[0].Stats.Tx.Packets
}
