package netdev

import (
	"fmt"

	"github.com/vishvananda/netlink"
)

// Packets returns how many packets the interface named name has received
// and sent, as the kernel counts them.
func Packets(name string) (rx, tx uint64, err error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return 0, 0, fmt.Errorf("netdev %s: %w", name, err)
	}
	s := link.Attrs().Statistics
	if s == nil {
		return 0, 0, fmt.Errorf("netdev %s: the kernel gave no statistics", name)
	}
	return s.RxPackets, s.TxPackets, nil
}
