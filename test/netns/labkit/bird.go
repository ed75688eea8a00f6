package labkit

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BIRD is a handle on a running BIRD by its control socket.
type BIRD struct{ Ctl string }

// AWSBird is the lab's BIRD in lab-aws: AWS's side of the three BGP sessions.
var AWSBird = BIRD{Ctl: State + "/bird-aws.ctl"}

// AWSBirdConf and AWSBirdLog are its config (written by lab.sh up) and log.
const (
	AWSBirdConf = State + "/bird-aws.conf"
	AWSBirdLog  = State + "/logs/bird-aws.log"
)

// Try runs a birdc command and returns its output.
func (b BIRD) Try(args ...string) (string, error) {
	out, err := exec.Command("birdc", append([]string{"-s", b.Ctl}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("birdc %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// C runs a birdc command and fails the test when it fails.
func (b BIRD) C(t testing.TB, args ...string) string {
	t.Helper()
	out, err := b.Try(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Established reports whether BIRD's protocol is in state Established.
func (b BIRD) Established(t testing.TB, protocol string) bool {
	t.Helper()
	for _, line := range strings.Split(b.C(t, "show", "protocols", protocol), "\n") {
		if strings.HasPrefix(line, protocol+" ") {
			return strings.Contains(line, "Established")
		}
	}
	return false
}

// WaitEstablished waits until BIRD has each of protocols Established
// (up) or none of them (!up).
func (b BIRD) WaitEstablished(t testing.TB, timeout time.Duration, up bool, protocols ...string) {
	t.Helper()
	what := "Established"
	if !up {
		what = "down"
	}
	Eventually(t, timeout, fmt.Sprintf("BIRD sees %s %s", strings.Join(protocols, ", "), what), func() error {
		for _, p := range protocols {
			if b.Established(t, p) != up {
				return fmt.Errorf("%s not %s", p, what)
			}
		}
		return nil
	})
}

// Since maps each of BIRD's BGP protocols to the time its state last
// changed: a session reset shows as a new time.
func (b BIRD) Since(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range strings.Split(b.C(t, "show", "protocols"), "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && strings.HasPrefix(f[0], "aws_") && f[1] == "BGP" {
			out[f[0]] = f[4]
		}
	}
	if len(out) == 0 {
		t.Fatal("no BGP protocols in birdc show protocols")
	}
	return out
}

// SinceSettled is Since once two readings 200 ms apart agree: BIRD may
// restamp a protocol a millisecond after it came up.
func (b BIRD) SinceSettled(t testing.TB) map[string]string {
	t.Helper()
	prev := b.Since(t)
	for i := 0; i < 25; i++ {
		time.Sleep(200 * time.Millisecond)
		cur := b.Since(t)
		if maps.Equal(cur, prev) {
			return cur
		}
		prev = cur
	}
	t.Fatalf("BIRD's protocol times still changing after 5 s: %v", prev)
	return nil
}

// Settled waits until BIRD has every one of its BGP protocols Established
// with its BFD session to each of peers Up, and none of them has changed
// state for quiet, and returns Since then. A tunnel re-created just before
// (a reload) can cost its session one BFD-driven reset a few seconds after
// the tunnel is back; a test that compares session times must start after it.
func (b BIRD) Settled(t testing.TB, timeout, quiet time.Duration, peers ...string) map[string]string {
	t.Helper()
	var prev map[string]string
	var stable time.Time
	Eventually(t, timeout, fmt.Sprintf("BIRD's sessions and BFD to %s steady for %v", strings.Join(peers, ", "), quiet), func() error {
		cur := b.Since(t)
		for p := range cur {
			if !b.Established(t, p) {
				prev = nil
				return fmt.Errorf("%s not Established", p)
			}
		}
		for _, peer := range peers {
			f, err := b.BFDSession(peer)
			if err != nil || len(f) < 3 || f[2] != "Up" {
				prev = nil
				return fmt.Errorf("BFD to %s not Up: %v %v", peer, f, err)
			}
		}
		if prev == nil || !SameSessions(cur, prev) {
			prev, stable = cur, time.Now()
		}
		if d := time.Since(stable); d < quiet {
			return fmt.Errorf("steady for %v only", d.Round(time.Millisecond))
		}
		return nil
	})
	return prev
}

// SameSince reports whether two of BIRD's state-change times ("15:04:05.000")
// are the same stamp. BIRD sometimes restamps a protocol a millisecond after
// it came up, even after SinceSettled saw it stable; a session reset
// restamps it at least a reconnect later, so 50 ms tells the two apart.
func SameSince(a, b string) bool {
	ta, errA := time.Parse("15:04:05.000", a)
	tb, errB := time.Parse("15:04:05.000", b)
	if errA != nil || errB != nil {
		return a == b
	}
	return (ta.Sub(tb)).Abs() <= 50*time.Millisecond
}

// SameSessions reports whether no BIRD session of before was reset in now.
func SameSessions(now, before map[string]string) bool {
	if len(now) != len(before) {
		return false
	}
	for p, t := range before {
		if !SameSince(now[p], t) {
			return false
		}
	}
	return true
}

// StartBIRD runs a BIRD of its own in namespace ns with config conf, its
// control socket and PID file in dir; stop (also run when the test ends)
// stops it by its PID.
func StartBIRD(t testing.TB, ns, dir, conf string) (b BIRD, stop func()) {
	t.Helper()
	path := filepath.Join(dir, "bird.conf")
	b.Ctl = filepath.Join(dir, "bird.ctl")
	pidFile := filepath.Join(dir, "bird.pid")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	MustInNS(t, ns, "bird", "-c", path, "-s", b.Ctl, "-P", pidFile)
	var pid int
	Eventually(t, 5*time.Second, "bird pid file", func() error {
		p, err := os.ReadFile(pidFile)
		if err != nil {
			return err
		}
		_, err = fmt.Sscan(string(p), &pid)
		return err
	})
	var once sync.Once
	stop = func() {
		once.Do(func() {
			syscall.Kill(pid, syscall.SIGTERM)
			Poll(5*time.Second, func() error {
				if Running(pid) {
					return fmt.Errorf("pid %d still running", pid)
				}
				return nil
			}, Every(20*time.Millisecond))
			if Running(pid) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		})
	}
	t.Cleanup(stop)
	return b, stop
}

// BFDSession returns the fields of BIRD's line for its BFD session to
// peer: address, interface, state, since (one or two fields), interval,
// timeout.
func (b BIRD) BFDSession(peer string) ([]string, error) {
	out, err := b.Try("show", "bfd", "sessions")
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && f[0] == peer {
			return f, nil
		}
	}
	return nil, fmt.Errorf("no session to %s in:\n%s", peer, out)
}
