// Package control is cgwd's local control channel: an HTTP/JSON API on a
// unix socket (mode 0600) that `cgwd status` queries and that carries the
// operator's actions (reload, restart a tunnel, reset a BGP session, take a
// path out of service).
package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cgwd/cgwd/pkg/bgp"
	"github.com/cgwd/cgwd/pkg/drain"
	"github.com/cgwd/cgwd/pkg/failover"
	"github.com/cgwd/cgwd/pkg/lifecycle"
	"github.com/cgwd/cgwd/pkg/symmetry"
	"github.com/cgwd/cgwd/pkg/tunnel"
)

// Status is the daemon's state as `cgwd status` shows it.
type Status struct {
	Version string          `json:"version"`
	Started time.Time       `json:"started"`
	VPN     []VPNStatus     `json:"vpn"`
	Tunnels []tunnel.Status `json:"tunnels"`
	BGP     []PeerStatus    `json:"bgp"`
	// Paths are the DX links and tunnels as failover sees them.
	Paths []failover.PathStatus `json:"paths"`
	// RoutesProgrammed and RouteErrors count kernel route operations.
	RoutesProgrammed uint64 `json:"routes_programmed"`
	RouteErrors      uint64 `json:"route_errors"`
	// FailClosedRoutes is how many unreachable routes cgwd keeps for AWS
	// prefixes (fail closed).
	FailClosedRoutes int `json:"fail_closed_routes"`
	// Drain is whether the box is drained for maintenance (cgwd drain).
	Drain drain.Status `json:"drain"`
	// Symmetry is, by path, whether AWS and cgwd send on it (symmetry guard).
	Symmetry map[string]symmetry.State `json:"symmetry,omitempty"`
}

// zeroTime is how encoding/json writes a zero time.Time.
var zeroTime, _ = json.Marshal(time.Time{})

// MarshalJSON writes the status with every zero time ("never", "not
// holding down") as null instead of 0001-01-01T00:00:00Z, in every part
// (tunnels, BGP, paths) at once. A string field whose whole value were that
// exact text would become null too; none carries a date as text. Decoding
// null into a time.Time leaves it zero, so Query round-trips.
func (s Status) MarshalJSON() ([]byte, error) {
	type plain Status // without this method
	b, err := json.Marshal(plain(s))
	if err != nil {
		return nil, err
	}
	return NullTimes(b), nil
}

// NullTimes replaces every zero time in the JSON b with null.
func NullTimes(b []byte) []byte { return bytes.ReplaceAll(b, zeroTime, []byte("null")) }

// PeerStatus is a BGP session and how many of its routes are in the kernel.
type PeerStatus struct {
	bgp.PeerStatus
	Installed int `json:"installed"`
	// BFD is the state of a LAN peer's BFD session; empty without one.
	BFD string `json:"bfd,omitempty"`
}

// VPNStatus names the tunnels of one VPN connection.
type VPNStatus struct {
	Name    string   `json:"name"`
	Tunnels []string `json:"tunnels"`
}

// StatusFunc returns a fresh snapshot of the daemon's state.
type StatusFunc func() Status

// Server serves the control API on a unix socket: Start it (pkg/lifecycle);
// when its context ends it closes and removes the socket.
type Server struct {
	*lifecycle.HTTPServer
	mux *http.ServeMux
}

// Listen creates the socket at path with mode 0600. A stale socket left by a
// crashed daemon is replaced; a live one is an error.
func Listen(path string, status StatusFunc) (*Server, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another cgwd is running", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("control socket %s: remove stale socket: %w", path, err)
	}
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(status())
	})
	s := &Server{HTTPServer: lifecycle.NewHTTPServer(&http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, ln), mux: mux}
	s.OnStop = func() { os.Remove(path) }
	return s, nil
}

// Query fetches the daemon's status over the socket at path.
func Query(ctx context.Context, path string) (*Status, error) {
	var st Status
	if err := call(ctx, path, http.MethodGet, "/v1/status", &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// call makes one request over the socket at path and decodes the JSON
// answer into out; a refusal is the daemon's error.
func call(ctx context.Context, path, method, url string, out any) error {
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, method, "http://cgwd"+url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return dialError(path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound && resp.Header.Get("Content-Type") != "application/json" {
		return fmt.Errorf("control socket %s: cgwd does not know %s %s: is it older than this client?", path, method, url)
	}
	if resp.StatusCode != http.StatusOK {
		return answerError(resp.StatusCode, resp.Body)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("control socket %s: decode answer: %w", path, err)
	}
	return nil
}

// dialError says why the control socket could not be reached, in the
// operator's terms: no HTTP request text, and what to do about it.
func dialError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("control socket %s: permission denied: run this as root (or as the user cgwd runs as)", path)
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("control socket %s: nobody is listening: is cgwd running (and is this its control_socket)?", path)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("control socket %s: cgwd did not answer in time", path)
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return fmt.Errorf("control socket %s: %v", path, op.Err)
	}
	return fmt.Errorf("control socket %s: %w", path, err)
}
