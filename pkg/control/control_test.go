package control

import (
	"context"
	"encoding/json"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/bgp"
	"github.com/cgwd/cgwd/pkg/failover"
	"github.com/cgwd/cgwd/pkg/tunnel"
)

func TestQueryErrorsSayWhatToDo(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "cgwd.sock")
	_, err := Query(context.Background(), missing)
	if err == nil || !strings.Contains(err.Error(), "nobody is listening") || strings.Contains(err.Error(), "http://") {
		t.Fatalf("missing socket: %v", err)
	}
	// What a non-root user gets from connect(2) on a 0600 root socket.
	denied := &url.Error{Op: "Get", URL: "http://cgwd/v1/status", Err: &net.OpError{Op: "dial", Net: "unix",
		Err: os.NewSyscallError("connect", syscall.EACCES)}}
	msg := dialError("/run/cgwd/cgwd.sock", denied).Error()
	if !strings.Contains(msg, "permission denied: run this as root") || strings.Contains(msg, "http://") ||
		strings.Contains(msg, "is cgwd running") {
		t.Fatalf("permission denied: %s", msg)
	}
}

func TestStatusJSONWritesZeroTimesAsNull(t *testing.T) {
	hs := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	st := Status{
		Version: "test", Started: hs,
		Tunnels: []tunnel.Status{{Name: "t1", LastHandshake: hs}, {Name: "t2"}},
		BGP:     []PeerStatus{{PeerStatus: bgp.PeerStatus{Name: "p1"}, Installed: 3}},
		Paths:   []failover.PathStatus{{Name: "dx1"}},
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	js := string(b)
	if strings.Contains(js, "0001-01-01") {
		t.Errorf("zero time written as a date: %s", js)
	}
	for _, want := range []string{`"last_handshake":null`, `"last_handshake":"2026-12-01T10:00:00Z"`,
		`"since":null`, `"hold_until":null`, `"installed":3`, `"started":"2026-12-01T10:00:00Z"`} {
		if !strings.Contains(js, want) {
			t.Errorf("JSON lacks %s: %s", want, js)
		}
	}
	var back Status
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !back.Tunnels[0].LastHandshake.Equal(hs) || !back.Tunnels[1].LastHandshake.IsZero() || back.BGP[0].Installed != 3 {
		t.Errorf("round trip: %+v", back)
	}
}
