package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/cgwd/cgwd/pkg/daemon"
	"github.com/cgwd/cgwd/pkg/sdnotify"
)

// notifySystemd wires the daemon to systemd's notification socket, when
// there is one: READY=1 once the daemon has started everything, WATCHDOG=1
// at half the interval systemd asks for while the daemon still answers a
// status query, and STOPPING=1 (RELOADING=1 for a restart) as soon as ctx ends. The returned function
// stops the watchdog and must be called after d.Run returns.
func notifySystemd(ctx context.Context, d *daemon.Daemon, restarting func() bool, log *slog.Logger) (stop func()) {
	n := sdnotify.FromEnv()
	if !n.Enabled() {
		return func() {}
	}
	interval, err := sdnotify.WatchdogInterval()
	if err != nil {
		log.Warn("systemd watchdog disabled", "err", err)
	}
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// A run after a SIGUSR2 restart inherits the watchdog (same process,
	// same environment) but not the old run's last ping, which may be
	// interval/2 old already: the first ping goes with READY=1, and one with
	// RELOADING=1, so that the watchdog only times the restart itself.
	ready := []string{sdnotify.Ready, "STATUS=running"}
	if interval > 0 {
		ready = append(ready, sdnotify.Watchdog)
	}
	d.OnReady = func() {
		if err := n.Notify(ready...); err != nil {
			log.Warn("cannot notify systemd", "err", err)
		}
		if interval <= 0 {
			return
		}
		log.Debug("systemd watchdog on", "interval", interval)
		wg.Add(1)
		go func() {
			defer wg.Done()
			alive := func() bool { _ = d.Status(); return true } // blocks if the daemon is wedged
			if err := n.RunWatchdog(wctx, interval, alive); err != nil && !errors.Is(err, context.Canceled) {
				log.Warn("systemd watchdog stopped", "err", err)
			}
		}()
	}
	stopNotify := context.AfterFunc(ctx, func() {
		state, status := sdnotify.Stopping, "STATUS=stopping"
		if restarting() { // the same process runs cgwd again, which says READY=1
			state, status = sdnotify.Reloading, "STATUS=restarting"
		}
		states := []string{state, status}
		if interval > 0 && restarting() {
			states = append(states, sdnotify.Watchdog)
		}
		if err := n.Notify(states...); err != nil {
			log.Warn("cannot notify systemd", "err", err)
		}
	})
	return func() {
		stopNotify()
		cancel()
		wg.Wait()
	}
}
