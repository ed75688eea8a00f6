package bgp

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestListenersArePlainTCP fails when net.Listen makes Multipath TCP
// sockets (Go 1.24's default, which go.mod's godebug turns off): the
// kernel cannot key those with TCP_MD5SIG.
func TestListenersArePlainTCP(t *testing.T) {
	if multipathListeners() {
		t.Fatal("net.ListenConfig defaults to Multipath TCP: gobgp's listener cannot be keyed for TCP MD5 (go.mod needs godebug multipathtcp=0)")
	}
}

func TestCheckListenerRefusesMultipathWithPasswords(t *testing.T) {
	defer func(f func() bool) { multipathListeners = f }(multipathListeners)
	multipathListeners = func() bool { return true }
	keyed := Config{ListenPort: 179, Peers: []PeerConfig{{Name: "dx1", Password: "s3cret"}}}
	if err := checkListener(keyed); err == nil {
		t.Error("a Multipath TCP listener with a keyed peer was accepted")
	} else if bytes.Contains([]byte(err.Error()), []byte("s3cret")) {
		t.Errorf("the error shows the password: %v", err)
	}
	for _, c := range []Config{
		{ListenPort: 179, Peers: []PeerConfig{{Name: "dx1"}}},
		{ListenPort: -1, Peers: []PeerConfig{{Name: "dx1", Password: "s3cret"}}},
	} {
		if err := checkListener(c); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

// TestListenerKeyedPerPeer is a session the peer opens with TCP MD5 on,
// over IPv4 and IPv6: the handshake completes only when gobgp keyed its
// listener for the peer's address with the same password (the kernel drops
// a signed SYN to an unkeyed listener, and one with another key), and
// gobgp answers with its OPEN.
func TestListenerKeyedPerPeer(t *testing.T) {
	for _, peer := range []string{"127.0.0.1", "::1"} {
		t.Run(peer, func(t *testing.T) {
			addr := netip.MustParseAddr(peer)
			port := freePort(t, addr)
			s := New(Config{ASN: 65000, RouterID: netip.MustParseAddr("192.0.2.1"), ListenPort: int32(port),
				Peers: []PeerConfig{{Name: "p1", Address: addr, LocalAddress: addr, PeerASN: 65001,
					Keepalive: 10 * time.Second, HoldTime: 30 * time.Second, Password: "s3cret"}}})
			ctx, cancel := context.WithCancel(context.Background())
			if err := s.Start(ctx, func(RouteEvent) {}, func(string, bool) {}); err != nil {
				t.Fatal(err)
			}
			defer func() { cancel(); <-s.Done() }()
			to := netip.AddrPortFrom(addr, uint16(port))

			if c, err := dialMD5(to, "wrong"); err == nil {
				c.Close()
				t.Error("a SYN signed with another password was answered")
			}
			c, err := dialMD5(to, "s3cret")
			if err != nil {
				t.Fatalf("a SYN signed with the peer's password: %v", err)
			}
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			hdr := make([]byte, 19)
			if _, err := io.ReadFull(c, hdr); err != nil {
				t.Fatalf("no OPEN from gobgp on the signed session: %v", err)
			}
			if !bytes.Equal(hdr[:16], bytes.Repeat([]byte{0xff}, 16)) || hdr[18] != 1 {
				t.Fatalf("not a BGP OPEN: % x", hdr)
			}
		})
	}
}

// freePort is a TCP port free on addr now.
func freePort(t *testing.T, addr netip.Addr) int {
	t.Helper()
	l, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Skipf("no %s here: %v", addr, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// dialMD5 connects to to from its own address, signing with key.
func dialMD5(to netip.AddrPort, key string) (net.Conn, error) {
	d := net.Dialer{
		Timeout:   1500 * time.Millisecond,
		LocalAddr: &net.TCPAddr{IP: to.Addr().AsSlice()},
		Control: func(_, _ string, c syscall.RawConn) error {
			sig := unix.TCPMD5Sig{Keylen: uint16(len(key))}
			copy(sig.Key[:], key)
			if to.Addr().Is4() {
				sig.Addr.Family = unix.AF_INET
				a := to.Addr().As4()
				copy(sig.Addr.Data[2:], a[:])
			} else {
				sig.Addr.Family = unix.AF_INET6
				a := to.Addr().As16()
				copy(sig.Addr.Data[6:], a[:])
			}
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptTCPMD5Sig(int(fd), unix.IPPROTO_TCP, unix.TCP_MD5SIG, &sig)
			}); err != nil {
				return err
			}
			return serr
		},
	}
	return d.Dial("tcp", net.JoinHostPort(to.Addr().String(), strconv.Itoa(int(to.Port()))))
}
