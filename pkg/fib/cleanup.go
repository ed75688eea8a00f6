package fib

import (
	"errors"
	"fmt"
	"sort"

	"github.com/cgwd/cgwd/pkg/fib/internal/nexthop"
)

// Removed counts what Cleanup deleted.
type Removed struct {
	Routes     int // unicast routes
	FailClosed int // unreachable (fail-closed) routes
	Nexthops   int // nexthop objects and groups
}

// Cleanup deletes, in the caller's network namespace, every route of
// protocol in table (unicast and fail-closed, IPv4 and IPv6) and every
// nexthop object of protocol: whatever a FIB of that table and protocol
// left behind, for when cgwd is stopped for good. Running it again finds
// nothing.
func Cleanup(table, protocol int) (Removed, error) {
	var rm Removed
	if protocol <= 0 || protocol > 255 {
		return rm, fmt.Errorf("fib: cleanup: protocol %d is outside 1-255", protocol)
	}
	h, err := nexthop.Open()
	if err != nil {
		return rm, fmt.Errorf("fib: cleanup: netlink: %w", err)
	}
	defer h.Close()
	if rm.Routes, err = h.DeleteRoutesByProtocol(uint32(table), uint8(protocol)); err != nil {
		return rm, fmt.Errorf("fib: cleanup: %w", err)
	}
	closed, err := h.ListRoutesOfType(uint32(table), uint8(protocol), nexthop.TypeUnreachable)
	if err != nil {
		return rm, fmt.Errorf("fib: cleanup: %w", err)
	}
	if err := h.DeleteRoutes(closed); err != nil {
		return rm, fmt.Errorf("fib: cleanup: %w", err)
	}
	rm.FailClosed = len(closed)
	if ok, _ := h.Supported(); !ok {
		return rm, nil
	}
	all, err := h.List()
	if err != nil {
		return rm, fmt.Errorf("fib: cleanup: nexthops: %w", err)
	}
	var ours []nexthop.Nexthop
	for _, n := range all {
		if n.Protocol == uint8(protocol) {
			ours = append(ours, n)
		}
	}
	// Groups first: deleting a group's last member would take the group along.
	sort.SliceStable(ours, func(i, j int) bool { return len(ours[i].Group) > 0 && len(ours[j].Group) == 0 })
	for _, n := range ours {
		if err := h.Delete(n.ID); err != nil && !errors.Is(err, nexthop.ErrNotFound) {
			return rm, fmt.Errorf("fib: cleanup: nexthop %d: %w", n.ID, err)
		}
		rm.Nexthops++
	}
	return rm, nil
}
