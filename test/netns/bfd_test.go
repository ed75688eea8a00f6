package netns

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/bfd"
)

// The BFD interop test builds its own two namespaces joined by a veth pair
// (named dx0 on both sides, like the lab's Direct Connect link): cgwd's BFD
// in bfdOurNS at 169.254.255.2, BIRD 2 in bfdBirdNS at 169.254.255.1.
const (
	bfdOurNS  = "cgwdtest-bfd-cgw"
	bfdBirdNS = "cgwdtest-bfd-bird"
)

func requireBFDTools(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("BFD interop test needs root (network namespaces)")
	}
	for _, tool := range []string{"ip", "nft", "bird", "birdc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (make deps installs it)", tool)
		}
	}
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// bfdPair creates the two namespaces and the veth pair; cleanup deletes them.
func bfdPair(t *testing.T) {
	t.Helper()
	for _, ns := range []string{bfdOurNS, bfdBirdNS} {
		exec.Command("ip", "netns", "del", ns).Run() // leftovers of an aborted run
		run(t, "ip", "netns", "add", ns)
	}
	t.Cleanup(func() {
		for _, ns := range []string{bfdOurNS, bfdBirdNS} {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	run(t, "ip", "-n", bfdOurNS, "link", "add", "dx0", "type", "veth", "peer", "name", "dx0", "netns", bfdBirdNS)
	for ns, addr := range map[string]string{bfdOurNS: "169.254.255.2/30", bfdBirdNS: "169.254.255.1/30"} {
		run(t, "ip", "-n", ns, "addr", "add", addr, "dev", "dx0")
		run(t, "ip", "-n", ns, "link", "set", "dx0", "up")
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
}

// startBird runs BIRD in bfdBirdNS with a static route that requests a BFD
// session to us; it returns the control socket path and a stop function.
func startBird(t *testing.T, dir string) (ctl string, stop func()) {
	t.Helper()
	conf := filepath.Join(dir, "bird.conf")
	ctl = filepath.Join(dir, "bird.ctl")
	pidFile := filepath.Join(dir, "bird.pid")
	cfg := fmt.Sprintf(`router id 169.254.255.1;
log "%s" all;
timeformat log "%%F %%T.%%3f";
debug protocols { states };
protocol device { }
protocol static { ipv4; route 10.99.0.0/24 via 169.254.255.2 bfd; }
protocol bfd {
  interface "dx0" { min rx interval 50 ms; min tx interval 50 ms; multiplier 3; };
}
`, filepath.Join(dir, "bird.log"))
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, "ip", "netns", "exec", bfdBirdNS, "bird", "-c", conf, "-s", ctl, "-P", pidFile)
	var pid int
	eventually(t, 5*time.Second, "bird pid file", func() error {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return err
		}
		_, err = fmt.Sscan(string(b), &pid)
		return err
	})
	var once sync.Once
	stop = func() {
		once.Do(func() {
			syscall.Kill(pid, syscall.SIGTERM)
			deadline := time.Now().Add(5 * time.Second)
			for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if syscall.Kill(pid, 0) == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		})
	}
	t.Cleanup(stop)
	return ctl, stop
}

// birdBFDSession returns the fields of BIRD's line for its session to
// 169.254.255.2: address, interface, state, since (one or two fields),
// interval, timeout.
func birdBFDSession(ctl string) ([]string, error) {
	out, err := exec.Command("birdc", "-s", ctl, "show", "bfd", "sessions").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("birdc: %v: %s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && f[0] == "169.254.255.2" {
			return f, nil
		}
	}
	return nil, fmt.Errorf("no session to 169.254.255.2 in:\n%s", out)
}

// birdBFDState returns BIRD's state of its session to 169.254.255.2.
func birdBFDState(ctl string) (string, error) {
	f, err := birdBFDSession(ctl)
	if err != nil {
		return "", err
	}
	return f[2], nil
}

// startInNS starts s with its sockets created inside namespace ns.
func startInNS(ctx context.Context, s *bfd.Session, ns string) error {
	return inNetns(ns, func() error { return s.Start(ctx) })
}

func TestBFDInteropWithBird(t *testing.T) {
	requireBFDTools(t)
	bfdPair(t)
	ctl, stopBird := startBird(t, t.TempDir())

	changes := make(chan bfd.Change, 64)
	s, err := bfd.New(bfd.Config{
		Interface: "dx0",
		Local:     netip.MustParseAddr("169.254.255.2"),
		Peer:      netip.MustParseAddr("169.254.255.1"),
		Timers:    bfd.Timers{DesiredMinTx: 50 * time.Millisecond, RequiredMinRx: 50 * time.Millisecond, DetectMult: 3},
		OnChange:  func(c bfd.Change) { changes <- c },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() {
		cancel()
		<-s.Done()
	}()
	if err := startInNS(ctx, s, bfdOurNS); err != nil {
		t.Fatal(err)
	}

	ourState := func(want bfd.State) func() error {
		return func() error {
			if st := s.Status(); st.State != want {
				return fmt.Errorf("our state %s (diag %s)", st.State, st.Diag)
			}
			return nil
		}
	}
	birdState := func(want string, is bool) func() error {
		return func() error {
			st, err := birdBFDState(ctl)
			if err != nil {
				return err
			}
			if (st == want) != is {
				return fmt.Errorf("BIRD state %s", st)
			}
			return nil
		}
	}
	// drain empties the change channel.
	drain := func() {
		for len(changes) > 0 {
			<-changes
		}
	}
	// downChange waits for the change to Down: the callback runs just after
	// Status is updated.
	downChange := func() bfd.Change {
		deadline := time.After(5 * time.Second)
		for {
			select {
			case c := <-changes:
				if c.To == bfd.StateDown {
					return c
				}
			case <-deadline:
				t.Fatal("no change to Down reported")
			}
		}
	}

	t.Run("ComesUpOnBothSides", func(t *testing.T) {
		eventually(t, 15*time.Second, "our session Up", ourState(bfd.StateUp))
		eventually(t, 5*time.Second, "BIRD session Up", birdState("Up", true))
		// Once Up, both sides switch to 50 ms by a poll sequence.
		eventually(t, 5*time.Second, "fast timers", func() error {
			st := s.Status()
			if st.TxInterval != 50*time.Millisecond || st.DetectionTime != 150*time.Millisecond || st.Polling {
				return fmt.Errorf("tx %v detection %v polling %v", st.TxInterval, st.DetectionTime, st.Polling)
			}
			return nil
		})
		// BIRD's side negotiated 50 ms x 3 with us too: interval and timeout
		// are the last two columns.
		eventually(t, 5*time.Second, "BIRD on 50 ms x 3", func() error {
			f, err := birdBFDSession(ctl)
			if err != nil {
				return err
			}
			if iv, to := f[len(f)-2], f[len(f)-1]; iv != "0.050" || to != "0.150" {
				return fmt.Errorf("BIRD interval %s timeout %s: %v", iv, to, f)
			}
			return nil
		})
		st := s.Status()
		t.Logf("up: local discr %#x, remote discr %#x, packets in %d out %d", st.LocalDiscr, st.RemoteDiscr, st.PacketsIn, st.PacketsOut)
		if st.PacketsIn == 0 || st.RemoteDiscr == 0 || st.Dropped != 0 {
			t.Fatalf("status %+v", st)
		}
	})

	t.Run("DropOfUDP3784TakesBothDown", func(t *testing.T) {
		drain()
		nft := func(args ...string) { run(t, append([]string{"ip", "netns", "exec", bfdOurNS, "nft"}, args...)...) }
		nft("add", "table", "inet", "cgwdtest")
		t.Cleanup(func() {
			exec.Command("ip", "netns", "exec", bfdOurNS, "nft", "delete", "table", "inet", "cgwdtest").Run()
		})
		nft("add", "chain", "inet", "cgwdtest", "in", "{ type filter hook input priority -10; }")
		dropAt := time.Now()
		nft("add", "rule", "inet", "cgwdtest", "in", "udp", "dport", "3784", "drop")
		eventually(t, 5*time.Second, "our session Down", ourState(bfd.StateDown))
		c := downChange()
		if c.From != bfd.StateUp || c.Diag != bfd.DiagControlDetectExpired {
			t.Fatalf("change %+v, want Up -> Down with diag %q", c, bfd.DiagControlDetectExpired)
		}
		t.Logf("drop installed -> our session Down after %v (detection time 150 ms)", c.At.Sub(dropAt).Round(time.Millisecond))
		eventually(t, 5*time.Second, "BIRD session not Up", birdState("Up", false))

		nft("delete", "table", "inet", "cgwdtest")
		eventually(t, 15*time.Second, "our session Up again", ourState(bfd.StateUp))
		eventually(t, 5*time.Second, "BIRD session Up again", birdState("Up", true))
	})

	t.Run("StoppingBirdTakesUsDown", func(t *testing.T) {
		drain()
		stopBird()
		eventually(t, 5*time.Second, "our session Down", ourState(bfd.StateDown))
		c := downChange()
		if c.From != bfd.StateUp {
			t.Fatalf("change %+v, want Up -> Down", c)
		}
		t.Logf("BIRD stopped -> our session Down, diag %q", c.Diag)
		if st := s.Status(); st.Downs != 2 {
			t.Fatalf("%d downs, want 2", st.Downs)
		}
	})
}
