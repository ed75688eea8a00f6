package netns

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/drain"
	"github.com/cgwd/cgwd/test/netns/labkit"
)

// testHADrain is maintenance of box 1 in the two-box lab (TestHALab runs
// it; box 1 active, box 2 its active-standby secondary): `cgwd drain`
// under 1,000 packets/s each way moves both directions to box 2 with no
// packet lost and is done once box 1's paths are quiet; box 1 is stopped
// and started again drained (drain.start_drained), so that it comes back
// without taking traffic; `cgwd undrain` under a second stream moves both
// directions back to box 1, again with no packet lost.
func testHADrain(t *testing.T) {
	b1, b2 := labkit.Box1, labkit.Box2
	t.Run("DrainBox1RestartUndrainLosesNothing", func(t *testing.T) {
		labkit.WaitActive(t, 60*time.Second, b1)
		restore := labkit.EditFile(t, b1.Config, labkit.AppendUnless("\ndrain:", "drain: {quiet_period: 2s, timeout: 20s}\n"))
		defer func() { // back in service with its file as it was, whatever happened
			restore()
			b1.Reload(t)
			_, _ = drainCLI(b1.Sock, "undrain")
		}()
		b1.Reload(t)

		var report string
		up, down := labkit.TwoWay(t, 1000, 9*time.Second, time.Second, func() {
			run := startCLI(t, b1.Sock, "drain")
			labkit.WaitActive(t, 10*time.Second, b2)
			report = run.wait(t, 20*time.Second)
			// Maintenance: box 1 stops and comes back drained, while the
			// stream runs through box 2.
			b1.Signal(t, syscall.SIGTERM)
			labkit.EditFile(t, b1.Config, labkit.Replace("drain: {", "drain: {start_drained: true, "))
			b1.Start(t)
		})
		t.Logf("cgwd drain on box 1:\n%s", report)
		t.Logf("drain, stop and start of box 1: on-prem -> VPC %v; VPC -> on-prem %v", up, down)
		if !strings.Contains(report, "drained: every path quiet for 2s") {
			t.Error("cgwd drain did not report box 1 drained and quiet")
		}
		if up.Lost+up.TailLost > 0 || down.Lost+down.TailLost > 0 {
			t.Errorf("packets lost draining, stopping and starting box 1: up %v; down %v", up, down)
		}

		// Box 1 is back, every session up, and takes no traffic.
		labkit.AWSBird.WaitEstablished(t, 30*time.Second, true, b1.Bird...)
		labkit.Eventually(t, 30*time.Second, "box 1's LAN session", func() error {
			for _, p := range b1.Status(t).BGP {
				if !p.Up {
					return fmt.Errorf("%s is %s", p.Name, p.State)
				}
			}
			return nil
		})
		if st := b1.Status(t).Drain; st.State != drain.Drained {
			t.Fatalf("box 1 restarted with drain.start_drained: %+v", st)
		}
		labkit.WaitActive(t, time.Second, b2)

		up, down = labkit.TwoWay(t, 1000, 5*time.Second, time.Second, func() {
			if out, err := drainCLI(b1.Sock, "undrain"); err != nil {
				t.Fatalf("cgwd undrain on box 1: %v\n%s", err, out)
			}
			labkit.WaitActive(t, 10*time.Second, b1)
		})
		t.Logf("undrain of box 1: on-prem -> VPC %v; VPC -> on-prem %v", up, down)
		if up.Lost+up.TailLost > 0 || down.Lost+down.TailLost > 0 {
			t.Errorf("packets lost undraining box 1: up %v; down %v", up, down)
		}
	})
}
