// Package nexthop manages Linux nexthop objects and nexthop groups
// (RTM_NEWNEXTHOP, kernel 5.3+) and the IPv4 routes that point at them
// (RTA_NH_ID), over rtnetlink. Routes that share a nexthop group move
// together when the group is replaced: one netlink message switches every
// prefix, whatever their number.
package nexthop

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Nexthop is a nexthop object: a single nexthop (Gateway and/or LinkIndex,
// or Blackhole) or, when Group is non-empty, a group of other nexthops.
type Nexthop struct {
	// ID identifies the object; it must be non-zero.
	ID uint32
	// Gateway is the next router; invalid (the zero Addr) for a
	// device-only nexthop such as a point-to-point TUN.
	Gateway netip.Addr
	// LinkIndex is the output interface index (see Handle.LinkIndex).
	LinkIndex int
	// OnLink tells the kernel the gateway is reachable on the link even if
	// no address of the link covers it.
	OnLink bool
	// Blackhole discards packets; Gateway and LinkIndex must be unset.
	Blackhole bool
	// Group, when non-empty, makes this a multipath group of the listed
	// nexthops, balanced by weight.
	Group []Member
	// Protocol is the originator recorded with the object (an RTPROT_* value).
	Protocol uint8
}

// Member is one nexthop of a group.
type Member struct {
	ID uint32
	// Weight is the ECMP weight, 1-256; 0 means 1.
	Weight uint16
}

func (n *Nexthop) validate() error {
	if n.ID == 0 {
		return errors.New("id must be non-zero")
	}
	if len(n.Group) > 0 {
		if n.Gateway.IsValid() || n.LinkIndex != 0 || n.Blackhole {
			return errors.New("a group has no gateway, device or blackhole of its own")
		}
		for _, m := range n.Group {
			if m.ID == 0 || m.ID == n.ID {
				return fmt.Errorf("group member id %d is invalid", m.ID)
			}
			if m.Weight > 256 {
				return fmt.Errorf("group member %d: weight %d above 256", m.ID, m.Weight)
			}
		}
		return nil
	}
	if n.Blackhole {
		if n.Gateway.IsValid() || n.LinkIndex != 0 {
			return errors.New("a blackhole has no gateway or device")
		}
		return nil
	}
	if n.LinkIndex <= 0 {
		return errors.New("device (link index) is required")
	}
	return nil
}

func (n *Nexthop) message(flags uint16) (message, error) {
	if err := n.validate(); err != nil {
		return nil, fmt.Errorf("nexthop %d: %w", n.ID, err)
	}
	hdr := unix.Nhmsg{Family: unix.AF_INET, Protocol: n.Protocol}
	if len(n.Group) > 0 {
		hdr.Family = unix.AF_UNSPEC
	} else if n.Gateway.Is6() && !n.Gateway.Is4In6() {
		hdr.Family = unix.AF_INET6
	}
	if n.OnLink {
		hdr.Flags |= unix.RTNH_F_ONLINK
	}
	m := newMessage(unix.RTM_NEWNEXTHOP, flags, structBytes(&hdr, unix.SizeofNhmsg))
	m = m.u32(unix.NHA_ID, n.ID)
	switch {
	case len(n.Group) > 0:
		grp := make([]byte, 0, len(n.Group)*unix.SizeofNexthopGrp)
		for _, g := range n.Group {
			w := g.Weight
			if w == 0 {
				w = 1
			}
			e := unix.NexthopGrp{Id: g.ID, Weight: uint8(w - 1)}
			grp = append(grp, structBytes(&e, unix.SizeofNexthopGrp)...)
		}
		m = m.attr(unix.NHA_GROUP, grp)
		m = m.attr(unix.NHA_GROUP_TYPE, []byte{0, 0}) // NEXTHOP_GRP_TYPE_MPATH
	case n.Blackhole:
		m = m.attr(unix.NHA_BLACKHOLE, nil)
	default:
		m = m.u32(unix.NHA_OIF, uint32(n.LinkIndex))
		if n.Gateway.IsValid() {
			m = m.attr(unix.NHA_GATEWAY, n.Gateway.Unmap().AsSlice())
		}
	}
	return m, nil
}

// structBytes views a fixed-size kernel struct as bytes.
func structBytes[T any](v *T, size int) []byte {
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(v)), size)...)
}

// Replace creates a nexthop or group, or atomically replaces the existing
// one with the same ID: every route using it follows. A group can only be
// replaced by a group, and a single nexthop by a single nexthop.
func (h *Handle) Replace(n Nexthop) error {
	return h.newNexthop(n, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, "replace")
}

func (h *Handle) newNexthop(n Nexthop, flags uint16, op string) error {
	m, err := n.message(flags)
	if err != nil {
		return err
	}
	if _, err := h.do(m); err != nil {
		return fmt.Errorf("nexthop %d: %s: %w", n.ID, op, err)
	}
	return nil
}

// ErrNotFound is returned (wrapped) by Delete for an unknown ID; the error
// also matches syscall.ENOENT.
var ErrNotFound = errors.New("no such nexthop")

// Delete removes a nexthop. Beware: deleting the last member of a group
// deletes the group and every route that uses it; replace the group first.
func (h *Handle) Delete(id uint32) error {
	hdr := unix.Nhmsg{}
	m := newMessage(unix.RTM_DELNEXTHOP, 0, structBytes(&hdr, unix.SizeofNhmsg)).u32(unix.NHA_ID, id)
	if _, err := h.do(m); errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("nexthop %d: delete: %w (%w)", id, ErrNotFound, err)
	} else if err != nil {
		return fmt.Errorf("nexthop %d: delete: %w", id, err)
	}
	return nil
}

// List returns every nexthop object in the namespace.
func (h *Handle) List() ([]Nexthop, error) {
	hdr := unix.Nhmsg{}
	rs, err := h.do(newMessage(unix.RTM_GETNEXTHOP, unix.NLM_F_DUMP, structBytes(&hdr, unix.SizeofNhmsg)))
	if err != nil {
		return nil, fmt.Errorf("nexthop: list: %w", err)
	}
	out := make([]Nexthop, 0, len(rs))
	for _, r := range rs {
		if r.typ != unix.RTM_NEWNEXTHOP {
			continue
		}
		n, err := parseNexthop(r.data)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func parseNexthop(b []byte) (Nexthop, error) {
	var n Nexthop
	if len(b) < unix.SizeofNhmsg {
		return n, errors.New("nexthop: short RTM_NEWNEXTHOP message")
	}
	n.Protocol = b[2]
	n.OnLink = binary.NativeEndian.Uint32(b[4:])&unix.RTNH_F_ONLINK != 0
	for _, a := range attrs(b[unix.SizeofNhmsg:]) {
		switch a.typ {
		case unix.NHA_ID:
			if len(a.data) >= 4 {
				n.ID = binary.NativeEndian.Uint32(a.data)
			}
		case unix.NHA_OIF:
			if len(a.data) >= 4 {
				n.LinkIndex = int(binary.NativeEndian.Uint32(a.data))
			}
		case unix.NHA_GATEWAY:
			if ip, ok := netip.AddrFromSlice(a.data); ok {
				n.Gateway = ip
			}
		case unix.NHA_BLACKHOLE:
			n.Blackhole = true
		case unix.NHA_GROUP:
			for g := a.data; len(g) >= unix.SizeofNexthopGrp; g = g[unix.SizeofNexthopGrp:] {
				n.Group = append(n.Group, Member{ID: binary.NativeEndian.Uint32(g), Weight: uint16(g[4]) + 1})
			}
		}
	}
	if n.ID == 0 {
		return n, errors.New("nexthop: RTM_NEWNEXTHOP without NHA_ID")
	}
	return n, nil
}

// Supported reports whether the kernel of this handle's namespace has
// nexthop objects: it asks for a dump of them.
func (h *Handle) Supported() (bool, error) {
	hdr := unix.Nhmsg{}
	_, err := h.do(newMessage(unix.RTM_GETNEXTHOP, unix.NLM_F_DUMP, structBytes(&hdr, unix.SizeofNhmsg)))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, syscall.EOPNOTSUPP), errors.Is(err, syscall.EINVAL), errors.Is(err, syscall.EAFNOSUPPORT):
		return false, nil
	}
	return false, fmt.Errorf("nexthop: probe: %w", err)
}

// LinkIndex returns the index of the interface named name in this handle's
// namespace.
func (h *Handle) LinkIndex(name string) (int, error) {
	hdr := unix.IfInfomsg{Family: unix.AF_UNSPEC}
	m := newMessage(unix.RTM_GETLINK, 0, structBytes(&hdr, unix.SizeofIfInfomsg)).attr(unix.IFLA_IFNAME, append([]byte(name), 0))
	rs, err := h.do(m)
	if err != nil {
		return 0, fmt.Errorf("interface %s: %w", name, err)
	}
	for _, r := range rs {
		if r.typ == unix.RTM_NEWLINK && len(r.data) >= unix.SizeofIfInfomsg {
			return int(int32(binary.NativeEndian.Uint32(r.data[4:]))), nil
		}
	}
	return 0, fmt.Errorf("interface %s: no answer", name)
}
