package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/cgwd/cgwd/pkg/daemon"
)

// A restart without outage: SIGUSR2 makes `cgwd run` stop for a restart
// (daemon.PrepareRestart: BGP sessions closed without a NOTIFICATION, so
// peers with graceful restart keep cgwd's routes; routes, nexthop objects
// and forwarding left in the kernel) and then execute the binary it was
// started from again, with the same arguments and environment, in the same
// process: systemd sees one service that reloads (RELOADING=1, then READY=1
// from the new run), and a newly installed binary takes over. SIGTERM and
// SIGINT remain a plain stop: routes withdrawn with a Cease first, kernel
// state removed.

// restartSignal is the signal for a restart without outage.
const restartSignal = syscall.SIGUSR2

// restarter turns restartSignal into a stop for a restart.
type restarter struct {
	exe       string // the binary to run again, resolved at start
	requested atomic.Bool
}

// watchRestart makes restartSignal prepare d for a restart and call stop.
// The returned function stops watching.
func watchRestart(ctx context.Context, d *daemon.Daemon, stop context.CancelFunc, log *slog.Logger) (*restarter, func()) {
	r := &restarter{}
	// Resolved now: once the binary is replaced on disk, /proc/self/exe
	// names the old, deleted one.
	if exe, err := os.Executable(); err == nil {
		r.exe = exe
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, restartSignal)
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-ch:
			log.Info("SIGUSR2: restarting without outage", "binary", r.exe)
			r.requested.Store(true)
			d.PrepareRestart()
			stop()
		case <-ctx.Done():
		}
	}()
	return r, func() {
		signal.Stop(ch)
		stop()
		<-done
	}
}

// restarting reports whether the stop under way is a restart.
func (r *restarter) restarting() bool { return r.requested.Load() }

// exec runs the binary again in this process; it returns only on failure.
func (r *restarter) exec(log *slog.Logger) int {
	if r.exe == "" {
		log.Error("restart: the binary's path is unknown; start cgwd again by hand")
		return exitFailure
	}
	err := syscall.Exec(r.exe, os.Args, os.Environ())
	log.Error("restart: exec failed; start cgwd again", "binary", r.exe, "err", err)
	return exitFailure
}
