// Package sdnotify is a small client of systemd's service notification
// protocol (sd_notify(3)): datagrams such as "READY=1" sent to the unix
// socket named by $NOTIFY_SOCKET, which may be an abstract socket ('@...').
// It also reads the watchdog interval systemd asks for ($WATCHDOG_USEC,
// $WATCHDOG_PID) and runs the keep-alive loop.
//
// Outside systemd (no NOTIFY_SOCKET) every call is a no-op, so a daemon can
// call it unconditionally.
package sdnotify

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Well-known states.
const (
	Ready     = "READY=1"
	Stopping  = "STOPPING=1"
	Reloading = "RELOADING=1"
	Watchdog  = "WATCHDOG=1"
)

// Notifier sends notifications to one socket. The zero Notifier (and a nil
// one) sends nothing.
type Notifier struct {
	addr *net.UnixAddr
}

// FromEnv returns a Notifier for $NOTIFY_SOCKET; it does nothing when the
// variable is unset (not started by systemd with Type=notify).
func FromEnv() *Notifier {
	return New(os.Getenv("NOTIFY_SOCKET"))
}

// New returns a Notifier for the socket at path: a file system path, or an
// abstract socket name starting with '@'. An empty path gives a no-op Notifier.
func New(path string) *Notifier {
	if path == "" {
		return &Notifier{}
	}
	// Go's net package maps a leading '@' to the abstract namespace.
	return &Notifier{addr: &net.UnixAddr{Name: path, Net: "unixgram"}}
}

// Enabled reports whether notifications go anywhere.
func (n *Notifier) Enabled() bool { return n != nil && n.addr != nil }

// Notify sends one datagram holding the given newline-separated assignments,
// e.g. Notify(Ready, "STATUS=running"). It returns nil without sending when
// the Notifier is disabled.
func (n *Notifier) Notify(states ...string) error {
	if !n.Enabled() {
		return nil
	}
	for _, s := range states {
		if !strings.Contains(s, "=") {
			return fmt.Errorf("sd_notify: %q is not VAR=value", s)
		}
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify %s: %w", n.addr.Name, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(strings.Join(states, "\n"))); err != nil {
		return fmt.Errorf("sd_notify %s: %w", n.addr.Name, err)
	}
	return nil
}

// Status is Notify("STATUS=" + s), with newlines in s replaced by spaces.
func (n *Notifier) Status(s string) error {
	return n.Notify("STATUS=" + strings.ReplaceAll(s, "\n", " "))
}

// WatchdogInterval returns the watchdog timeout systemd set for this process
// ($WATCHDOG_USEC, if $WATCHDOG_PID is unset or names this process), or 0
// when the watchdog is off. Malformed values are an error.
func WatchdogInterval() (time.Duration, error) {
	return watchdogInterval(os.Getenv("WATCHDOG_USEC"), os.Getenv("WATCHDOG_PID"), os.Getpid())
}

func watchdogInterval(usec, pid string, self int) (time.Duration, error) {
	if usec == "" {
		return 0, nil
	}
	if pid != "" {
		p, err := strconv.Atoi(pid)
		if err != nil || p <= 0 {
			return 0, fmt.Errorf("WATCHDOG_PID %q is not a process ID", pid)
		}
		if p != self {
			return 0, nil // meant for another process (e.g. our parent)
		}
	}
	u, err := strconv.ParseUint(usec, 10, 63)
	if err != nil || u == 0 {
		return 0, fmt.Errorf("WATCHDOG_USEC %q is not a positive number of microseconds", usec)
	}
	if u > uint64(time.Duration(1<<62)/time.Microsecond) {
		return 0, fmt.Errorf("WATCHDOG_USEC %q is too large", usec)
	}
	return time.Duration(u) * time.Microsecond, nil
}

// RunWatchdog sends WATCHDOG=1 every interval/2 until ctx ends, as systemd
// recommends. Before each ping it calls alive, if not nil, and skips the ping
// when alive returns false, so a wedged daemon is restarted. It returns
// ctx's error, or the first send error.
func (n *Notifier) RunWatchdog(ctx context.Context, interval time.Duration, alive func() bool) error {
	if !n.Enabled() || interval <= 0 {
		<-ctx.Done()
		return ctx.Err()
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if alive != nil && !alive() {
				continue
			}
			if err := n.Notify(Watchdog); err != nil {
				return err
			}
		}
	}
}
