package labkit

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// A child that exited and was not waited for is a zombie: not running.
func TestRunningSeesZombiesAsGone(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for Running(cmd.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d (exited, not reaped) still counts as running", cmd.Process.Pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !Running(os.Getpid()) {
		t.Fatal("this process does not count as running")
	}
}
