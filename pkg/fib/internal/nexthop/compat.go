package nexthop

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// SetCompatMode sets net.ipv4.nexthop_compat_mode in the calling thread's
// network namespace. When on (the kernel default), a group replace is
// acknowledged only after the kernel has sent a route notification for every
// route on the group, so its cost grows with the number of routes (about
// 60 ms for 100,000 routes here); when off it is constant (about 25 µs), and
// route dumps (`ip route`) show "nhid N" without the resolved gateway. It
// needs CAP_NET_ADMIN, and a writable /proc/sys only when the value changes:
// a container whose /proc/sys is read-only runs when the host has set it.
func SetCompatMode(on bool) error {
	v := "0\n"
	if on {
		v = "1\n"
	}
	if cur, err := os.ReadFile("/proc/sys/net/ipv4/nexthop_compat_mode"); err == nil && string(cur) == v {
		return nil
	}
	// The path is spelled out here so that deploy/systemd's test finds this
	// write and checks the unit leaves the sysctl writable.
	if err := os.WriteFile("/proc/sys/net/ipv4/nexthop_compat_mode", []byte(v), 0o644); err != nil {
		if errors.Is(err, syscall.EROFS) {
			return fmt.Errorf("nexthop: set compat mode %q: %w (in a container: set net.ipv4.nexthop_compat_mode=%s on the host, or failover.nexthop_compat_mode: true)", strings.TrimSpace(v), err, strings.TrimSpace(v))
		}
		return fmt.Errorf("nexthop: set compat mode %q: %w", strings.TrimSpace(v), err)
	}
	return nil
}
