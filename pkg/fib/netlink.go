package fib

import (
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// netlinkKernel programs IPv4 routes of one protocol in one table.
type netlinkKernel struct {
	h        *netlink.Handle
	table    int
	protocol netlink.RouteProtocol

	mu     sync.Mutex
	ifidx  map[string]int
	ifname map[int]string
}

// NewNetlinkKernel returns the Linux kernel as a Kernel: routes of protocol
// in table, over a netlink socket of the caller's network namespace.
func NewNetlinkKernel(table, protocol int) (Kernel, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("fib: netlink: %w", err)
	}
	return &netlinkKernel{h: h, table: table, protocol: netlink.RouteProtocol(protocol), ifidx: map[string]int{}, ifname: map[int]string{}}, nil
}

func (k *netlinkKernel) linkIndex(name string, refresh bool) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if i, ok := k.ifidx[name]; ok && !refresh {
		return i, nil
	}
	l, err := k.h.LinkByName(name)
	if err != nil {
		return 0, fmt.Errorf("link %s: %w", name, err)
	}
	i := l.Attrs().Index
	k.ifidx[name], k.ifname[i] = i, name
	return i, nil
}

func (k *netlinkKernel) linkName(idx int) string {
	k.mu.Lock()
	n, ok := k.ifname[idx]
	k.mu.Unlock()
	if ok {
		return n
	}
	if l, err := k.h.LinkByIndex(idx); err == nil {
		n = l.Attrs().Name
		k.mu.Lock()
		k.ifname[idx], k.ifidx[n] = n, idx
		k.mu.Unlock()
	}
	return n
}

func (k *netlinkKernel) route(r Route, refresh bool) (*netlink.Route, error) {
	idx, err := k.linkIndex(r.Link, refresh)
	if err != nil {
		return nil, err
	}
	nr := &netlink.Route{
		LinkIndex: idx,
		Dst:       &net.IPNet{IP: r.Prefix.Addr().AsSlice(), Mask: net.CIDRMask(r.Prefix.Bits(), 32)},
		Table:     k.table,
		Protocol:  k.protocol,
		Family:    netlink.FAMILY_V4,
	}
	if r.Gateway.IsValid() {
		nr.Gw = r.Gateway.AsSlice()
	}
	return nr, nil
}

// List returns the routes of our protocol in our table.
func (k *netlinkKernel) List() ([]Route, error) {
	filter := &netlink.Route{Table: k.table, Protocol: k.protocol}
	rs, err := k.h.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return nil, err
	}
	out := make([]Route, 0, len(rs))
	for _, r := range rs {
		if r.Dst == nil {
			continue
		}
		a, _ := netip.AddrFromSlice(r.Dst.IP.To4())
		ones, _ := r.Dst.Mask.Size()
		rt := Route{Prefix: netip.PrefixFrom(a, ones), Link: k.linkName(r.LinkIndex)}
		if gw, ok := netip.AddrFromSlice(r.Gw.To4()); ok {
			rt.Gateway = gw
		}
		out = append(out, rt)
	}
	return out, nil
}

// Replace installs or replaces r. A stale interface index (a tunnel netdev
// re-created) is looked up again once.
func (k *netlinkKernel) Replace(r Route) error {
	nr, err := k.route(r, false)
	if err == nil {
		if err = k.h.RouteReplace(nr); err != nil {
			if nr, err = k.route(r, true); err == nil {
				err = k.h.RouteReplace(nr)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("replace %s via %s dev %s: %w", r.Prefix, r.Gateway, r.Link, err)
	}
	return nil
}

// Delete removes r (matched by prefix, table and protocol).
func (k *netlinkKernel) Delete(r Route) error {
	nr := &netlink.Route{
		Dst:      &net.IPNet{IP: r.Prefix.Addr().AsSlice(), Mask: net.CIDRMask(r.Prefix.Bits(), 32)},
		Table:    k.table,
		Protocol: k.protocol,
		Family:   netlink.FAMILY_V4,
	}
	if err := k.h.RouteDel(nr); err != nil && err != unix.ESRCH {
		return fmt.Errorf("delete %s: %w", r.Prefix, err)
	}
	return nil
}
