package nexthop

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// rtaNHID is RTA_NH_ID (linux/rtnetlink.h), which x/sys/unix lacks.
const rtaNHID = 30

// RTProtBGP is the route protocol number conventionally used for routes
// learned by BGP (RTPROT_BGP, shown as "proto bgp" by iproute2).
const RTProtBGP = 186

// Route is an IPv4 unicast route. It points at a nexthop object
// (NexthopID), or, where the kernel lacks nexthop objects, at Gateway
// and/or LinkIndex directly. In routes returned by ListRoutes a nexthop
// route may also carry the Gateway and LinkIndex the kernel resolved it to
// (sysctl net.ipv4.nexthop_compat_mode); they are ignored when NexthopID is
// set for deletion.
type Route struct {
	Dst       netip.Prefix
	NexthopID uint32
	Gateway   netip.Addr
	LinkIndex int
	// Table is the routing table; 0 means main (254).
	Table uint32
	// Protocol marks who installed the route (e.g. RTProtBGP); it is how
	// ListRoutes and DeleteRoutes find our routes again.
	Protocol uint8
	// Priority is the metric; routes differing only in metric coexist.
	Priority uint32
}

func (r *Route) table() uint32 {
	if r.Table == 0 {
		return unix.RT_TABLE_MAIN
	}
	return r.Table
}

func (r *Route) message(typ, flags uint16) (message, error) {
	if !r.Dst.IsValid() || !r.Dst.Addr().Is4() {
		return nil, fmt.Errorf("route %v: destination must be an IPv4 prefix", r.Dst)
	}
	if typ == unix.RTM_NEWROUTE && r.NexthopID == 0 && !r.Gateway.IsValid() && r.LinkIndex == 0 {
		return nil, fmt.Errorf("route %v: needs a nexthop id, gateway or device", r.Dst)
	}
	if typ == unix.RTM_NEWROUTE && r.NexthopID != 0 && (r.Gateway.IsValid() || r.LinkIndex != 0) {
		return nil, fmt.Errorf("route %v: nexthop id %d excludes gateway and device", r.Dst, r.NexthopID)
	}
	if r.Gateway.IsValid() && !r.Gateway.Is4() {
		return nil, fmt.Errorf("route %v: gateway %v is not IPv4", r.Dst, r.Gateway)
	}
	t := r.table()
	hdr := unix.RtMsg{
		Family:   unix.AF_INET,
		Dst_len:  uint8(r.Dst.Bits()),
		Table:    unix.RT_TABLE_UNSPEC,
		Protocol: r.Protocol,
		Scope:    unix.RT_SCOPE_UNIVERSE,
		Type:     unix.RTN_UNICAST,
	}
	if t < 256 {
		hdr.Table = uint8(t)
	}
	if typ == unix.RTM_DELROUTE {
		hdr.Scope = unix.RT_SCOPE_NOWHERE
	}
	m := newMessage(typ, flags, structBytes(&hdr, unix.SizeofRtMsg))
	m = m.u32(unix.RTA_TABLE, t)
	dst := r.Dst.Masked().Addr().As4()
	m = m.attr(unix.RTA_DST, dst[:])
	if r.NexthopID != 0 {
		m = m.u32(rtaNHID, r.NexthopID)
	}
	if r.Gateway.IsValid() && r.NexthopID == 0 {
		gw := r.Gateway.As4()
		m = m.attr(unix.RTA_GATEWAY, gw[:])
	}
	if r.LinkIndex != 0 && r.NexthopID == 0 {
		m = m.u32(unix.RTA_OIF, uint32(r.LinkIndex))
	}
	if r.Priority != 0 {
		m = m.u32(unix.RTA_PRIORITY, r.Priority)
	}
	return m, nil
}

// ReplaceRoutes installs routes, replacing any route with the same
// destination, table and metric. The messages are sent in batches; on
// failure the error names the first route the kernel refused, and the
// routes before it are installed.
func (h *Handle) ReplaceRoutes(routes []Route) error {
	return h.routeBatch(routes, unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, "replace")
}

// DeleteRoutes deletes routes. A route matches on destination, table and,
// when set, protocol, nexthop id, gateway, device and metric.
func (h *Handle) DeleteRoutes(routes []Route) error {
	return h.routeBatch(routes, unix.RTM_DELROUTE, 0, "delete")
}

func (h *Handle) routeBatch(routes []Route, typ, flags uint16, op string) error {
	msgs := make([]message, len(routes))
	for i := range routes {
		m, err := routes[i].message(typ, flags)
		if err != nil {
			return err
		}
		msgs[i] = m
	}
	if i, err := h.batch(msgs); err != nil {
		if i >= 0 && i < len(routes) {
			return fmt.Errorf("route %v: %s: %w", routes[i].Dst, op, err)
		}
		return fmt.Errorf("routes: %s: %w", op, err)
	}
	return nil
}

// ListRoutes returns the IPv4 unicast routes of a table (0: main) installed
// with the given protocol (0: any).
func (h *Handle) ListRoutes(table uint32, protocol uint8) ([]Route, error) {
	if table == 0 {
		table = unix.RT_TABLE_MAIN
	}
	hdr := unix.RtMsg{Family: unix.AF_INET}
	rs, err := h.do(newMessage(unix.RTM_GETROUTE, unix.NLM_F_DUMP, structBytes(&hdr, unix.SizeofRtMsg)))
	if err != nil {
		return nil, fmt.Errorf("routes: list table %d: %w", table, err)
	}
	var out []Route
	for _, r := range rs {
		if r.typ != unix.RTM_NEWROUTE {
			continue
		}
		rt, typ, err := parseRoute(r.data)
		if err != nil {
			return nil, err
		}
		if typ != unix.RTN_UNICAST || rt.Table != table || (protocol != 0 && rt.Protocol != protocol) {
			continue
		}
		out = append(out, rt)
	}
	return out, nil
}

// DeleteRoutesByProtocol deletes every IPv4 unicast route of a table (0:
// main) installed with protocol, which must be non-zero, and returns how
// many it deleted.
func (h *Handle) DeleteRoutesByProtocol(table uint32, protocol uint8) (int, error) {
	if protocol == 0 {
		return 0, errors.New("routes: delete by protocol: protocol must be non-zero")
	}
	rs, err := h.ListRoutes(table, protocol)
	if err != nil {
		return 0, err
	}
	for i := range rs {
		// Match on destination, table, protocol and metric only.
		rs[i].NexthopID, rs[i].Gateway, rs[i].LinkIndex = 0, netip.Addr{}, 0
	}
	if err := h.DeleteRoutes(rs); err != nil {
		return 0, err
	}
	return len(rs), nil
}

func parseRoute(b []byte) (Route, uint8, error) {
	var r Route
	if len(b) < unix.SizeofRtMsg {
		return r, 0, errors.New("routes: short RTM_NEWROUTE message")
	}
	dstLen := int(b[1])
	r.Table = uint32(b[4])
	r.Protocol = b[5]
	typ := b[7]
	dst := netip.IPv4Unspecified()
	for _, a := range attrs(b[unix.SizeofRtMsg:]) {
		switch a.typ {
		case unix.RTA_TABLE:
			if len(a.data) >= 4 {
				r.Table = binary.NativeEndian.Uint32(a.data)
			}
		case unix.RTA_DST:
			if ip, ok := netip.AddrFromSlice(a.data); ok {
				dst = ip
			}
		case rtaNHID:
			if len(a.data) >= 4 {
				r.NexthopID = binary.NativeEndian.Uint32(a.data)
			}
		case unix.RTA_GATEWAY:
			if ip, ok := netip.AddrFromSlice(a.data); ok {
				r.Gateway = ip
			}
		case unix.RTA_OIF:
			if len(a.data) >= 4 {
				r.LinkIndex = int(binary.NativeEndian.Uint32(a.data))
			}
		case unix.RTA_PRIORITY:
			if len(a.data) >= 4 {
				r.Priority = binary.NativeEndian.Uint32(a.data)
			}
		}
	}
	if !dst.Is4() {
		return r, typ, nil // not ours: an IPv4 dump has only IPv4 routes
	}
	p, err := dst.Prefix(dstLen)
	if err != nil {
		return r, 0, fmt.Errorf("routes: bad prefix length %d", dstLen)
	}
	r.Dst = p
	return r, typ, nil
}
