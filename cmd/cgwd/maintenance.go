package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cgwd/cgwd/pkg/control"
	"github.com/cgwd/cgwd/pkg/drain"
)

// drainPoll is how often `cgwd drain` asks for the wait's progress (a
// variable for tests).
var drainPoll = time.Second

// cmdDrain runs `cgwd drain` and `cgwd undrain` over the control socket.
// drain makes the box unattractive, then (unless -no-wait) follows the
// wait until every path is quiet and prints the per-path figures. Exit 0:
// drained (and quiet) or undrained; 1: the wait timed out with traffic
// still flowing, the box was undrained meanwhile, or the daemon refused.
func cmdDrain(name string, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet(name, stderr)
	socket := socketFlag(fs)
	asJSON := fs.Bool("json", false, "print the final drain status as JSON")
	var noWait *bool
	if name == "drain" {
		noWait = fs.Bool("no-wait", false, "return once the box is unattractive, without waiting for its paths to go quiet")
	}
	sock, code, ok := parseSocketArgs(fs, socket, args, stderr)
	if !ok {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	actx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	act := control.Drain
	if name == "undrain" {
		act = control.Undrain
	}
	st, err := act(actx, sock)
	if err != nil {
		fmt.Fprintf(stderr, "cgwd %s: %v\n", name, err)
		return exitFailure
	}
	if name == "undrain" || *noWait || st.State != drain.Draining {
		return printDrainResult(stdout, stderr, name, st, *asJSON)
	}
	if !*asJSON {
		printDrainStart(stdout, st)
	}
	// The daemon bounds the wait; this bound only covers a daemon gone quiet.
	wctx, cancel := context.WithTimeout(ctx, time.Duration(st.Timeout*float64(time.Second))+time.Minute)
	defer cancel()
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	for st.State == drain.Draining {
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				fmt.Fprintln(stderr, "cgwd drain: interrupted: the box stays drained and the daemon keeps waiting (`cgwd status` shows it)")
			} else {
				fmt.Fprintln(stderr, "cgwd drain: the daemon did not finish the wait in time")
			}
			return exitFailure
		case <-tick.C:
		}
		qctx, qcancel := context.WithTimeout(wctx, 5*time.Second)
		next, err := control.DrainStatus(qctx, sock)
		qcancel()
		if err != nil {
			fmt.Fprintf(stderr, "cgwd drain: %v\n", err)
			return exitFailure
		}
		st = next
		if !*asJSON && st.State == drain.Draining {
			fmt.Fprintln(stdout, progressLine(st, time.Now()))
		}
	}
	return printDrainResult(stdout, stderr, name, st, *asJSON)
}

// printDrainStart says what made the box unattractive and what the wait is.
func printDrainStart(w io.Writer, st *drain.Status) {
	fmt.Fprintln(w, "draining:")
	for _, c := range st.Changes {
		fmt.Fprintf(w, "  %s\n", c)
	}
	fmt.Fprintf(w, "waiting until every path has been quiet for %s (at most %s):\n",
		duration(secs(st.QuietPeriod)), duration(secs(st.Timeout)))
}

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// progressLine is one line of the wait: each path's rates, or how long it
// has been quiet.
func progressLine(st *drain.Status, now time.Time) string {
	parts := []string{duration(now.Sub(st.Since))}
	for _, p := range st.Paths {
		switch {
		case p.Error != "":
			parts = append(parts, p.Name+" gone")
		case !p.QuietSince.IsZero():
			parts = append(parts, fmt.Sprintf("%s quiet %s", p.Name, duration(now.Sub(p.QuietSince))))
		default:
			parts = append(parts, fmt.Sprintf("%s rx %.0f/s tx %.0f/s", p.Name, p.RxPPS, p.TxPPS))
		}
	}
	return "  " + strings.Join(parts, "  ")
}

// printDrainResult prints where the drain ended, with the per-path
// figures, and returns the exit status.
func printDrainResult(stdout, stderr io.Writer, name string, st *drain.Status, asJSON bool) int {
	code := exitOK
	switch {
	case name == "undrain" && st.State != drain.Active, name == "drain" && st.State == drain.Active:
		fmt.Fprintf(stderr, "cgwd %s: the box is %s (changed meanwhile by another command)\n", name, st.State)
		code = exitFailure
	case st.TimedOut:
		code = exitFailure
	}
	if asJSON {
		b, _ := json.MarshalIndent(st, "", "  ")
		fmt.Fprintf(stdout, "%s\n", b)
		return code
	}
	switch {
	case st.State == drain.Active:
		fmt.Fprintln(stdout, "undrained: the box is back in service")
		return code
	case st.State == drain.Draining:
		fmt.Fprintln(stdout, "draining: not waiting; `cgwd status` shows when the paths are quiet")
		for _, c := range st.Changes {
			fmt.Fprintf(stdout, "  %s\n", c)
		}
		return code
	case st.TimedOut:
		fmt.Fprintf(stdout, "drained, but traffic still flows after %s: the box stays drained; paths:\n", duration(st.Done.Sub(st.Since)))
	case len(st.Paths) == 0:
		fmt.Fprintln(stdout, "drained")
		for _, c := range st.Changes {
			fmt.Fprintf(stdout, "  %s\n", c)
		}
		return code
	default:
		fmt.Fprintf(stdout, "drained: every path quiet for %s, done %s after the drain began; paths:\n",
			duration(secs(st.QuietPeriod)), duration(st.Done.Sub(st.Since)))
	}
	printDrainPaths(stdout, st, st.Done)
	return code
}

// printDrainPaths is the table of each path's traffic since the drain began.
func printDrainPaths(w io.Writer, st *drain.Status, now time.Time) {
	tw := newTable(w)
	fmt.Fprintln(tw, "  PATH\tKIND\tRX PACKETS\tTX PACKETS\tRX/S\tTX/S\tQUIET AT\tQUIET FOR")
	for _, p := range st.Paths {
		quiet := "-"
		switch {
		case p.Error != "":
			quiet = "gone"
		case !p.QuietSince.IsZero():
			quiet = duration(now.Sub(p.QuietSince))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%.0f\t%.0f\t%.0f/s\t%s\n", p.Name, p.Kind, p.RxPackets, p.TxPackets, p.RxPPS, p.TxPPS, p.LimitPPS, quiet)
	}
	tw.Flush()
}

// drainLine is `cgwd status`'s line for a drained or draining box; empty
// for an active one.
func drainLine(st drain.Status, now time.Time) string {
	switch {
	case st.State == drain.Draining:
		return fmt.Sprintf("DRAINING for %s: waiting for the paths to go quiet (`cgwd undrain` puts the box back)", duration(now.Sub(st.Since)))
	case st.State == drain.Drained && st.TimedOut:
		return fmt.Sprintf("DRAINED for %s, but traffic still flowed when the wait ended (`cgwd undrain` puts the box back)", duration(now.Sub(st.Since)))
	case st.State == drain.Drained:
		return fmt.Sprintf("DRAINED for %s (`cgwd undrain` puts the box back)", duration(now.Sub(st.Since)))
	}
	return ""
}
