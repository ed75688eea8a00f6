package control

import (
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
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
