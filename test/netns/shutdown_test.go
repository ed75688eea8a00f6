package netns

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/test/netns/labkit"
)

// TestShutdownOrderLab stops cgwd with SIGTERM in the IPsec lab and asserts
// on what crossed the network: BIRD saw each session, the two inside the
// tunnels included, closed by cgwd's Cease NOTIFICATION (Peer
// De-configured), not by BFD, a hold-timer expiry or a reset connection.
// cgwd closes BGP and withdraws its routes before the tunnels go; when the
// tunnels went first (IPsec closed its sockets and TUN as soon as the
// signal came), the NOTIFICATION never reached the tunnels' peer.
func TestShutdownOrderLab(t *testing.T) {
	labkit.RequireStrongSwan(t)
	labkit.UpIPsec(t)
	labkit.StartCgwd(t)
	labkit.WaitBGP(t)
	birdLog := func() string { b, _ := os.ReadFile(labkit.AWSBirdLog); return string(b) }
	before := len(birdLog())
	labkit.StopCgwd(t)
	labkit.Eventually(t, 10*time.Second, "BIRD logs every session closed by cgwd's Cease", func() error {
		since := birdLog()[before:]
		for _, p := range []string{"aws_t1", "aws_t2", "aws_dx"} {
			if !strings.Contains(since, p+": Received: Peer de-configured") {
				return fmt.Errorf("%s: no Cease received; BIRD logged since the SIGTERM:\n%s", p, since)
			}
		}
		return nil
	})
}
