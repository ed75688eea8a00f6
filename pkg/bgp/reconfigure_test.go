package bgp

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestDiffClassifiesPeerChanges(t *testing.T) {
	pfx := netip.MustParsePrefix
	dx := PeerConfig{Name: "dx1", Address: netip.MustParseAddr("169.254.255.1"), PeerASN: 64512, HoldTime: 30 * time.Second}
	t1 := PeerConfig{Name: "cgw-t1", Address: netip.MustParseAddr("169.254.10.1"), PeerASN: 64512, HoldTime: 30 * time.Second, Prepend: 1}
	t2 := PeerConfig{Name: "cgw-t2", Address: netip.MustParseAddr("169.254.11.1"), PeerASN: 64512, HoldTime: 30 * time.Second, Prepend: 2}
	base := Config{ASN: 65000, Prefixes: []netip.Prefix{pfx("10.10.0.0/16")}, Deny: []netip.Prefix{pfx("10.10.0.0/16")}, Peers: []PeerConfig{dx, t1, t2}}

	if pl := diff(newView(base), newView(base)); pl.any {
		t.Errorf("the same config: %+v", pl)
	}

	next := base
	t1Hold := t1
	t1Hold.HoldTime = 90 * time.Second
	t2Prepend := t2
	t2Prepend.Prepend = 3
	dx2 := PeerConfig{Name: "dx2", Address: netip.MustParseAddr("169.254.254.1"), PeerASN: 64512}
	next.Peers = []PeerConfig{t1Hold, t2Prepend, dx2}
	pl := diff(newView(base), newView(next))
	if !slices.Equal(pl.Removed, []string{"dx1"}) || !slices.Equal(pl.Added, []string{"dx2"}) ||
		!slices.Equal(pl.Reestablished, []string{"cgw-t1"}) || !slices.Equal(pl.Repolicied, []string{"cgw-t2"}) {
		t.Errorf("changes %+v", pl.Changes)
	}
	if len(pl.down) != 2 || len(pl.up) != 2 || !pl.exportChanged || len(pl.reeval) != 0 {
		t.Errorf("down %d up %d export %v reeval %d", len(pl.down), len(pl.up), pl.exportChanged, len(pl.reeval))
	}

	// New on-prem prefix: advertised, and every kept session's import is
	// re-evaluated (the deny list follows the prefixes); no session reset.
	next = base
	next.Prefixes = []netip.Prefix{pfx("10.10.0.0/16"), pfx("10.11.0.0/16")}
	next.Deny = next.Prefixes
	pl = diff(newView(base), newView(next))
	if len(pl.down)+len(pl.up) != 0 || len(pl.reeval) != 3 || !slices.Equal(pl.Advertised, []netip.Prefix{pfx("10.11.0.0/16")}) {
		t.Errorf("prefix added: %+v down %d up %d reeval %d", pl.Changes, len(pl.down), len(pl.up), len(pl.reeval))
	}

	// An allow list on one peer: only that one is re-evaluated.
	next = base
	t1Allow := t1
	t1Allow.Allow = []netip.Prefix{pfx("10.200.0.0/16")}
	next.Peers = []PeerConfig{dx, t1Allow, t2}
	pl = diff(newView(base), newView(next))
	if len(pl.reeval) != 1 || pl.reeval[0].Name != "cgw-t1" || pl.exportChanged || len(pl.down) != 0 {
		t.Errorf("allow list: reeval %+v export %v down %d", pl.reeval, pl.exportChanged, len(pl.down))
	}
}

// TestPlanSaysWhatReconfigureWouldDo: Plan gives diff's changes without
// touching the speaker, and ErrNewSpeaker for a change of ASN.
func TestPlanSaysWhatReconfigureWouldDo(t *testing.T) {
	t1 := PeerConfig{Name: "cgw-t1", Address: netip.MustParseAddr("169.254.10.1"), PeerASN: 64512, HoldTime: 30 * time.Second}
	base := Config{ASN: 65000, Peers: []PeerConfig{t1}}
	s := New(base)
	next := base
	t1Hold := t1
	t1Hold.HoldTime = 90 * time.Second
	next.Peers = []PeerConfig{t1Hold}
	ch, err := s.Plan(next)
	if err != nil || !slices.Equal(ch.Reestablished, []string{"cgw-t1"}) {
		t.Errorf("hold time changed: %+v, %v", ch, err)
	}
	if s.v.Load().cfg.Peers[0].HoldTime != 30*time.Second {
		t.Error("Plan changed the speaker's view")
	}
	next.ASN = 65001
	if _, err := s.Plan(next); !errors.Is(err, ErrNewSpeaker) {
		t.Errorf("ASN changed: %v", err)
	}
}
