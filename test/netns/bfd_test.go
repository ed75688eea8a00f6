package netns

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/bfd"
	"github.com/cgwd/cgwd/test/netns/labkit"
)

// The BFD interop test builds its own two namespaces joined by a veth pair
// (named dx0 on both sides, like the lab's Direct Connect link): cgwd's BFD
// in bfdOurNS at 169.254.255.2, BIRD 2 in bfdBirdNS at 169.254.255.1.
const (
	bfdOurNS  = "cgwdtest-bfd-cgw"
	bfdBirdNS = "cgwdtest-bfd-bird"
)

// startBird runs BIRD in bfdBirdNS with a static route that requests a BFD
// session to us; it returns its handle and a stop function.
func startBird(t *testing.T, dir string) (labkit.BIRD, func()) {
	t.Helper()
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
	return labkit.StartBIRD(t, bfdBirdNS, dir, cfg)
}

// birdBFDState returns BIRD's state of its session to 169.254.255.2.
func birdBFDState(b labkit.BIRD) (string, error) {
	f, err := b.BFDSession("169.254.255.2")
	if err != nil {
		return "", err
	}
	return f[2], nil
}

func TestBFDInteropWithBird(t *testing.T) {
	labkit.RequireRoot(t)
	labkit.RequireTools(t, "ip", "nft", "bird", "birdc")
	labkit.Pair(t, bfdOurNS, bfdBirdNS, "dx0", "169.254.255.2/30", "169.254.255.1/30")
	bird, stopBird := startBird(t, t.TempDir())

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
	if err := labkit.Do(bfdOurNS, func() error { return s.Start(ctx) }); err != nil {
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
			st, err := birdBFDState(bird)
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
		labkit.Eventually(t, 15*time.Second, "our session Up", ourState(bfd.StateUp))
		labkit.Eventually(t, 5*time.Second, "BIRD session Up", birdState("Up", true))
		// Once Up, both sides switch to 50 ms by a poll sequence.
		labkit.Eventually(t, 5*time.Second, "fast timers", func() error {
			st := s.Status()
			if st.TxInterval != 50*time.Millisecond || st.DetectionTime != 150*time.Millisecond || st.Polling {
				return fmt.Errorf("tx %v detection %v polling %v", st.TxInterval, st.DetectionTime, st.Polling)
			}
			return nil
		})
		// BIRD's side negotiated 50 ms x 3 with us too: interval and timeout
		// are the last two columns.
		labkit.Eventually(t, 5*time.Second, "BIRD on 50 ms x 3", func() error {
			f, err := bird.BFDSession("169.254.255.2")
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
		drop := labkit.NewInputFilter(t, bfdOurNS, "cgwdtest")
		t.Cleanup(func() { labkit.InNS(bfdOurNS, "nft", "delete", "table", "inet", "cgwdtest") })
		dropAt := time.Now()
		drop.DropUDP(3784)
		labkit.Eventually(t, 5*time.Second, "our session Down", ourState(bfd.StateDown))
		c := downChange()
		if c.From != bfd.StateUp || c.Diag != bfd.DiagControlDetectExpired {
			t.Fatalf("change %+v, want Up -> Down with diag %q", c, bfd.DiagControlDetectExpired)
		}
		t.Logf("drop installed -> our session Down after %v (detection time 150 ms)", c.At.Sub(dropAt).Round(time.Millisecond))
		labkit.Eventually(t, 5*time.Second, "BIRD session not Up", birdState("Up", false))

		drop.Delete()
		labkit.Eventually(t, 15*time.Second, "our session Up again", ourState(bfd.StateUp))
		labkit.Eventually(t, 5*time.Second, "BIRD session Up again", birdState("Up", true))
	})

	t.Run("StoppingBirdTakesUsDown", func(t *testing.T) {
		drain()
		stopBird()
		labkit.Eventually(t, 5*time.Second, "our session Down", ourState(bfd.StateDown))
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
