package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// udpPacket builds an IPv4 packet carrying one UDP datagram from src to
// dst, with both checksums: the source is whatever the caller claims.
func udpPacket(src, dst netip.AddrPort, payload []byte) []byte {
	n := 20 + 8 + len(payload)
	b := make([]byte, n)
	b[0], b[8], b[9] = 0x45, 64, unix.IPPROTO_UDP
	binary.BigEndian.PutUint16(b[2:], uint16(n))
	binary.BigEndian.PutUint16(b[4:], uint16(time.Now().UnixNano()))
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	binary.BigEndian.PutUint16(b[10:], ^checksum(0, b[:20]))
	u := b[20:]
	binary.BigEndian.PutUint16(u[0:], src.Port())
	binary.BigEndian.PutUint16(u[2:], dst.Port())
	binary.BigEndian.PutUint16(u[4:], uint16(8+len(payload)))
	copy(u[8:], payload)
	pseudo := append(append(s[:], d[:]...), 0, unix.IPPROTO_UDP, u[4], u[5])
	c := ^checksum(uint32(checksum(0, pseudo)), u)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(u[6:], c)
	return b
}

// checksum folds b into the ones' complement sum sum (RFC 1071).
func checksum(sum uint32, b []byte) uint16 {
	for ; len(b) >= 2; b = b[2:] {
		sum += uint32(b[0])<<8 | uint32(b[1])
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return uint16(sum)
}

// rawSender sends hand-built IPv4 packets (IPPROTO_RAW implies IP_HDRINCL),
// so the source address and port are the attacker's choice. It needs
// CAP_NET_RAW: run it as root inside lab-inet.
type rawSender struct{ fd int }

func newRawSender() (*rawSender, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return nil, fmt.Errorf("raw socket (needs root): %w", err)
	}
	return &rawSender{fd: fd}, nil
}

func (r *rawSender) send(pkt []byte) error {
	var dst unix.SockaddrInet4
	copy(dst.Addr[:], pkt[16:20])
	return unix.Sendto(r.fd, pkt, 0, &dst)
}

func (r *rawSender) close() { unix.Close(r.fd) }

// sniff watches interface ifname for UDP datagrams from src to dst for at
// most window and calls fn with each payload (valid only during the call)
// until fn returns true. It sees forwarded traffic, which is what an
// attacker on the path has.
func sniff(ifname string, src, dst netip.AddrPort, window time.Duration, fn func([]byte) (stop bool)) error {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return fmt.Errorf("-iface %s: %w", ifname, err)
	}
	// ETH_P_ALL: a socket for ETH_P_IP alone does not see the packets the
	// router sends out of ifname, only those it receives there.
	proto := htons(unix.ETH_P_ALL)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(proto))
	if err != nil {
		return fmt.Errorf("packet socket (needs root): %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
		return fmt.Errorf("bind to %s: %w", ifname, err)
	}
	tv := unix.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return err
	}
	buf := make([]byte, 65536)
	for end := time.Now().Add(window); time.Now().Before(end); {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("read %s: %w", ifname, err)
		}
		if p, ok := udpPayload(buf[:n], src, dst); ok && fn(p) {
			return nil
		}
	}
	return nil
}

// collect sniffs for window and returns copies of at most limit payloads
// that keep accepts, oldest first.
func collect(ifname string, src, dst netip.AddrPort, window time.Duration, limit int, keep func([]byte) bool) ([][]byte, error) {
	var got [][]byte
	err := sniff(ifname, src, dst, window, func(p []byte) bool {
		if keep(p) {
			got = append(got, append([]byte(nil), p...))
		}
		return len(got) >= limit
	})
	return got, err
}

// udpPayload returns the UDP payload of IPv4 packet b if it goes from src to dst.
func udpPayload(b []byte, src, dst netip.AddrPort) ([]byte, bool) {
	if len(b) < 20 || b[0]>>4 != 4 || b[9] != unix.IPPROTO_UDP {
		return nil, false
	}
	ihl := int(b[0]&0x0f) * 4
	if len(b) < ihl+8 || netip.AddrFrom4([4]byte(b[12:16])) != src.Addr() || netip.AddrFrom4([4]byte(b[16:20])) != dst.Addr() {
		return nil, false
	}
	u := b[ihl:]
	if binary.BigEndian.Uint16(u[0:]) != src.Port() || binary.BigEndian.Uint16(u[2:]) != dst.Port() {
		return nil, false
	}
	l := int(binary.BigEndian.Uint16(u[4:]))
	if l < 8 || l > len(u) {
		return nil, false
	}
	return u[8:l], true
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
