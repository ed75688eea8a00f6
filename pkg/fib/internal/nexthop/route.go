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

// Route types (rtm_type) besides unicast.
const (
	// TypeUnreachable drops packets and tells the sender "no route to
	// host": EHOSTUNREACH for a local socket, ICMP destination unreachable
	// for a forwarded packet.
	TypeUnreachable = unix.RTN_UNREACHABLE
)

// Route is a route. A unicast route (Type 0) is IPv4 and points at a nexthop
// object (NexthopID), or, where the kernel lacks nexthop objects, at Gateway
// and/or LinkIndex directly. An unreachable route (TypeUnreachable) has no
// nexthop and may be IPv4 or IPv6. In routes returned by ListRoutes a nexthop
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
	// Protocol marks who installed the route (cgwd: bgp.route_protocol); it is how
	// ListRoutes and DeleteRoutes find our routes again.
	Protocol uint8
	// Priority is the metric; routes differing only in metric coexist.
	Priority uint32
	// Type is the route type (an RTN_* value); 0 means unicast.
	Type uint8
}

func (r *Route) rtType() uint8 {
	if r.Type == 0 {
		return unix.RTN_UNICAST
	}
	return r.Type
}

func (r *Route) table() uint32 {
	if r.Table == 0 {
		return unix.RT_TABLE_MAIN
	}
	return r.Table
}

func (r *Route) message(typ, flags uint16) (message, error) {
	family, err := r.check(typ)
	if err != nil {
		return nil, err
	}
	t := r.table()
	hdr := unix.RtMsg{
		Family:   family,
		Dst_len:  uint8(r.Dst.Bits()),
		Table:    unix.RT_TABLE_UNSPEC,
		Protocol: r.Protocol,
		Scope:    unix.RT_SCOPE_UNIVERSE,
		Type:     r.rtType(),
	}
	if t < 256 {
		hdr.Table = uint8(t)
	}
	if typ == unix.RTM_DELROUTE {
		hdr.Scope = unix.RT_SCOPE_NOWHERE
	}
	m := newMessage(typ, flags, structBytes(&hdr, unix.SizeofRtMsg))
	m = m.u32(unix.RTA_TABLE, t)
	m = m.attr(unix.RTA_DST, r.Dst.Masked().Addr().AsSlice())
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

// check validates r for a message of type typ and returns its address family.
func (r *Route) check(typ uint16) (uint8, error) {
	if r.rtType() == unix.RTN_UNREACHABLE {
		switch {
		case !r.Dst.IsValid() || r.Dst.Addr().Is4In6():
			return 0, fmt.Errorf("route %v: destination must be an IPv4 or IPv6 prefix", r.Dst)
		case r.NexthopID != 0 || r.Gateway.IsValid() || r.LinkIndex != 0:
			return 0, fmt.Errorf("route %v: an unreachable route has no nexthop, gateway or device", r.Dst)
		case r.Dst.Addr().Is6():
			return unix.AF_INET6, nil
		}
		return unix.AF_INET, nil
	}
	if r.rtType() != unix.RTN_UNICAST {
		return 0, fmt.Errorf("route %v: type %d is not supported", r.Dst, r.rtType())
	}
	if !r.Dst.IsValid() || !r.Dst.Addr().Is4() {
		return 0, fmt.Errorf("route %v: destination must be an IPv4 prefix", r.Dst)
	}
	if typ == unix.RTM_NEWROUTE && r.NexthopID == 0 && !r.Gateway.IsValid() && r.LinkIndex == 0 {
		return 0, fmt.Errorf("route %v: needs a nexthop id, gateway or device", r.Dst)
	}
	if typ == unix.RTM_NEWROUTE && r.NexthopID != 0 && (r.Gateway.IsValid() || r.LinkIndex != 0) {
		return 0, fmt.Errorf("route %v: nexthop id %d excludes gateway and device", r.Dst, r.NexthopID)
	}
	if r.Gateway.IsValid() && !r.Gateway.Is4() {
		return 0, fmt.Errorf("route %v: gateway %v is not IPv4", r.Dst, r.Gateway)
	}
	return unix.AF_INET, nil
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
	return h.listRoutes(unix.AF_INET, table, protocol, unix.RTN_UNICAST)
}

// ListRoutesOfType returns the routes of type typ (an RTN_* value, e.g.
// TypeUnreachable) of every address family in a table (0: main) installed
// with the given protocol (0: any).
func (h *Handle) ListRoutesOfType(table uint32, protocol, typ uint8) ([]Route, error) {
	return h.listRoutes(unix.AF_UNSPEC, table, protocol, typ)
}

func (h *Handle) listRoutes(family uint8, table uint32, protocol, typ uint8) ([]Route, error) {
	if table == 0 {
		table = unix.RT_TABLE_MAIN
	}
	hdr := unix.RtMsg{Family: family}
	rs, err := h.do(newMessage(unix.RTM_GETROUTE, unix.NLM_F_DUMP, structBytes(&hdr, unix.SizeofRtMsg)))
	if err != nil {
		return nil, fmt.Errorf("routes: list table %d: %w", table, err)
	}
	var out []Route
	for _, r := range rs {
		if r.typ != unix.RTM_NEWROUTE {
			continue
		}
		rt, rtyp, err := parseRoute(r.data)
		if err != nil {
			return nil, err
		}
		if rtyp != typ || !rt.Dst.IsValid() || rt.Table != table || (protocol != 0 && rt.Protocol != protocol) {
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
	family := b[0]
	dstLen := int(b[1])
	r.Table = uint32(b[4])
	r.Protocol = b[5]
	typ := b[7]
	if typ != unix.RTN_UNICAST {
		r.Type = typ
	}
	var dst netip.Addr
	switch family {
	case unix.AF_INET:
		dst = netip.IPv4Unspecified()
	case unix.AF_INET6:
		dst = netip.IPv6Unspecified()
	default:
		return r, typ, nil // not a route of ours
	}
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
	if typ != unix.RTN_UNICAST {
		r.LinkIndex = 0 // IPv6 hangs reject routes on lo: not a nexthop
	}
	if (family == unix.AF_INET) != dst.Is4() {
		return r, typ, nil // an address of the other family: not a route of ours
	}
	p, err := dst.Prefix(dstLen)
	if err != nil {
		return r, 0, fmt.Errorf("routes: bad prefix length %d", dstLen)
	}
	r.Dst = p
	return r, typ, nil
}
