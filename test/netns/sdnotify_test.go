package netns

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgwd/cgwd/test/netns/labkit"
)

// TestSystemdNotify runs cgwd in the lab the way systemd runs a Type=notify
// service with WatchdogSec=2: NOTIFY_SOCKET and WATCHDOG_USEC set. It asserts
// READY=1 arrives only once the control socket answers with both tunnels,
// WATCHDOG=1 follows while it runs, and STOPPING=1 comes on SIGTERM, followed
// by a clean exit.
func TestSystemdNotify(t *testing.T) {
	labkit.Require(t)
	labkit.Up(t)

	sock := filepath.Join(t.TempDir(), "notify")
	srv, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var logs labkit.Buffer
	recv := func(timeout time.Duration) string {
		t.Helper()
		_ = srv.SetReadDeadline(time.Now().Add(timeout))
		buf := make([]byte, 4096)
		n, err := srv.Read(buf)
		if err != nil {
			t.Fatalf("no notification within %v: %v\ncgwd log:\n%s", timeout, err, logs.String())
		}
		return string(buf[:n])
	}

	cmd := labkit.Command(labkit.CGW, labkit.CgwdBin, "run", "-c", labkit.Config)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=2000000")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{}) // closed when cgwd has exited; then waitErr is set
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				t.Errorf("cgwd (pid %d) survived SIGKILL for 5s", cmd.Process.Pid)
			}
		}
	})

	// The first watchdog ping goes with READY=1 (a run after a SIGUSR2
	// restart inherits the watchdog but not the old run's last ping).
	if got := recv(20 * time.Second); got != "READY=1\nSTATUS=running\nWATCHDOG=1" {
		t.Fatalf("first notification %q, want READY=1 with STATUS=running and WATCHDOG=1\nlog:\n%s", got, logs.String())
	}
	// READY means started: the control socket answers with both tunnels.
	if st := labkit.Status(t); len(st.Tunnels) != 2 {
		t.Fatalf("READY=1 sent but status shows %d tunnels", len(st.Tunnels))
	}
	for i := 0; i < 2; i++ {
		if got := recv(5 * time.Second); got != "WATCHDOG=1" {
			t.Fatalf("notification %q, want WATCHDOG=1", got)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// A watchdog ping may already be on its way; STOPPING must follow at once.
	for {
		got := recv(5 * time.Second)
		if got == "WATCHDOG=1" {
			continue
		}
		if got != "STOPPING=1\nSTATUS=stopping" {
			t.Fatalf("notification %q after SIGTERM, want STOPPING=1", got)
		}
		break
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("cgwd exited with %v\n%s", waitErr, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("cgwd did not exit within 15s of SIGTERM")
	}
	if strings.Contains(logs.String(), "cannot notify systemd") {
		t.Errorf("cgwd logged a notification failure:\n%s", logs.String())
	}
}
