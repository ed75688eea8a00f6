package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/control"
	"github.com/cgwd/cgwd/pkg/drain"
)

// cliDrain is a daemon whose drain goes quiet after a few status polls,
// or times out.
type cliDrain struct {
	mu       sync.Mutex
	st       drain.Status
	polls    int // polls before the wait ends
	timeout  bool
	drains   int
	undrains int
}

var drainT0 = time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC)

func (a *cliDrain) Drain(context.Context) (drain.Status, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.drains++
	a.st = drain.Status{State: drain.Draining, Since: drainT0, QuietPeriod: 10, Timeout: 300,
		Changes: []string{"AWS: 5 more prepends on every session (dx1, cgw-t1)"},
		Paths:   []drain.PathStatus{{Name: "dx1", Kind: "dx", RxPPS: 1000, TxPPS: 990, LimitPPS: 15}}}
	return a.st, nil
}

func (a *cliDrain) Undrain(context.Context) (drain.Status, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.undrains++
	a.st = drain.Status{State: drain.Active}
	return a.st, nil
}

func (a *cliDrain) DrainStatus() drain.Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.st.State == drain.Draining {
		if a.polls--; a.polls < 0 {
			p := &a.st.Paths[0]
			a.st.State, a.st.Done, a.st.TimedOut = drain.Drained, drainT0.Add(14*time.Second), a.timeout
			p.RxPackets, p.TxPackets, p.RxPPS, p.TxPPS = 4000, 3900, 3, 2
			p.QuietSince = drainT0.Add(4 * time.Second)
			if a.timeout {
				p.RxPPS, p.QuietSince = 900, time.Time{}
			}
		}
	}
	return a.st
}

func serveDrain(t *testing.T, a *cliDrain) string {
	t.Helper()
	return listenControl(t, func() control.Status { return control.Status{Drain: a.DrainStatus()} },
		func(srv *control.Server) { srv.SetDrainActions(a) })
}

func TestDrainWaitsAndReportsPerPath(t *testing.T) {
	defer func(p time.Duration) { drainPoll = p }(drainPoll)
	drainPoll = time.Millisecond
	a := &cliDrain{polls: 2}
	sock := serveDrain(t, a)
	code, out, errOut := runCLI("drain", "-s", sock)
	for _, want := range []string{
		"draining:\n  AWS: 5 more prepends on every session (dx1, cgw-t1)\n",
		"waiting until every path has been quiet for 10s (at most 5m00s):\n",
		"dx1 rx 1000/s tx 990/s",
		"drained: every path quiet for 10s, done 14s after the drain began; paths:\n",
		"  PATH  KIND  RX PACKETS  TX PACKETS  RX/S  TX/S  QUIET AT  QUIET FOR\n  dx1   dx    4000        3900        3     2     15/s      10s\n",
	} {
		if code != exitOK || !strings.Contains(out, want) {
			t.Errorf("drain: exit %d, lacks %q:\n%s%s", code, want, out, errOut)
		}
	}
	code, out, _ = runCLI("undrain", "-s", sock)
	if code != exitOK || out != "undrained: the box is back in service\n" || a.undrains != 1 {
		t.Errorf("undrain: exit %d\n%s", code, out)
	}
}

func TestDrainTimeoutNoWaitAndJSON(t *testing.T) {
	defer func(p time.Duration) { drainPoll = p }(drainPoll)
	drainPoll = time.Millisecond
	a := &cliDrain{timeout: true}
	sock := serveDrain(t, a)
	code, out, _ := runCLI("drain", "-s", sock)
	if code != exitFailure || !strings.Contains(out, "drained, but traffic still flows after 14s: the box stays drained; paths:\n") ||
		!strings.Contains(out, "  dx1   dx    4000        3900        900   2     15/s      -\n") {
		t.Errorf("timed-out drain: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI("drain", "-s", sock, "-no-wait")
	if code != exitOK || !strings.HasPrefix(out, "draining: not waiting; `cgwd status` shows when the paths are quiet\n") {
		t.Errorf("drain -no-wait: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI("drain", "-s", sock, "-json")
	if code != exitFailure || !strings.Contains(out, `"state": "drained"`) || !strings.Contains(out, `"timed_out": true`) || strings.Contains(out, "waiting") {
		t.Errorf("drain -json: exit %d\n%s", code, out)
	}
	if code, _, errOut := runCLI("undrain", "-s", sock, "-no-wait"); code != exitUsage || !strings.Contains(errOut, "-no-wait") {
		t.Errorf("undrain -no-wait: exit %d\n%s", code, errOut)
	}
}

// cgwd status says a box is drained, above everything else.
func TestStatusShowsDrained(t *testing.T) {
	now := drainT0.Add(90 * time.Second)
	for _, c := range []struct {
		st   drain.Status
		want string
	}{
		{drain.Status{State: drain.Active}, ""},
		{drain.Status{State: drain.Draining, Since: drainT0}, "DRAINING for 1m30s: waiting for the paths to go quiet (`cgwd undrain` puts the box back)"},
		{drain.Status{State: drain.Drained, Since: drainT0}, "DRAINED for 1m30s (`cgwd undrain` puts the box back)"},
		{drain.Status{State: drain.Drained, Since: drainT0, TimedOut: true}, "DRAINED for 1m30s, but traffic still flowed when the wait ended (`cgwd undrain` puts the box back)"},
	} {
		if got := drainLine(c.st, now); got != c.want {
			t.Errorf("%+v: %q, want %q", c.st, got, c.want)
		}
	}
	sock := serveDrain(t, &cliDrain{st: drain.Status{State: drain.Drained, Since: time.Now()}})
	code, out, _ := runCLI("status", "-s", sock)
	if code != exitOK || !strings.Contains(out, "\nDRAINED for 0s (`cgwd undrain` puts the box back)\n\n") {
		t.Errorf("status of a drained box: exit %d\n%s", code, out)
	}
}
