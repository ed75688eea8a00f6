package bgp

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/osrg/gobgp/v3/pkg/server"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// The gRPC API gives whoever reaches it full control of BGP: it shows the MD5
// passwords, adds paths, drops peers and makes cgwd write MRT files. Its
// default home is a unix socket that only root and cgwd's own user can use,
// guarded three times: the directory (cgwd creates it 0700; systemd makes
// /run/cgwd 0750; one others may write to must be sticky), the socket's mode
// (0600) and the peer's credentials,
// checked on every connection (SO_PEERCRED), which also covers the moment
// between gobgp binding the socket and cgwd setting its mode.

const unixScheme = "unix://"

// apiSocketWait bounds the wait for gobgp to bind the API socket.
const apiSocketWait = 5 * time.Second

// apiOptions prepares gobgp's API on addr ("unix:///path" or "host:port") and
// returns the options that make gobgp serve it; sock is the socket's path,
// empty for TCP.
func apiOptions(addr string, log *slog.Logger) (opts []server.ServerOption, sock string, err error) {
	sock, ok := strings.CutPrefix(addr, unixScheme)
	if !ok {
		// gobgp listens in the background and only logs a failure: find a
		// port in use here, where it can stop the start.
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, "", fmt.Errorf("bgp: grpc %s: %w", addr, err)
		}
		ln.Close()
		return []server.ServerOption{server.GrpcListenAddress(addr)}, "", nil
	}
	if err := prepareSocket(sock); err != nil {
		return nil, "", fmt.Errorf("bgp: grpc socket %s: %w", sock, err)
	}
	creds := peerCreds{TransportCredentials: insecure.NewCredentials(), log: log, allowed: rootOrSelf}
	return []server.ServerOption{
		server.GrpcListenAddress(addr),
		server.GrpcOption([]grpc.ServerOption{grpc.Creds(creds)}),
	}, sock, nil
}

// prepareSocket makes sock's directory (0700) if it is missing, refuses one
// that others could plant a file in, and removes a stale socket left by a
// cgwd that did not stop cleanly.
func prepareSocket(sock string) error {
	dir := filepath.Dir(sock)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	// Where others may rename what cgwd made, its chmod could be sent down a
	// symlink; the sticky bit (a container's tmpfs, /tmp) forbids that.
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0 {
		return fmt.Errorf("directory %s is writable by group or others (mode %04o) without the sticky bit", dir, fi.Mode().Perm())
	}
	if uid := owner(fi); uid != 0 && uid != os.Geteuid() {
		return fmt.Errorf("directory %s belongs to uid %d, neither root nor cgwd's user", dir, uid)
	}
	fi, err = os.Lstat(sock)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.Mode().Type() != fs.ModeSocket:
		return errors.New("exists and is not a socket; remove it or choose another bgp.grpc_listen")
	}
	if c, err := net.DialTimeout("unix", sock, time.Second); err == nil {
		c.Close()
		return errors.New("another process serves it (a second cgwd?)")
	}
	return os.Remove(sock)
}

// awaitSocket waits for gobgp to bind sock, then sets its mode to 0600.
func awaitSocket(sock string) error {
	deadline := time.Now().Add(apiSocketWait)
	for {
		fi, err := os.Lstat(sock)
		if err == nil && fi.Mode().Type() == fs.ModeSocket {
			// Only a socket of cgwd's own: in a sticky directory nobody else
			// can then swap it for a symlink before the chmod.
			if uid := owner(fi); uid != os.Geteuid() {
				return fmt.Errorf("bgp: grpc socket %s is not cgwd's (owner uid %d)", sock, uid)
			}
			if err := os.Chmod(sock, 0o600); err != nil {
				return fmt.Errorf("bgp: grpc socket: %w", err)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bgp: grpc socket %s: gobgp did not bind it within %v (see its log)", sock, apiSocketWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// owner is the uid that owns a file, or -1 if the system does not say.
func owner(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// removeSocket removes the API socket at stop (gobgp's listener usually has).
func removeSocket(sock string) {
	if fi, err := os.Lstat(sock); err == nil && fi.Mode().Type() == fs.ModeSocket {
		_ = os.Remove(sock)
	}
}

func rootOrSelf(uid uint32) bool { return uid == 0 || int64(uid) == int64(os.Geteuid()) }

// peerCreds admits a client of the API socket only if allowed accepts the
// uid it runs as, as the kernel reports it (SO_PEERCRED). The connection is
// plain gRPC otherwise, as the stock gobgp CLI speaks it.
type peerCreds struct {
	credentials.TransportCredentials
	log     *slog.Logger
	allowed func(uid uint32) bool
}

func (c peerCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	cred, err := peerCred(conn)
	if err != nil {
		return nil, nil, fmt.Errorf("bgp api: %w", err)
	}
	if !c.allowed(cred.Uid) {
		c.log.Warn("grpc api: refused a client", "uid", cred.Uid, "pid", cred.Pid)
		return nil, nil, fmt.Errorf("bgp api: uid %d is not allowed", cred.Uid)
	}
	return c.TransportCredentials.ServerHandshake(conn)
}

func (c peerCreds) Clone() credentials.TransportCredentials {
	c.TransportCredentials = c.TransportCredentials.Clone()
	return c
}

// peerCred is the credentials of the process at the other end of a unix socket.
func peerCred(conn net.Conn) (*unix.Ucred, error) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return nil, fmt.Errorf("%T is not a unix socket connection", conn)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	if credErr != nil {
		return nil, fmt.Errorf("peer credentials: %w", credErr)
	}
	return cred, nil
}
