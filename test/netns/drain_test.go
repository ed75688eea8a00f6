package netns

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/drain"
	"github.com/cgwd/cgwd/test/netns/labkit"
)

// AS path lengths BIRD sees from cgwd per session: the ASN itself plus the
// prepends (DX none, tunnel 1 one, tunnel 2 two), and drained with
// drain.prepend more on every session.
func asPaths(more int) map[string]int {
	return map[string]int{labkit.BirdDX: 1 + more, labkit.BirdT1: 2 + more, labkit.BirdT2: 3 + more}
}

// drainCLI runs `cgwd ARGS -s SOCK` and returns its output and exit error.
func drainCLI(sock string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, labkit.CgwdBin, append(args, "-s", sock)...).CombinedOutput()
	return string(out), err
}

// cliRun is a cgwd command running in the background.
type cliRun struct {
	out  labkit.Buffer
	err  error
	done chan struct{}
}

// startCLI starts `cgwd ARGS -s SOCK`; the test's end kills it if it still runs.
func startCLI(t *testing.T, sock string, args ...string) *cliRun {
	t.Helper()
	r := &cliRun{done: make(chan struct{})}
	cmd := exec.Command(labkit.CgwdBin, append(args, "-s", sock)...)
	cmd.Stdout, cmd.Stderr = &r.out, &r.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.err = cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			_ = cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

// wait waits at most timeout for the command to end and fails the test
// unless it exited 0; it returns the command's output.
func (r *cliRun) wait(t *testing.T, timeout time.Duration) string {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(timeout):
		t.Fatalf("cgwd still running after %v:\n%s", timeout, r.out.String())
	}
	if r.err != nil {
		t.Fatalf("cgwd: %v\n%s", r.err, r.out.String())
	}
	return r.out.String()
}

// drainBegan waits until the cgwd at sock is draining or drained and returns when that began.
func drainBegan(t *testing.T, sock string) time.Time {
	t.Helper()
	var began time.Time
	labkit.Eventually(t, 5*time.Second, "drain under way", func() error {
		st, err := labkit.QueryStatus(sock)
		if err != nil {
			return err
		}
		if began = st.Drain.Since; began.IsZero() {
			return fmt.Errorf("not drained")
		}
		return nil
	})
	return began
}

// testDrain runs `cgwd drain` and `cgwd undrain` in the one-box lab; cgwd
// must be running with every session up. With one box, traffic has no
// other box to move to: the drain makes every AS path longer without
// resetting a session, waits while a stream still crosses the box, is done
// once the stream has stopped and the paths have been quiet for the quiet
// period, survives a reload, and undrain puts the AS paths back.
func testDrain(t *testing.T) {
	t.Run("DrainPrependsWaitsForQuietUndrainRestores", func(t *testing.T) {
		labkit.LogOnFailure(t)
		bird := labkit.AWSBird
		// The reload tests before this one re-create cgw-t2: start once
		// its BFD session is back Up and every session has been steady.
		bird.Settled(t, 45*time.Second, 3*time.Second, labkit.DXLocal, labkit.T1Local, labkit.T2Local)
		restore := labkit.EditConfig(t, labkit.AppendUnless("\ndrain:", "drain: {quiet_period: 2s, timeout: 30s}\n"))
		defer func() {
			restore()
			labkit.Reload(t, "reload: applied")
			if _, err := drainCLI(labkit.Sock, "undrain"); err != nil {
				t.Errorf("undrain at the end: %v", err)
			}
		}()
		labkit.Reload(t, "reload: applied")
		waitASPaths(t, asPaths(0))
		since := bird.SinceSettled(t)

		// 1,000 packets/s each way for 8 s (udpgap); the drain 1 s in.
		var run *cliRun
		var st drain.Status
		var began, checked time.Time
		streamStart := time.Now()
		up, down := labkit.TwoWay(t, 1000, 8*time.Second, time.Second, func() {
			run = startCLI(t, labkit.Sock, "drain")
			waitASPaths(t, asPaths(5))
			// Longer than the quiet period plus a sample after the drain
			// began, the stream still flows: the drain must still wait.
			began = drainBegan(t, labkit.Sock)
			time.Sleep(time.Until(began.Add(3500 * time.Millisecond)))
			st, checked = labkit.Status(t).Drain, time.Now()
		})
		if checked.Before(streamStart.Add(7 * time.Second)) {
			if st.State != drain.Draining {
				t.Errorf("drain %s %v after it began, while 1,000 packets/s cross dx1: %+v", st.State, checked.Sub(began).Round(time.Millisecond), st)
			}
		} else {
			t.Log("the stream ended before the check (loaded machine): the wait while traffic flows is not checked")
		}
		t.Logf("udpgap during the drain (one box: the traffic has nowhere else to go): on-prem -> VPC %v; VPC -> on-prem %v", up, down)
		text := run.wait(t, 15*time.Second)
		t.Logf("cgwd drain:\n%s", text)
		for _, want := range []string{"AWS: 5 more prepends on every session (dx1, cgw-t1, cgw-t2)", "drained: every path quiet for 2s", "  dx1 ", "  cgw-t1 ", "  cgw-t2 "} {
			if !strings.Contains(text, want) {
				t.Errorf("cgwd drain's output lacks %q", want)
			}
		}
		st = labkit.Status(t).Drain
		if st.State != drain.Drained || st.TimedOut || len(st.Paths) != 3 {
			t.Fatalf("drain status: %+v", st)
		}
		for _, p := range st.Paths {
			if p.QuietSince.IsZero() || st.Done.Sub(p.QuietSince) < 2*time.Second {
				t.Errorf("%s quiet since %v, drain done at %v", p.Name, p.QuietSince, st.Done)
			}
			// dx1 carried the stream, both ways, during the drain.
			if p.Name == labkit.DXPath && (p.RxPackets < 1000 || p.TxPackets < 1000) {
				t.Errorf("dx1 carried %d/%d packets during the drain, want the stream's", p.RxPackets, p.TxPackets)
			}
		}
		if !labkit.SameSessions(bird.Since(t), since) {
			t.Errorf("the drain reset a BGP session: BIRD's protocol times %v, before %v", bird.Since(t), since)
		}
		m := labkit.Scrape(t)
		for name, want := range map[string]float64{"cgwd_drained": 1, "cgwd_aws_paths_usable": 3} {
			if v, ok := m.Value(name + " "); !ok || v != want {
				t.Errorf("%s = %v (found %v), want %v", name, v, ok, want)
			}
		}
		if v, ok := m.Value("cgwd_drained_since_timestamp_seconds "); !ok || int64(v) != began.Unix() {
			t.Errorf("cgwd_drained_since_timestamp_seconds = %v, want %d", v, began.Unix())
		}
		if s, err := drainCLI(labkit.Sock, "status"); err != nil || !strings.Contains(s, "\nDRAINED for ") {
			t.Errorf("cgwd status of a drained box: %v\n%s", err, s)
		}

		// A reload keeps the box drained, with the reloaded prepend count.
		labkit.EditConfig(t, labkit.Replace("drain: {", "drain: {prepend: 3, "))
		labkit.Reload(t, "reload: applied")
		waitASPaths(t, asPaths(3))
		if st := labkit.Status(t).Drain; st.State != drain.Drained {
			t.Errorf("after a reload: %+v", st)
		}

		s, err := drainCLI(labkit.Sock, "undrain")
		if err != nil || s != "undrained: the box is back in service\n" {
			t.Fatalf("cgwd undrain: %v\n%s", err, s)
		}
		waitASPaths(t, asPaths(0))
		if st := labkit.Status(t).Drain; st.State != drain.Active {
			t.Errorf("after undrain: %+v", st)
		}
		if v, ok := labkit.Scrape(t).Value("cgwd_drained "); !ok || v != 0 {
			t.Errorf("cgwd_drained after undrain = %v (found %v)", v, ok)
		}
		if !labkit.SameSessions(bird.Since(t), since) {
			t.Errorf("drain, reload or undrain reset a BGP session: BIRD's protocol times %v, before %v", bird.Since(t), since)
		}
	})
}
