package labkit

import (
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"
)

// KillCgwd kills the lab's cgwd with SIGKILL (a crash: nothing cleaned up)
// and returns once it no longer answers on its control socket.
func KillCgwd(t testing.TB) {
	t.Helper()
	pid := PID(t)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The thread-group leader turns zombie before the other threads have
	// released the files: wait until the control socket stops answering.
	Eventually(t, 10*time.Second, "killed cgwd's sockets closed", func() error {
		c, err := net.Dial("unix", Sock)
		if err != nil {
			return nil
		}
		c.Close()
		return fmt.Errorf("pid %d still answers", pid)
	})
}
