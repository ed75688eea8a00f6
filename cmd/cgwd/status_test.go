package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/control"
	"github.com/cgwd/cgwd/pkg/tunnel"
)

// serveStatus answers `cgwd status` on a socket in a temporary directory
// with a fixed status; it returns the socket's path.
func serveStatus(t *testing.T, st control.Status) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "cgwd.sock")
	srv, err := control.Listen(sock, func() control.Status { return st })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return sock
}

func ipsecStatus() control.Status {
	return control.Status{Version: "test", Started: time.Now(), Tunnels: []tunnel.Status{{
		Name: "t1", Kind: "ipsec", State: tunnel.StateUp,
		IPsec: &tunnel.IPsecStatus{IKEState: "established",
			ESPDropped: map[string]uint64{"replay": 2, "auth": 5, "ts": 0},
			IKEDropped: map[string]uint64{"cookie": 0}},
	}}}
}

// TestStatusShowsESPDropsAsPairs: ESP drops are "reason=count", sorted and
// non-zero only, not Go's map printing.
func TestStatusShowsESPDropsAsPairs(t *testing.T) {
	sock := serveStatus(t, ipsecStatus())
	code, out, errOut := runCLI("status", "-s", sock)
	if code != exitOK {
		t.Fatalf("status: exit %d: %s", code, errOut)
	}
	if strings.Contains(out, "map[") || strings.Contains(out, "ts=") || strings.Contains(out, "IKE dropped") {
		t.Errorf("status prints a Go map or zero counters:\n%s", out)
	}
	if !strings.Contains(out, "t1  ESP dropped: auth=5 replay=2\n") {
		t.Errorf("status lacks the sorted ESP drops:\n%s", out)
	}
}

// TestStatusJSONNeverHandshakeIsNull: a tunnel that never completed a
// handshake says null, not 0001-01-01T00:00:00Z.
func TestStatusJSONNeverHandshakeIsNull(t *testing.T) {
	sock := serveStatus(t, ipsecStatus())
	code, out, errOut := runCLI("status", "-s", sock, "--json")
	if code != exitOK {
		t.Fatalf("status --json: exit %d: %s", code, errOut)
	}
	if strings.Contains(out, "0001-01-01") || !strings.Contains(out, `"last_handshake": null`) {
		t.Errorf("status --json:\n%s", out)
	}
}
