package ike

import (
	"encoding/binary"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/ike/wire"
)

// v1Message is an ISAKMP (IKEv1) header of exchange exch from initiator
// cookie ck, with an empty SA payload's worth of body.
func v1Message(ck uint64, exch uint8) []byte {
	b := make([]byte, wire.HeaderLen+12)
	binary.BigEndian.PutUint64(b, ck)
	b[16], b[17], b[18] = 1, 0x10, exch // SA payload, version 1.0
	binary.BigEndian.PutUint32(b[24:], uint32(len(b)))
	return b
}

// loggedSession is a responder whose Run loop is not started (tests call
// handle), logging into logs.
func loggedSession(t *testing.T, initiate bool) (*Session, *syncBuf) {
	t.Helper()
	logs := &syncBuf{}
	c := cfg("198.51.100.2", "203.0.113.10", "k", DefaultIKEProposal, DefaultESPProposal, initiate)
	c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	s, err := NewSession(c, nopTransport{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, logs
}

// TestIKEv1MessageNamedAndCounted: a peer's IKEv1 main mode is counted as
// an ikev1 drop, named once per minute in the log and the status, and
// leaves no SA behind.
func TestIKEv1MessageNamedAndCounted(t *testing.T) {
	s, logs := loggedSession(t, false)
	for i := range 50 {
		s.handle(packet{b: v1Message(uint64(i+1), 2)})
	}
	if n := dropped(s, DropIKEv1); n != 50 {
		t.Fatalf("%d ikev1 drops, want 50", n)
	}
	if n := dropped(s, DropMalformed); n != 0 {
		t.Fatalf("%d IKEv1 messages counted as malformed", n)
	}
	if n := strings.Count(logs.String(), "peer speaks IKEv1 only"); n != 1 {
		t.Fatalf("%d log lines for 50 IKEv1 messages within a minute, want 1:\n%s", n, logs)
	}
	for _, want := range []string{"set the AWS tunnel's IKE versions to include ikev2", `peer_sent="main mode"`,
		"our_version=ikev2", `peer_version="ikev1 (ISAKMP 1.0)"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if st := s.Status(); !strings.Contains(st.LastError, "peer speaks IKEv1 only") {
		t.Errorf("status last_error %q", st.LastError)
	}
	if s.sas.ike != nil || len(s.sas.halves) != 0 {
		t.Fatal("an IKEv1 message left an SA")
	}
	// A minute later the next one is logged again.
	s.v1Logged = s.v1Logged.Add(-v1LogEvery)
	s.handle(packet{b: v1Message(99, 5)})
	if n := strings.Count(logs.String(), "peer speaks IKEv1 only"); n != 2 {
		t.Fatalf("%d log lines after a minute, want 2", n)
	}
}

// TestIKEv1AnswerToOurInit: an IKEv1 answer to our IKE_SA_INIT (an
// IKEv1-only peer's INVALID-MAJOR-VERSION) is named as such, and a
// NO_PROPOSAL_CHOSEN afterwards names the peer's version.
func TestIKEv1AnswerToOurInit(t *testing.T) {
	s, logs := loggedSession(t, true)
	s.timers = newTimers(s.now)
	defer s.timers.stop()
	s.initiate()
	spiI := s.sas.ike.spiI
	s.handle(packet{b: v1Message(spiI, 5)})
	if !strings.Contains(logs.String(), `peer_sent="informational answering our IKE_SA_INIT"`) {
		t.Fatalf("log:\n%s", logs)
	}
	s.initFailed(&wire.Notify{NotifyType: wire.NNoProposalChosen}, "IKE_SA_INIT")
	last := s.Status().LastError
	for _, want := range []string{"NO_PROPOSAL_CHOSEN", "does not allow IKEv2", "our_version=ikev2",
		"peer_version=ikev1 (it sent IKEv1", "our_ike_proposals=aes256gcm16-prfsha384-ecp384"} {
		if !strings.Contains(last, want) {
			t.Errorf("last_error lacks %q: %s", want, last)
		}
	}
}

// TestVersionErrorsNameBothSides: INVALID_MAJOR_VERSION and a
// NO_PROPOSAL_CHOSEN from a peer never heard in IKEv1 name our version and
// proposals; a NO_PROPOSAL_CHOSEN for the Child SA does not blame versions.
func TestVersionErrorsNameBothSides(t *testing.T) {
	s, _ := loggedSession(t, true)
	s.timers = newTimers(s.now)
	defer s.timers.stop()
	for _, c := range []struct {
		notify uint16
		exch   string
		want   []string
		not    string
	}{
		{wire.NInvalidMajorVersion, "IKE_SA_INIT", []string{"INVALID_MAJOR_VERSION", "our_version=ikev2",
			"peer_version=unknown", "include ikev2"}, ""},
		{wire.NNoProposalChosen, "IKE_SA_INIT", []string{"does not allow IKEv2", "our_esp_proposals="}, ""},
		{wire.NNoProposalChosen, "IKE_AUTH (Child SA)", []string{"NO_PROPOSAL_CHOSEN", "our_esp_proposals="}, "IKEv2"},
	} {
		s.initiate()
		s.initFailed(&wire.Notify{NotifyType: c.notify}, c.exch)
		last := s.Status().LastError
		for _, w := range c.want {
			if !strings.Contains(last, w) {
				t.Errorf("%s in %s: last_error lacks %q: %s", wire.NotifyName(c.notify), c.exch, w, last)
			}
		}
		if c.not != "" && strings.Contains(last, c.not) {
			t.Errorf("%s in %s: last_error has %q: %s", wire.NotifyName(c.notify), c.exch, c.not, last)
		}
	}
}

// TestPeerVersionForgetsOldIKEv1: an IKEv1 message older than v1Recent
// no longer names the peer's version.
func TestPeerVersionForgetsOldIKEv1(t *testing.T) {
	s, _ := loggedSession(t, false)
	now := time.Now()
	s.receivedIKEv1(v1Message(1, 2), now.Add(-v1Recent-time.Second))
	if v := s.peerVersion(now); !strings.HasPrefix(v, "unknown") {
		t.Fatalf("peer version %q from an IKEv1 message older than %v", v, v1Recent)
	}
}

// TestIKEv1WhileEstablished: an IKEv1 message (stray or forged) while the
// IKEv2 SA is up is counted and logged, but does not name the peer IKEv1
// only nor mark the tunnel failed.
func TestIKEv1WhileEstablished(t *testing.T) {
	a, b := established(t)
	n := dropped(a.s, DropIKEv1)
	a.s.Deliver(v1Message(1, 2), false)
	waitDropped(t, a.s, DropIKEv1, n)
	if st := a.s.Status(); st.LastError != "" || st.State != "established" {
		t.Fatalf("an IKEv1 message while established changed the status: %+v", st)
	}
	if !up(a, b) {
		t.Fatal("tunnel down after an IKEv1 message")
	}
}
