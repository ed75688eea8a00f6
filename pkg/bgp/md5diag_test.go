package bgp

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const netstatFixture = `TcpExt: SyncookiesSent TCPMD5NotFound TCPMD5Unexpected TCPMD5Failure TCPAckCompressed
TcpExt: 1 2 3 4 5
IpExt: InNoRoutes
IpExt: 0
`

func TestReadMD5Counters(t *testing.T) {
	c, err := readMD5Counters(strings.NewReader(netstatFixture))
	if err != nil {
		t.Fatal(err)
	}
	if want := (md5Counters{Failure: 4, NotFound: 2, Unexpected: 3}); c != want {
		t.Errorf("got %+v, want %+v", c, want)
	}
	for _, bad := range []string{"", "TcpExt: A B\nTcpExt: 1\n", "TcpExt: A\nTcpExt: 1\n", "TcpExt: TCPMD5Failure TCPMD5NotFound TCPMD5Unexpected\nTcpExt: 1 x 2\n"} {
		if _, err := readMD5Counters(strings.NewReader(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestUnansweredSYNs(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("fixture written for a little-endian host")
	}
	// 169.254.255.2:40000 -> 169.254.255.1:179 SYN-SENT retransmitted;
	// -> 169.254.10.1:179 SYN-SENT not yet; -> 169.254.11.1:179 established.
	tcp := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 02FFFEA9:9C40 01FFFEA9:00B3 02 00000001:00000000 01:00000300 00000002     0        0 1 1 0 1000 0 0 10 -1
   1: 020AFEA9:9C41 010AFEA9:00B3 02 00000001:00000000 01:00000300 00000000     0        0 2 1 0 1000 0 0 10 -1
   2: 020BFEA9:9C42 010BFEA9:00B3 01 00000000:00000000 00:00000000 00000003     0        0 3 1 0 20 4 30 10 -1
   3: 020BFEA9:00B3 010BFEA9:9C43 02 00000000:00000000 00:00000000 00000003     0        0 4 1 0 20 4 30 10 -1
`
	tcp6 := `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0000000000000000FFFF00000200A8C0:9C40 0000000000000000FFFF00000100A8C0:00B3 02 00000001:00000000 01:00000300 00000001     0        0 1 1 0 1000 0 0 10 -1
   1: 000080FE000000000000000002000000:9C41 000080FE000000000000000001000000:00B3 02 00000001:00000000 01:00000300 00000001     0        0 1 1 0 1000 0 0 10 -1
`
	got := map[netip.Addr]bool{}
	if err := unansweredSYNs(strings.NewReader(tcp), got); err != nil {
		t.Fatal(err)
	}
	if err := unansweredSYNs(strings.NewReader(tcp6), got); err != nil {
		t.Fatal(err)
	}
	want := map[netip.Addr]bool{
		netip.MustParseAddr("169.254.255.1"): true, netip.MustParseAddr("192.168.0.1"): true,
		netip.MustParseAddr("fe80::1"): true,
	}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for a := range want {
		if !got[a] {
			t.Errorf("%s missing from %v", a, got)
		}
	}
}

func TestDiagnoseNamesTheSessionsDown(t *testing.T) {
	dx := md5Peer{Name: "dx1", Addr: netip.MustParseAddr("169.254.255.1"), Keyed: true}
	t1 := md5Peer{Name: "cgw-t1", Addr: netip.MustParseAddr("169.254.10.1"), Keyed: true, Up: true}
	t2 := md5Peer{Name: "cgw-t2", Addr: netip.MustParseAddr("169.254.11.1")}
	peers := []md5Peer{dx, t1, t2}
	for _, c := range []struct {
		name       string
		rise       md5Counters
		unanswered map[netip.Addr]bool
		want       map[string]string // peer -> part of the reason
	}{
		{"nothing", md5Counters{}, nil, map[string]string{}},
		{"bad signature", md5Counters{Failure: 2}, nil, map[string]string{"dx1": "bad signature from the peer"}},
		{"peer unkeyed", md5Counters{NotFound: 1}, nil, map[string]string{"dx1": "it has no password"}},
		{"cgwd unkeyed", md5Counters{Unexpected: 1}, nil, map[string]string{"cgw-t2": "cgwd has no password"}},
		{"our SYNs unanswered", md5Counters{}, map[netip.Addr]bool{dx.Addr: true, t2.Addr: true}, map[string]string{"dx1": "no answer to cgwd's signed SYNs"}},
		{"counter before SYNs", md5Counters{Failure: 1}, map[netip.Addr]bool{dx.Addr: true}, map[string]string{"dx1": "TcpExtTCPMD5Failure +1"}},
	} {
		got := diagnose(peers, c.rise, c.unanswered)
		if len(got) != len(c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
			continue
		}
		for p, part := range c.want {
			if !strings.Contains(got[p], part) {
				t.Errorf("%s: %s: %q does not say %q", c.name, p, got[p], part)
			}
		}
	}
	// A peer its path knows gone gets nothing: it answers nothing, whatever its password.
	gone := dx
	gone.Gone = true
	if got := diagnose([]md5Peer{gone, t1, t2}, md5Counters{Failure: 1}, map[netip.Addr]bool{dx.Addr: true}); len(got) != 0 {
		t.Errorf("a gone peer named: %v", got)
	}
	// Two keyed sessions down: the per-namespace counter cannot tell which.
	t1.Up = false
	got := diagnose([]md5Peer{dx, t1}, md5Counters{Failure: 1}, nil)
	if !strings.Contains(got["dx1"], "one or more of dx1, cgw-t1") || got["cgw-t1"] != got["dx1"] {
		t.Errorf("two candidates: %v", got)
	}
}

// TestWrongPasswordNamedInLogAndStatus: a peer opening with another
// password raises the kernel's TcpExtTCPMD5Failure; the speaker logs the
// named line and its status says md5, without the password.
func TestWrongPasswordNamedInLogAndStatus(t *testing.T) {
	const password = "s3cret-for-the-test"
	addr := netip.MustParseAddr("127.0.0.1")
	port := freePort(t, addr)
	logFile, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	logs := func() string { b, _ := os.ReadFile(logFile.Name()); return string(b) }
	s := New(Config{ASN: 65000, RouterID: netip.MustParseAddr("192.0.2.1"), ListenPort: int32(port),
		Logger: slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Peers: []PeerConfig{{Name: "p1", Address: addr, LocalAddress: addr, PeerASN: 65001,
			Keepalive: 10 * time.Second, HoldTime: 30 * time.Second, Password: password}}})
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx, func(RouteEvent) {}, func(string, bool) {}); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); <-s.Done() }()
	// A failed dial from the right address with another key: its SYNs
	// (first and retransmitted) are dropped and counted.
	if c, err := dialMD5(netip.AddrPortFrom(addr, uint16(port)), "another"); err == nil {
		c.Close()
		t.Fatal("a SYN signed with another password was answered")
	}
	var problem string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if ps := s.Peers(ctx); len(ps) == 1 && ps[0].MD5 != "" {
			problem = ps[0].MD5
			break
		}
	}
	if !strings.Contains(problem, "bad signature") {
		t.Fatalf("status md5 = %q, want a bad signature", problem)
	}
	if !strings.Contains(logs(), "bgp: md5 authentication failing") {
		t.Errorf("no named log line in:\n%s", logs())
	}
	if strings.Contains(logs(), password) || strings.Contains(problem, password) {
		t.Error("the password shows in the log or the status")
	}
}
