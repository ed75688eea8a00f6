package ike

import (
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestIdentityMismatchNamesBothIDs: a peer whose IDi is not our remote_id
// is refused with one line naming the identity it sent and both
// configured ones (and that its PSK was right), and the initiator, refused,
// names its own identities.
func TestIdentityMismatchNamesBothIDs(t *testing.T) {
	ci := cfg("198.51.100.2", "203.0.113.10", "k", DefaultIKEProposal, DefaultESPProposal, true)
	cr := cfg("203.0.113.10", "198.51.100.2", "k", DefaultIKEProposal, DefaultESPProposal, false)
	cr.RemoteID = netip.MustParseAddr("192.0.2.7") // the gateway's public address; it sends its private one
	a, b := pairUp(t, ci, cr)
	waitFor(t, 5*time.Second, "errors", func() bool {
		return strings.Contains(b.s.Status().LastError, "peer's identity is not remote_id") &&
			strings.Contains(a.s.Status().LastError, "AUTHENTICATION_FAILED")
	})
	for _, want := range []string{"peer_id=198.51.100.2", "remote_id=192.0.2.7", "local_id=203.0.113.10", "psk_matches=true"} {
		if last := b.s.Status().LastError; !strings.Contains(last, want) {
			t.Errorf("responder's error lacks %q: %s", want, last)
		}
	}
	for _, want := range []string{"local_id=198.51.100.2", "remote_id=203.0.113.10"} {
		if last := a.s.Status().LastError; !strings.Contains(last, want) {
			t.Errorf("initiator's error lacks %q: %s", want, last)
		}
	}
	if up(a, b) {
		t.Fatal("up with a mismatched identity")
	}
}

// TestPeerExpectsOtherLocalID: an initiator whose IDr is not the
// responder's local_id is warned about by the responder, naming both, and
// the initiator refuses the identity it gets, naming both.
func TestPeerExpectsOtherLocalID(t *testing.T) {
	ci := cfg("198.51.100.2", "203.0.113.10", "k", DefaultIKEProposal, DefaultESPProposal, true)
	ci.RemoteID = netip.MustParseAddr("192.0.2.20")
	cr := cfg("203.0.113.10", "198.51.100.2", "k", DefaultIKEProposal, DefaultESPProposal, false)
	logs := &syncBuf{}
	cr.Logger = slog.New(slog.NewTextHandler(logs, nil))
	a, _ := pairUp(t, ci, cr)
	waitFor(t, 5*time.Second, "errors", func() bool {
		return strings.Contains(logs.String(), "peer expects another identity of cgwd than local_id") &&
			strings.Contains(a.s.Status().LastError, "identity other than remote_id")
	})
	if !strings.Contains(logs.String(), "peer_expects=192.0.2.20 local_id=203.0.113.10") {
		t.Errorf("responder's log:\n%s", logs)
	}
	for _, want := range []string{"peer_id=203.0.113.10", "remote_id=192.0.2.20", "local_id=198.51.100.2"} {
		if last := a.s.Status().LastError; !strings.Contains(last, want) {
			t.Errorf("initiator's error lacks %q: %s", want, last)
		}
	}
}
