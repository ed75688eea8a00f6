package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cgwd/cgwd/pkg/config"
	"github.com/cgwd/cgwd/pkg/drain"
)

// inOwnNetns runs the calling test again in a child process in a network
// namespace of its own (only lo and what the test creates), so that the
// daemon's sockets, netdevs, routes and BGP connection attempts stay there.
// It reports whether the caller is that child and should run the test.
func inOwnNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv("CGWD_TEST_OWN_NETNS") == t.Name() {
		return true
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (a network namespace, TUN netdevs)")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "CGWD_TEST_OWN_NETNS="+t.Name())
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("in its own network namespace: %v\n%s", err, out)
	}
	return false
}

func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// leakConfig writes a config with two WireGuard tunnels (one checked by
// BFD, one by ICMP probes) to peers on loopback that never answer, and a
// Direct Connect link with BFD on a veth whose other end is silent; edit changes the text.
func leakConfig(t *testing.T, dir string, edit func(string) string) *config.Config {
	t.Helper()
	// Netdev and UAPI socket names are global (/var/run/wireguard): make
	// them this process's own.
	pfx := fmt.Sprintf("lk%d", os.Getpid()%100000)
	for _, k := range []string{"t1", "t2", "t3", "t4"} {
		key := filepath.Join(dir, k+".key")
		if err := os.WriteFile(key, []byte("YEocP0e2o1WT5GlvBvQzVF7EeR6z9aCk8ANZ0GjoO3c=\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	text := `asn: 65000
prefixes: [10.10.0.0/16]
control_socket: ` + dir + `/cgwd.sock
log: {level: debug, format: text}
metrics: {listen: "off"}
bgp: {route_table: 254, route_protocol: 200}
vpn:
  - name: vpn1
    tunnels:
      - name: ` + pfx + `-t1
        kind: wireguard
        outside: {local: 127.0.0.1, remote: 127.0.0.2}
        inside: 169.254.10.0/30
        wireguard: {private_key_file: ` + dir + `/t1.key, peer_public_key: 3xd6QDnVzLTIvwcfWD3W8lCaW2Sv7hCqHn0KRIEmm0Q=, listen_port: 51820, remote_port: 51820}
        bfd: {enabled: true, interval: 300ms, multiplier: 3}
      - name: ` + pfx + `-t2
        kind: wireguard
        outside: {local: 127.0.0.1, remote: 127.0.0.3}
        inside: 169.254.11.0/30
        wireguard: {private_key_file: ` + dir + `/t2.key, peer_public_key: k0JN1n4Pv8nqwtQvs1jB52Yf4UjZc9wRJwx4t5jC5GE=, listen_port: 51821, remote_port: 51821}
        probe: {enabled: true, interval: 100ms}
direct_connect:
  - name: dx1
    interface: lkdx0
    local: 169.254.255.2/30
    peer: 169.254.255.1
    bfd: {interval: 300ms, multiplier: 3}
failover: {hold_down: 1s}
`
	if edit != nil {
		text = edit(text)
	}
	path := filepath.Join(dir, "cgwd.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, text)
	}
	return cfg
}

// The daemon joins every goroutine it starts: after a start, reloads that
// add, re-create and remove tunnels and health checks, retime BFD and
// replace the BGP speaker, and a stop, only gobgp's Serve loops remain (they have no exit;
// see pkg/bgp). A reload once Run has stopped is refused.
func TestDaemonStartReloadStopLeavesNoGoroutine(t *testing.T) {
	if !inOwnNetns(t) {
		return
	}
	ip(t, "link", "set", "lo", "up")
	ip(t, "link", "add", "lkdx0", "type", "veth", "peer", "name", "lkdx1")
	ip(t, "addr", "add", "169.254.255.2/30", "dev", "lkdx0")
	ip(t, "link", "set", "lkdx0", "up")
	ignore := []goleak.Option{
		goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("github.com/osrg/gobgp/v3/pkg/server.(*BgpServer).Serve"),
	}
	dir := t.TempDir()
	cfg := leakConfig(t, dir, nil)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	d.OnReady = func() { close(ready) }
	d.StartDrained = true
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- d.Run(ctx) }()
	select {
	case <-ready:
	case err := <-ran:
		t.Fatalf("Run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("not ready after 30s")
	}
	_ = d.Status()
	// Started drained; undrained, then drained again: the wait for quiet
	// runs through the reloads and stops with the daemon.
	if st := d.Status().Drain; st.State != drain.Drained {
		t.Fatalf("started with StartDrained: %+v", st)
	}
	if st, err := d.Undrain(ctx); err != nil || st.State != drain.Active {
		t.Fatalf("undrain: %+v, %v", st, err)
	}
	if st, err := d.Drain(ctx); err != nil || st.State != drain.Draining || len(st.Paths) != 3 {
		t.Fatalf("drain: %+v, %v", st, err)
	}

	steps := []struct {
		what string
		edit func(string) string
	}{
		{"tunnel 2 re-created, BFD retimed, hold-down changed", func(s string) string {
			s = strings.Replace(s, "inside: 169.254.11.0/30", "inside: 169.254.11.0/30\n        mtu: 1380", 1)
			s = strings.Replace(s, "bfd: {interval: 300ms, multiplier: 3}", "bfd: {interval: 300ms, multiplier: 5}", 1)
			return strings.Replace(s, "hold_down: 1s", "hold_down: 2s", 1)
		}},
		{"a connection added, the speaker replaced (new ASN)", func(s string) string {
			vpn2 := strings.NewReplacer("vpn1", "vpn2", "-t1", "-t3", "-t2", "-t4", "/t1.", "/t3.", "/t2.", "/t4.",
				"169.254.1", "169.254.2", "127.0.0.2", "127.0.0.4", "127.0.0.3", "127.0.0.5", "5182", "5183").
				Replace(s[strings.Index(s, "  - name: vpn1"):strings.Index(s, "direct_connect:")])
			s = strings.Replace(s, "direct_connect:", vpn2+"direct_connect:", 1)
			return strings.Replace(s, "asn: 65000", "asn: 65001", 1)
		}},
		{"back to the start", nil},
	}
	for _, st := range steps {
		if err := d.Reload(leakConfig(t, dir, st.edit)); err != nil {
			t.Fatalf("reload (%s): %v", st.what, err)
		}
	}
	if !d.DrainStatus().Drained() {
		t.Error("a reload put the drained box back in service")
	}
	cancel()
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return 30s after its context ended")
	}
	if err := d.Reload(cfg); !errors.Is(err, ErrStopped) {
		t.Errorf("reload after Run returned: %v, want ErrStopped", err)
	}
	goleak.VerifyNone(t, ignore...)
}
