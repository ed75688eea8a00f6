package bgp

import (
	"bufio"
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/config"
	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// startSpeaker starts a speaker with no peers and no BGP listener whose API
// is on grpcListen; stop stops it and waits until it has stopped, and runs
// when the test ends.
func startSpeaker(t *testing.T, grpcListen string) (stop func(), err error) {
	t.Helper()
	s := New(Config{ASN: 65000, RouterID: netip.MustParseAddr("192.0.2.1"), ListenPort: -1, GRPCListen: grpcListen})
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx, func(RouteEvent) {}, func(string, bool) {}); err != nil {
		cancel()
		return nil, err
	}
	stop = func() { cancel(); <-s.Done() }
	t.Cleanup(stop)
	return stop, nil
}

// apiASN asks gobgp's API at target (a grpc target, as the stock CLI dials
// it) for the global ASN.
func apiASN(t *testing.T, target string) uint32 {
	t.Helper()
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if p, ok := strings.CutPrefix(target, unixScheme); ok {
		target = p
		opts = append(opts, grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", addr)
		}))
	}
	conn, err := grpc.Dial(target, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := api.NewGobgpApiClient(conn).GetBgp(ctx, &api.GetBgpRequest{})
	if err != nil {
		t.Fatalf("GetBgp over %s: %v", target, err)
	}
	return r.Global.Asn
}

// tcpListeners counts the listening TCP sockets this process holds.
func tcpListeners(t *testing.T) int {
	t.Helper()
	mine := map[string]bool{}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if l, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && strings.HasPrefix(l, "socket:[") {
			mine[strings.Trim(l, "socket:[]")] = true
		}
	}
	n := 0
	for _, f := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // no IPv6
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Scan() // header
		for sc.Scan() {
			// sl local rem st tx:rx tr:when retrnsmt uid timeout inode
			f := strings.Fields(sc.Text())
			if len(f) > 9 && f[3] == "0A" && mine[f[9]] {
				n++
			}
		}
	}
	return n
}

func TestDefaultAPIIsPrivateUnixSocket(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Parse([]byte("asn: 65000\ncontrol_socket: " + dir + "/cgwd.sock\n"))
	if err != nil {
		t.Fatal(err)
	}
	addr := cfg.BGP.GRPCAddr()
	sock := filepath.Join(dir, "gobgp.sock")
	if addr != unixScheme+sock {
		t.Fatalf("default grpc address %q, want the unix socket %s", addr, sock)
	}
	before := tcpListeners(t)
	stop, err := startSpeaker(t, addr)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v, want a socket with mode 0600", sock, fi.Mode())
	}
	if got := apiASN(t, addr); got != 65000 {
		t.Errorf("API over the socket says ASN %d", got)
	}
	if n := tcpListeners(t) - before; n != 0 {
		t.Errorf("the speaker with the default config listens on %d TCP sockets, want none", n)
	}
	stop()
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("socket still there after stop: %v", err)
	}
}

func TestAPISocketStaleAndForeignFiles(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "gobgp.sock")

	// A socket left behind by a cgwd that did not stop cleanly is replaced.
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	stop, err := startSpeaker(t, unixScheme+sock)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	if got := apiASN(t, unixScheme+sock); got != 65000 {
		t.Errorf("API says ASN %d", got)
	}

	// A socket someone serves is left alone.
	if _, err := startSpeaker(t, unixScheme+sock); err == nil || !strings.Contains(err.Error(), "another process serves it") {
		t.Errorf("second speaker on a live socket: %v", err)
	}
	stop()

	// Anything else at the path is not deleted.
	if err := os.WriteFile(sock, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := startSpeaker(t, unixScheme+sock); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("regular file at the socket path: %v", err)
	}
	if b, _ := os.ReadFile(sock); string(b) != "keep" {
		t.Error("the regular file was touched")
	}

	// A directory others can write to could hold their socket or symlink.
	open := filepath.Join(dir, "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := startSpeaker(t, unixScheme+filepath.Join(open, "gobgp.sock")); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Errorf("socket in a world-writable directory: %v", err)
	}
	// With the sticky bit (a container's tmpfs) others cannot swap cgwd's files.
	if err := os.Chmod(open, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if _, err := startSpeaker(t, unixScheme+filepath.Join(open, "gobgp.sock")); err != nil {
		t.Errorf("socket in a sticky directory: %v", err)
	}

	// A missing directory is made, private.
	sub := filepath.Join(dir, "run", "cgwd")
	if _, err := startSpeaker(t, unixScheme+filepath.Join(sub, "gobgp.sock")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(sub); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("made directory %s: %v %v, want mode 0700", sub, fi.Mode(), err)
	}
}

func TestAPIPeerCredentials(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var logged bytes.Buffer
	me := uint32(os.Geteuid())
	for _, allow := range []bool{true, false} {
		c := peerCreds{
			TransportCredentials: insecure.NewCredentials(),
			log:                  slog.New(slog.NewTextHandler(&logged, nil)),
			allowed:              func(uid uint32) bool { return allow == (uid == me) },
		}
		client, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = c.Clone().ServerHandshake(conn)
		if allow && err != nil {
			t.Errorf("allowed uid %d refused: %v", me, err)
		}
		if !allow && err == nil {
			t.Errorf("uid %d admitted although not allowed", me)
		}
		client.Close()
		conn.Close()
	}
	if !strings.Contains(logged.String(), "refused a client") {
		t.Errorf("refusal not logged: %q", logged.String())
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := peerCreds{TransportCredentials: insecure.NewCredentials(), allowed: rootOrSelf}
	if _, _, err := c.ServerHandshake(a); err == nil {
		t.Error("a connection without peer credentials admitted")
	}
	if !rootOrSelf(0) || !rootOrSelf(me) || rootOrSelf(65534) && me != 65534 {
		t.Error("rootOrSelf admits the wrong users")
	}
}

func TestAPIOnTCPOnlyWhenAsked(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	// A port in use fails the start instead of leaving the API silently absent.
	if _, err := startSpeaker(t, addr); err == nil {
		t.Error("API on a port in use started")
	}
	ln.Close()
	if _, err := startSpeaker(t, addr); err != nil {
		t.Fatal(err)
	}
	if got := apiASN(t, addr); got != 65000 {
		t.Errorf("API over TCP says ASN %d", got)
	}
}
