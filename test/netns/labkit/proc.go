package labkit

import (
	"bytes"
	"fmt"
	"os"
	"syscall"
)

// Running reports whether process pid exists and has not exited. A process
// that exited but was not reaped yet (a zombie, state Z) has: lab daemons
// are reparented to PID 1, which on some machines reaps only every second
// or two, and kill(pid, 0) succeeds on a zombie.
func Running(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses and may
	// itself hold ") ".
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}
