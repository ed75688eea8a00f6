package netns

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/ike"
	"github.com/cgwd/cgwd/pkg/tunnel"
	"github.com/cgwd/cgwd/pkg/tunnel/ipsec"
	"github.com/cgwd/cgwd/test/netns/labkit"
)

// TestIPsecRekeyBench times, cgwd to cgwd, the IKEv1 establishment (main
// mode and quick mode with PFS) and the IKE and Child SA rekeys of both
// versions, for bench-ipsec.sh to print beside strongSwan's (make bench
// only: it runs with CGWD_IPSEC_BENCH set). Tunnel a rekeys, b only
// answers (b's lifetimes are an hour): a Child SA rekey 2 s after each
// Child SA, three times, then the IKE SA at 7 s. A rekey's time runs from
// its timer's due time (cgwd's status) to the new SA: a Child SA's
// established time (IKEv1 moves traffic to it 200 ms later), and for the
// IKE SA the moment the status shows the rekey (polled every millisecond).
func TestIPsecRekeyBench(t *testing.T) {
	labkit.Require(t)
	if os.Getenv("CGWD_IPSEC_BENCH") == "" {
		t.Skip("make bench only (CGWD_IPSEC_BENCH=1)")
	}
	for _, v := range []struct {
		version int
		ike     string
	}{{2, ike.DefaultIKEProposal}, {1, "aes256-sha384-ecp384"}} {
		t.Run(fmt.Sprintf("ikev%d", v.version), func(t *testing.T) {
			c2cPair(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			a, _, took := c2cUp(t, ctx, true, v.ike, ike.DefaultESPProposal, func(c *ipsec.Config) {
				c.IKE.Version = v.version
				c.IKE.IKELifetime, c.IKE.ChildLifetime = time.Hour, time.Hour
				c.IKE.RekeyMargin, c.IKE.RekeyFuzz = 2*time.Second, 0
				if c.Name == "ipc-ta" {
					c.IKE.IKELifetime, c.IKE.ChildLifetime = 9*time.Second, 4*time.Second
				}
			})
			if v.version == 1 {
				// strongSwan's figure ends when its quick mode does: cgwd's
				// own establishment time, to HASH(3), is the one to compare.
				est := time.Duration(a.Status().IPsec.EstablishSeconds * float64(time.Second))
				t.Logf("BENCH cgwd-ikev1-establish: %v (main mode + quick mode with PFS, to HASH(3); both ends up after %v, the initiator sending on a new Child SA 200 ms after HASH(3))",
					est.Round(100*time.Microsecond), took.Round(100*time.Microsecond))
			}
			child, ikeTook := rekeyTimes(t, a, 3)
			slices.Sort(child)
			t.Logf("BENCH cgwd-ikev%d-child-rekey: %v (median of %d: %v)", v.version, child[len(child)/2].Round(100*time.Microsecond), len(child), child)
			t.Logf("BENCH cgwd-ikev%d-ike-rekey: %v", v.version, ikeTook.Round(100*time.Microsecond))
		})
	}
}

// rekeyTimes polls a's status every millisecond until it has seen n Child
// SA rekeys and then an IKE SA rekey, and returns how long each took.
func rekeyTimes(t *testing.T, a *ipsec.Tunnel, n int) (child []time.Duration, ikeTook time.Duration) {
	t.Helper()
	st := func() tunnel.IPsecStatus { return *a.Status().IPsec }
	prev := st()
	err := labkit.Poll(30*time.Second, func() error {
		cur := st()
		if cur.IKERekeys > prev.IKERekeys {
			ikeTook = time.Since(prev.IKERekeyDue)
		} else if cur.ChildRekeys > prev.ChildRekeys && cur.IKERekeys == 0 && len(child) < n {
			child = append(child, cur.ChildEstablished.Sub(prev.ChildRekeyDue))
		}
		prev = cur
		if ikeTook == 0 {
			return fmt.Errorf("%d Child SA rekeys, no IKE SA rekey yet", len(child))
		}
		return nil
	}, labkit.Every(time.Millisecond))
	if err != nil || len(child) < n {
		t.Fatalf("%v (%d Child SA rekeys seen, want %d first)", err, len(child), n)
	}
	return child, ikeTook
}
