// Package netdev configures Linux network interfaces over netlink: the inside
// address and link state of a tunnel's TUN netdev.
package netdev

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// ConfigureUp assigns addr (with its prefix length) to the interface named
// name, sets its MTU and brings it up.
func ConfigureUp(name string, addr netip.Prefix, mtu int) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("netdev %s: %w", name, err)
	}
	nla := &netlink.Addr{IPNet: &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), addr.Addr().BitLen())}}
	if err := netlink.AddrReplace(link, nla); err != nil {
		return fmt.Errorf("netdev %s: add address %s: %w", name, addr, err)
	}
	if mtu > 0 {
		if err := netlink.LinkSetMTU(link, mtu); err != nil {
			return fmt.Errorf("netdev %s: set mtu %d: %w", name, mtu, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("netdev %s: set up: %w", name, err)
	}
	return nil
}

// Exists reports whether an interface named name exists.
func Exists(name string) bool {
	_, err := netlink.LinkByName(name)
	return err == nil
}

// SetMTU sets the MTU of the interface named name.
func SetMTU(name string, mtu int) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("netdev %s: %w", name, err)
	}
	if err := netlink.LinkSetMTU(link, mtu); err != nil {
		return fmt.Errorf("netdev %s: set mtu %d: %w", name, mtu, err)
	}
	return nil
}
