package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// listen opens a unixgram socket standing in for systemd.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

func TestNotifyPathSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	srv := listen(t, path)
	t.Setenv("NOTIFY_SOCKET", path)
	n := FromEnv()
	if !n.Enabled() {
		t.Fatal("not enabled with NOTIFY_SOCKET set")
	}
	if err := n.Notify(Ready, "STATUS=2 tunnels up"); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, srv); got != "READY=1\nSTATUS=2 tunnels up" {
		t.Fatalf("got %q", got)
	}
	if err := n.Status("line1\nline2"); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, srv); got != "STATUS=line1 line2" {
		t.Fatalf("got %q", got)
	}
	if err := n.Notify(Stopping); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, srv); got != "STOPPING=1" {
		t.Fatalf("got %q", got)
	}
	if err := n.Notify("READY"); err == nil {
		t.Fatal("accepted a state without '='")
	}
}

func TestNotifyAbstractSocket(t *testing.T) {
	name := fmt.Sprintf("@cgwd-sdnotify-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	srv := listen(t, name)
	if err := New(name).Notify(Ready); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, srv); got != "READY=1" {
		t.Fatalf("got %q", got)
	}
}

func TestDisabled(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := FromEnv()
	if n.Enabled() {
		t.Fatal("enabled without NOTIFY_SOCKET")
	}
	if err := n.Notify(Ready); err != nil {
		t.Fatal(err)
	}
	var nilN *Notifier
	if err := nilN.Notify(Ready); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := n.RunWatchdog(ctx, time.Second, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("RunWatchdog = %v", err)
	}
}

func TestNotifyNoListener(t *testing.T) {
	err := New(filepath.Join(t.TempDir(), "nobody")).Notify(Ready)
	if err == nil || !strings.Contains(err.Error(), "sd_notify") {
		t.Fatalf("err = %v", err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	for _, tc := range []struct {
		usec, pid string
		want      time.Duration
		err       string
	}{
		{"", "", 0, ""},
		{"30000000", "", 30 * time.Second, ""},
		{"30000000", "4242", 30 * time.Second, ""},
		{"30000000", "1", 0, ""}, // another process's watchdog
		{"0", "", 0, "not a positive number"},
		{"abc", "", 0, "not a positive number"},
		{"30000000", "x", 0, "not a process ID"},
	} {
		got, err := watchdogInterval(tc.usec, tc.pid, 4242)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q/%q: err %v, want %q", tc.usec, tc.pid, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q/%q: %v, %v; want %v", tc.usec, tc.pid, got, err, tc.want)
		}
	}
	t.Setenv("WATCHDOG_USEC", "2000000")
	t.Setenv("WATCHDOG_PID", fmt.Sprint(os.Getpid()))
	if d, err := WatchdogInterval(); err != nil || d != 2*time.Second {
		t.Fatalf("WatchdogInterval = %v, %v", d, err)
	}
}

// RunWatchdog pings while alive says so and stops when its context ends.
func TestRunWatchdog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	srv := listen(t, path)
	n := New(path)
	var checks atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- n.RunWatchdog(ctx, 20*time.Millisecond, func() bool { return checks.Add(1)%2 == 0 })
	}()
	for i := 0; i < 3; i++ {
		if got := recv(t, srv); got != Watchdog {
			t.Fatalf("ping %d: %q", i, got)
		}
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("RunWatchdog = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunWatchdog did not stop with its context")
	}
	if c := checks.Load(); c < 6 {
		t.Fatalf("3 pings after %d liveness checks; every other check fails, so at least 6 were needed", c)
	}
}
