package ike

import (
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/proposal"
)

// TestEveryMODPGroupEstablishesWithPFS: two sessions agree on each MODP
// group for the IKE SA and again for PFS when the Child SA is rekeyed;
// weak groups work when written out and are logged as weak on both ends.
func TestEveryMODPGroupEstablishesWithPFS(t *testing.T) {
	for _, g := range []uint16{2, 5, 17, 18, 22, 23, 24} {
		name := proposal.GroupName(g)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := "aes128-sha256-" + name
			ci := cfg("198.51.100.2", "203.0.113.10", "k", p, p, true)
			cr := cfg("203.0.113.10", "198.51.100.2", "k", p, p, false)
			ci.ChildLifetime, ci.RekeyMargin = 3*time.Second, time.Second
			var la, lb syncBuf
			ci.Logger, cr.Logger = slog.New(slog.NewTextHandler(&la, nil)), slog.New(slog.NewTextHandler(&lb, nil))
			a, b := pairUp(t, ci, cr)
			waitFor(t, 20*time.Second, "child SAs", func() bool { return up(a, b) })
			waitFor(t, 20*time.Second, "a Child SA rekey with PFS", func() bool {
				return a.s.Status().ChildRekeys >= 1 && b.s.Status().ChildRekeys >= 1 && up(a, b)
			})
			for _, l := range []string{la.String(), lb.String()} {
				if weak := strings.Contains(l, "weak Diffie-Hellman group negotiated"); weak != proposal.WeakGroup(g) {
					t.Errorf("weak warning %v for group %d:\n%s", weak, g, l)
				}
				if !strings.Contains(l, "sa=\"ESP PFS\" group="+strconv.Itoa(int(g))) && (proposal.WeakGroup(g) || g >= 23) {
					t.Errorf("no PFS warning for group %d:\n%s", g, l)
				}
			}
		})
	}
}
