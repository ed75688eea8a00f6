package fib

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/cgwd/cgwd/pkg/fib/internal/nexthop"
	"golang.org/x/sys/unix"
)

// netlinkKernel is the Linux kernel over rtnetlink (pkg/nexthop): routes of
// one protocol in one table, and nexthop objects where the kernel has them.
type netlinkKernel struct {
	mu       sync.Mutex // a nexthop.Handle is not safe for concurrent use
	h        *nexthop.Handle
	table    uint32
	protocol uint8
	groups   bool
	ifname   map[int]string
}

// NewNetlinkKernel returns the Linux kernel of the caller's network
// namespace as a Kernel for routes of protocol in table.
func NewNetlinkKernel(table, protocol int) (Kernel, error) {
	h, err := nexthop.Open()
	if err != nil {
		return nil, fmt.Errorf("fib: netlink: %w", err)
	}
	groups, err := h.Supported()
	if err != nil {
		groups = false
	}
	return &netlinkKernel{h: h, table: uint32(table), protocol: uint8(protocol), groups: groups, ifname: map[int]string{}}, nil
}

func (k *netlinkKernel) NexthopObjects() bool { return k.groups }

func (k *netlinkKernel) linkName(idx int) string {
	if n, ok := k.ifname[idx]; ok {
		return n
	}
	return fmt.Sprintf("if%d", idx)
}

func (k *netlinkKernel) List() ([]Route, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	rs, err := k.h.ListRoutes(k.table, k.protocol)
	if err != nil {
		return nil, err
	}
	out := make([]Route, 0, len(rs))
	for _, r := range rs {
		if r.Priority == LANMetric {
			continue // a LANRoutes route, not the FIB's
		}
		rt := Route{Prefix: r.Dst, NexthopID: r.NexthopID}
		if r.NexthopID == 0 { // the gateway of a nexthop route is only the kernel's resolution
			rt.Gateway = r.Gateway
			rt.Link = k.linkName(r.LinkIndex)
		}
		out = append(out, rt)
	}
	return out, nil
}

func (k *netlinkKernel) route(r Route) (nexthop.Route, error) {
	nr := nexthop.Route{Dst: r.Prefix, NexthopID: r.NexthopID, Gateway: r.Gateway, Table: k.table, Protocol: k.protocol}
	if r.Link != "" {
		idx, err := k.h.LinkIndex(r.Link)
		if err != nil {
			return nr, fmt.Errorf("route %s: link %s: %w", r.Prefix, r.Link, err)
		}
		nr.LinkIndex = idx
		k.ifname[idx] = r.Link
	}
	return nr, nil
}

func (k *netlinkKernel) batch(rs []Route, del bool) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	nrs := make([]nexthop.Route, 0, len(rs))
	for _, r := range rs {
		nr, err := k.route(r)
		if err != nil {
			return err
		}
		nrs = append(nrs, nr)
	}
	if del {
		return k.h.DeleteRoutes(nrs)
	}
	return k.h.ReplaceRoutes(nrs)
}

func (k *netlinkKernel) Replace(rs []Route) error { return k.batch(rs, false) }
func (k *netlinkKernel) Delete(rs []Route) error  { return k.batch(rs, true) }

func (k *netlinkKernel) ReplaceNexthop(id uint32, link string, gw netip.Addr) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	nh := nexthop.Nexthop{ID: id, Gateway: gw, Protocol: k.protocol}
	if link == "" && !gw.IsValid() {
		nh.Blackhole = true
	} else {
		idx, err := k.h.LinkIndex(link)
		if err != nil {
			return fmt.Errorf("nexthop %d: link %s: %w", id, link, err)
		}
		nh.LinkIndex = idx
		k.ifname[idx] = link
	}
	return k.h.Replace(nh)
}

func (k *netlinkKernel) ReplaceGroup(id uint32, members []uint32) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	g := nexthop.Nexthop{ID: id, Protocol: k.protocol}
	for _, m := range members {
		g.Group = append(g.Group, nexthop.Member{ID: m})
	}
	return k.h.Replace(g)
}

func (k *netlinkKernel) DeleteNexthops(ids []uint32) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	var first error
	for _, id := range ids {
		if err := k.h.Delete(id); err != nil && first == nil && !errors.Is(err, nexthop.ErrNotFound) {
			first = fmt.Errorf("nexthop %d: %w", id, err)
		}
	}
	return first
}

func (k *netlinkKernel) Groups() ([]uint32, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	all, err := k.h.List()
	if err != nil {
		return nil, err
	}
	var ids []uint32
	for _, n := range all {
		if len(n.Group) > 0 && n.Protocol == k.protocol {
			ids = append(ids, n.ID)
		}
	}
	return ids, nil
}

func (k *netlinkKernel) FailClosed() ([]netip.Prefix, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	rs, err := k.h.ListRoutesOfType(k.table, k.protocol, nexthop.TypeUnreachable)
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, r := range rs {
		if r.Priority == FailClosedMetric {
			out = append(out, r.Dst)
		}
	}
	return out, nil
}

// failClosed is the kernel route of a fail-closed prefix.
func (k *netlinkKernel) failClosed(ps []netip.Prefix) []nexthop.Route {
	rs := make([]nexthop.Route, len(ps))
	for i, p := range ps {
		rs[i] = nexthop.Route{Dst: p, Type: nexthop.TypeUnreachable, Table: k.table, Protocol: k.protocol, Priority: FailClosedMetric}
	}
	return rs
}

func (k *netlinkKernel) ReplaceFailClosed(ps []netip.Prefix) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.h.ReplaceRoutes(k.failClosed(ps))
}

func (k *netlinkKernel) DeleteFailClosed(ps []netip.Prefix) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	rs := k.failClosed(ps)
	err := k.h.DeleteRoutes(rs)
	if !errors.Is(err, unix.ESRCH) {
		return err
	}
	// One was gone already (deleted by hand): what was asked; the batch
	// stopped there, so go through them one by one.
	for _, r := range rs {
		if err := k.h.DeleteRoutes([]nexthop.Route{r}); err != nil && !errors.Is(err, unix.ESRCH) {
			return err
		}
	}
	return nil
}
