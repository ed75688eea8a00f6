package nexthop

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// What only the tests use: cgwd itself replaces (never adds), finds its
// objects by listing them, and runs in the namespace it starts in.

// rtProtBGP is the route protocol number conventionally used for routes
// learned by BGP (RTPROT_BGP, shown as "proto bgp" by iproute2).
const rtProtBGP = 186

// add creates a nexthop or group; it fails if the ID exists.
func (h *Handle) add(n Nexthop) error {
	return h.newNexthop(n, unix.NLM_F_CREATE|unix.NLM_F_EXCL, "add")
}

// get returns the nexthop with the given ID.
func (h *Handle) get(id uint32) (Nexthop, error) {
	hdr := unix.Nhmsg{}
	m := newMessage(unix.RTM_GETNEXTHOP, 0, structBytes(&hdr, unix.SizeofNhmsg)).u32(unix.NHA_ID, id)
	rs, err := h.do(m)
	if errors.Is(err, syscall.ENOENT) {
		return Nexthop{}, fmt.Errorf("nexthop %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Nexthop{}, fmt.Errorf("nexthop %d: get: %w", id, err)
	}
	for _, r := range rs {
		if r.typ == unix.RTM_NEWNEXTHOP {
			return parseNexthop(r.data)
		}
	}
	return Nexthop{}, fmt.Errorf("nexthop %d: %w", id, ErrNotFound)
}

// openNamespace returns a Handle in the named network namespace (as made by
// `ip netns add NAME`).
func openNamespace(name string) (*Handle, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("nexthop: current namespace: %w", err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(name)
	if err != nil {
		return nil, fmt.Errorf("nexthop: namespace %s: %w", name, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return nil, fmt.Errorf("nexthop: enter namespace %s: %w", name, err)
	}
	h, openErr := Open()
	if err := netns.Set(orig); err != nil {
		// The thread is in the wrong namespace: let it die with the goroutine.
		runtime.LockOSThread()
		if h != nil {
			h.Close()
		}
		return nil, fmt.Errorf("nexthop: return from namespace %s: %w", name, err)
	}
	return h, openErr
}

// compatMode reports net.ipv4.nexthop_compat_mode of the calling thread's
// network namespace.
func compatMode() (bool, error) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/nexthop_compat_mode")
	if err != nil {
		return false, fmt.Errorf("nexthop: compat mode: %w", err)
	}
	return strings.TrimSpace(string(b)) != "0", nil
}

// setCompatMode sets net.ipv4.nexthop_compat_mode in the calling thread's
// network namespace. When on (the kernel default), a group replace is
// acknowledged only after the kernel has sent a route notification for every
// route on the group, so its cost grows with the number of routes (about
// 60 ms for 100,000 routes here); when off it is constant (about 25 µs), and
// route dumps (`ip route`) show "nhid N" without the resolved gateway. (cgwd
// itself writes it from pkg/fib.)
func setCompatMode(on bool) error {
	v := "0\n"
	if on {
		v = "1\n"
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/nexthop_compat_mode", []byte(v), 0o644); err != nil {
		return fmt.Errorf("nexthop: set compat mode %q: %w", strings.TrimSpace(v), err)
	}
	return nil
}
