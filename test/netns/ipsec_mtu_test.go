package netns

import (
	"encoding/binary"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgwd/cgwd/test/netns/labkit"
)

// TestIPsecMTULab: without mtu in the config, cgw-t1's netdev takes the MTU
// AWS publishes for the negotiated suite with NAT-T (customer gateway best
// practices), a configured mtu stays, and a TCP SYN from the AWS side
// (MSS 1460 from its 1500-byte path) reaches lab-cgw clamped to MTU-40.
func TestIPsecMTULab(t *testing.T) {
	labkit.RequireStrongSwan(t)
	labkit.UpIPsec(t)
	for _, c := range []struct {
		name, proposals, mtuOpt string
		mtu                     int
	}{
		{"aes256gcm16", "", "", 1438},
		{"aes128-sha256", "aes128-sha256-modp2048", "", 1422},
		{"aes256-sha512", "aes256-sha512-modp2048", "", 1406},
		{"configured", "", "keep", 1420}, // the lab's cgwd.yaml gives mtu: 1420
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := ""
			if c.proposals != "" {
				opts = fmt.Sprintf("ike_proposals: [%s];esp_proposals: [%s]", c.proposals, c.proposals)
			}
			labkit.Sh(t, "stop-cgwd")
			labkit.IPsecConfig(t, opts)
			if c.mtuOpt == "keep" {
				labkit.StartCgwd(t)
			} else {
				labkit.StartCgwd(t, labkit.ReplaceN("        mtu: 1420\n", "", -1))
			}
			ipsecTunnelsUp(t, 30*time.Second)
			labkit.Eventually(t, 10*time.Second, fmt.Sprintf("cgw-t1 MTU %d", c.mtu), func() error {
				if got := netdevMTU(t, labkit.CGW, labkit.T1); got != c.mtu {
					return fmt.Errorf("MTU %d", got)
				}
				return nil
			})
			mss := synMSSSeen(t, labkit.CGW, labkit.T1, func() {
				labkit.DialTCP(labkit.AWS, net.JoinHostPort(labkit.T1Local, "17999"), 2*time.Second)
			}, 17999)
			if mss != c.mtu-40 {
				t.Errorf("a SYN from the AWS side reached cgw-t1 with MSS %d, want %d (MTU %d - 40)", mss, c.mtu-40, c.mtu)
			}
			if out, err := labkit.Ping(labkit.CGW, labkit.T1Peer, 2); err != nil {
				t.Errorf("ping over cgw-t1: %v\n%s", err, out)
			}
		})
	}
}

// netdevMTU is the MTU of netdev dev in namespace ns.
func netdevMTU(t *testing.T, ns, dev string) int {
	t.Helper()
	f := strings.Fields(labkit.MustInNS(t, ns, "cat", "/sys/class/net/"+dev+"/mtu"))
	if len(f) != 1 {
		t.Fatalf("mtu of %s: %q", dev, f)
	}
	n, _ := strconv.Atoi(f[0])
	return n
}

// synMSSSeen captures IPv4 on netdev dev in ns while send runs and returns
// the MSS option of the first TCP SYN to port, or 0 if none came within 5 s.
func synMSSSeen(t *testing.T, ns, dev string, send func(), port uint16) int {
	t.Helper()
	var fd int
	if err := labkit.Do(ns, func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		proto := int(htons(syscall.ETH_P_IP))
		if fd, err = syscall.Socket(syscall.AF_PACKET, syscall.SOCK_DGRAM, proto); err != nil {
			return err
		}
		tv := syscall.Timeval{Usec: 200000}
		syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
		return syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: ifi.Index})
	}); err != nil {
		t.Fatalf("capture on %s in %s: %v", dev, ns, err)
	}
	defer syscall.Close(fd)
	go send()
	buf := make([]byte, 2048)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		n, _, err := syscall.Recvfrom(fd, buf, 0)
		if err != nil || n < 40 {
			continue
		}
		p := buf[:n]
		ihl := int(p[0]&0xf) * 4
		if p[0]>>4 != 4 || p[9] != 6 || n < ihl+20 {
			continue
		}
		tcp := p[ihl:]
		if binary.BigEndian.Uint16(tcp[2:]) != port || tcp[13]&0x02 == 0 {
			continue
		}
		for o, end := 20, min(int(tcp[12]>>4)*4, len(tcp)); o+1 < end; {
			switch tcp[o] {
			case 0:
				o = end
			case 1:
				o++
			case 2:
				if o+4 <= end {
					return int(binary.BigEndian.Uint16(tcp[o+2:]))
				}
				o = end
			default:
				o += max(int(tcp[o+1]), 2)
			}
		}
		return 0
	}
	return 0
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
