package ike

import (
	"fmt"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"
)

// v1Established lists the cookies of s's established ISAKMP SAs, the
// current one first.
func v1Established(t *testing.T, s *V1Session) []string {
	var l []string
	runOn(t, s.ctl, func() {
		if cur := s.current(); cur != nil {
			l = append(l, fmt.Sprintf("%016x/%016x", cur.ci, cur.cr))
		}
		for _, sa := range s.sas {
			if sa.state == v1Est && sa != s.current() {
				l = append(l, fmt.Sprintf("%016x/%016x", sa.ci, sa.cr))
			}
		}
	})
	return l
}

// TestV1CrossingMainModes: both ends initiate, and rekey their ISAKMP SAs
// at the same moment (same lifetime, no fuzz), so their main modes cross
// each time, each followed by its initiator's quick mode. The Child SA
// must come up from the first main modes (both sent INITIAL-CONTACT,
// which used to make each end drop its own main mode, so neither had an
// SA to start a quick mode on until the first rekey), and after each
// round of crossing rekeys each end's current ISAKMP SA must be one the
// other end has too (each used to delete the other's new SA, leaving
// neither), with no new establishment and make-before-break kept.
func TestV1CrossingMainModes(t *testing.T) {
	ci := cfg("192.0.2.1", "192.0.2.2", "k", "aes256-sha256-modp2048", "aes256gcm16", true)
	cr := cfg("192.0.2.2", "192.0.2.1", "k", "aes256-sha256-modp2048", "aes256gcm16", true)
	for _, c := range []*Config{&ci, &cr} {
		c.IKELifetime, c.RekeyMargin, c.ChildLifetime = 4*time.Second, time.Second, time.Hour
		c.DPDDelay = time.Hour
	}
	if testing.Verbose() {
		ci.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil)).With("side", "a")
		cr.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil)).With("side", "b")
	}
	a, b := v1pair(t, ci, cr)
	waitFor(t, 10*time.Second, "up", func() bool { return v1up(a, b) })
	if ra, rb := a.s.Status().IKERekeys, b.s.Status().IKERekeys; ra != 0 || rb != 0 {
		t.Fatalf("the Child SA came up only after the first ISAKMP rekeys (%d, %d)", ra, rb)
	}
	for round := 1; round <= 2; round++ {
		since := time.Now()
		waitFor(t, 10*time.Second, fmt.Sprintf("rekey round %d done on both ends", round), func() bool {
			return a.s.Status().Established.After(since) && b.s.Status().Established.After(since) && v1up(a, b)
		})
		waitFor(t, 5*time.Second, "each end's current ISAKMP SA known to the other", func() bool {
			la, lb := v1Established(t, a.s), v1Established(t, b.s)
			return len(la) > 0 && len(lb) > 0 && slices.Contains(lb, la[0]) && slices.Contains(la, lb[0])
		})
	}
	for _, s := range []v1side{a, b} {
		if st := s.s.Status(); st.Establishments != 1 || st.State != "established" {
			t.Errorf("status %+v: want established once", st)
		}
		s.dp.mu.Lock()
		v := s.dp.violations
		s.dp.mu.Unlock()
		if len(v) > 0 {
			t.Errorf("make-before-break violated: %v", v)
		}
	}
}
