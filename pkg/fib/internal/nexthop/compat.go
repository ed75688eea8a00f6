package nexthop

import (
	"fmt"
	"os"
	"strings"
)

// SetCompatMode sets net.ipv4.nexthop_compat_mode in the calling thread's
// network namespace. When on (the kernel default), a group replace is
// acknowledged only after the kernel has sent a route notification for every
// route on the group, so its cost grows with the number of routes (about
// 60 ms for 100,000 routes here); when off it is constant (about 25 µs), and
// route dumps (`ip route`) show "nhid N" without the resolved gateway. It
// needs CAP_NET_ADMIN.
func SetCompatMode(on bool) error {
	v := "0\n"
	if on {
		v = "1\n"
	}
	// The path is spelled out here so that deploy/systemd's test finds this
	// write and checks the unit leaves the sysctl writable.
	if err := os.WriteFile("/proc/sys/net/ipv4/nexthop_compat_mode", []byte(v), 0o644); err != nil {
		return fmt.Errorf("nexthop: set compat mode %q: %w", strings.TrimSpace(v), err)
	}
	return nil
}
