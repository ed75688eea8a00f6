package ike

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/ike/wire"
)

// anyCBC is a phase 1 proposal both versions can use.
const anyCBC = "aes256-sha256-modp2048"

// anyPeer is the far end of an ike_version any session in tests.
type anyPeer interface {
	Runner
	Deliver([]byte, bool)
}

// anyPair runs a (ike_version any) against b's session, made by mk, over
// in-memory links; refuse, when not 0, makes b's side answer every
// IKE_SA_INIT request with that error notify (strongSwan without IKEv2
// answers NO_PROPOSAL_CHOSEN).
type anyPair struct {
	a      *anySession
	b      anyPeer
	ad, bd *fakeDP
	al, bl *v1link
	logs   *syncBuf
}

func newAnyPair(t *testing.T, ca Config, mkB func(Transport, DataPath) (anyPeer, error), refuse uint16) *anyPair {
	t.Helper()
	p := &anyPair{ad: &fakeDP{}, bd: &fakeDP{}, al: &v1link{}, bl: &v1link{}, logs: &syncBuf{}}
	p.ad.peer, p.bd.peer = p.bd, p.ad
	ca.Version = VersionAny
	ca.Logger = slog.New(slog.NewTextHandler(p.logs, nil))
	var tr Transport = p.al
	if refuse != 0 {
		tr = &refuseV2Link{v1link: p.al, notify: refuse, back: func() *anySession { return p.a }}
	}
	r, err := NewRunner(ca, tr, p.ad)
	if err != nil {
		t.Fatal(err)
	}
	p.a = r.(*anySession)
	if p.b, err = mkB(p.bl, p.bd); err != nil {
		t.Fatal(err)
	}
	p.al.peer, p.bl.peer = p.b, p.a
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the any side's log:\n%s", p.logs)
		}
	})
	runAll(t, p.a, p.b)
	return p
}

func (p *anyPair) up() bool { return matched(p.ad, p.bd) && matched(p.bd, p.ad) }

// refuseV2Link answers the any side's IKE_SA_INIT requests with an error
// notify itself and passes everything else on.
type refuseV2Link struct {
	*v1link
	notify uint16
	back   func() *anySession
}

func (l *refuseV2Link) SendIKE(b []byte, natt bool) error {
	h, err := wire.ParseHeader(b)
	if err == nil && h.Exchange == wire.IKESAInit && !h.IsResponse() {
		l.back().Deliver(initErrorAnswer(h.SPIi, 0, l.notify), natt)
		return nil
	}
	return l.v1link.SendIKE(b, natt)
}

// initErrorAnswer is an (unauthenticated) IKE_SA_INIT answer with the error
// notify n for the IKE SA spiI/spiR.
func initErrorAnswer(spiI, spiR uint64, n uint16) []byte {
	b, _ := marshal(&wire.Message{Header: wire.Header{SPIi: spiI, SPIr: spiR, Exchange: wire.IKESAInit, Flags: wire.FlagResponse},
		Payloads: []wire.Payload{&wire.Notify{NotifyType: n}}}, nil)
	return b
}

func v1Peer(c Config) func(Transport, DataPath) (anyPeer, error) {
	return func(tr Transport, dp DataPath) (anyPeer, error) { return NewV1Session(c, tr, dp) }
}

func v2Peer(c Config) func(Transport, DataPath) (anyPeer, error) {
	return func(tr Transport, dp DataPath) (anyPeer, error) { return NewSession(c, tr, dp) }
}

// TestAnyFallsBackToIKEv1: against an IKEv1-only responder, the any
// initiator tries IKEv2, falls back (the peer ignores IKEv2, or answers
// it with NO_PROPOSAL_CHOSEN as strongSwan does) and establishes IKEv1,
// with one log line naming the switch, both versions and why.
func TestAnyFallsBackToIKEv1(t *testing.T) {
	for _, tc := range []struct {
		name   string
		refuse uint16
		why    string
	}{
		{"PeerIgnoresIKEv2", 0, "no answer to IKE_SA_INIT within 3s"},
		{"PeerAnswersNoProposalChosen", wire.NNoProposalChosen, "the peer answered IKE_SA_INIT with NO_PROPOSAL_CHOSEN"},
		{"PeerAnswersInvalidMajorVersion", wire.NInvalidMajorVersion, "the peer answered IKE_SA_INIT with INVALID_MAJOR_VERSION"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newAnyPair(t, cfg("192.0.2.1", "192.0.2.2", "k", anyCBC, "aes256gcm16", true),
				v1Peer(cfg("192.0.2.2", "192.0.2.1", "k", anyCBC, "aes256gcm16", false)), tc.refuse)
			waitFor(t, 15*time.Second, "the IKEv1 Child SA", p.up)
			st := p.a.Status()
			if st.State != "established" || st.Version != "ikev1" || st.VersionSwitches != 1 || !strings.Contains(st.VersionSwitch, tc.why) {
				t.Fatalf("status: state %s version %s switches %d (%q)", st.State, st.Version, st.VersionSwitches, st.VersionSwitch)
			}
			log := p.logs.String()
			if n := strings.Count(log, "IKE version switch"); n != 1 {
				t.Fatalf("%d switch log lines, want 1", n)
			}
			want := `msg="IKE version switch (ike_version any): ikev2 -> ikev1" peer=192.0.2.2 from=ikev2 to=ikev1 reason="` + tc.why
			if !strings.Contains(log, want) || !strings.Contains(log, "role=initiator after=") || !strings.Contains(log, "fallback_bound=3s") {
				t.Fatalf("log lacks %s, role, after or fallback_bound=3s (dpd_timeout)", want)
			}
			if strings.Contains(log, "level=ERROR") {
				t.Fatal("an error was logged for a fallback that worked")
			}
		})
	}
}

// TestAnyStaysOnIKEv2: against an IKEv2 peer the any initiator speaks
// IKEv2; once its SA is established, a forged NO_PROPOSAL_CHOSEN answer
// (with the SA's SPIs and with others) and a forged IKEv1 message change
// nothing.
func TestAnyStaysOnIKEv2(t *testing.T) {
	p := newAnyPair(t, cfg("192.0.2.1", "192.0.2.2", "k", anyCBC, "aes256gcm16", true),
		v2Peer(cfg("192.0.2.2", "192.0.2.1", "k", anyCBC, "aes256gcm16", false)), 0)
	waitFor(t, 10*time.Second, "the IKEv2 Child SA", p.up)
	st := p.a.Status()
	if st.Version != "ikev2" || st.VersionSwitches != 0 {
		t.Fatalf("version %s, %d switches", st.Version, st.VersionSwitches)
	}
	in := p.a.cur.Load()
	var spiI, spiR uint64
	onLoop(t, in.s.(*Session), func() { spiI, spiR = in.s.(*Session).sas.ike.spiI, in.s.(*Session).sas.ike.spiR })
	count := func(r DropReason) uint64 { return p.a.Status().Dropped[r.String()] }
	window, unknown, v1 := count(DropWindow), count(DropUnknownSPI), count(DropIKEv1)
	p.a.Deliver(initErrorAnswer(spiI, spiR, wire.NNoProposalChosen), false)
	p.a.Deliver(initErrorAnswer(spiI, 0, wire.NNoProposalChosen), false)
	p.a.Deliver(initErrorAnswer(spiI+1, 0, wire.NNoProposalChosen), false)
	p.a.Deliver(v1Message(spiI, 2), false)
	waitFor(t, 5*time.Second, "the forged messages dropped", func() bool {
		return count(DropWindow) > window && count(DropUnknownSPI) >= unknown+2 && count(DropIKEv1) > v1
	})
	p.a.mu.Lock()
	pending := p.a.pending
	p.a.mu.Unlock()
	if st := p.a.Status(); pending != nil || p.a.cur.Load() != in || st.VersionSwitches != 0 || st.SPIi != st2hex(spiI) || !p.up() {
		t.Fatalf("the forged messages changed the tunnel: pending %v, switches %d, SPI %s", pending, st.VersionSwitches, st.SPIi)
	}
}

func st2hex(v uint64) string { return fmt.Sprintf("%016x", v) }

// TestAnyAnswersEitherInitiator: the any responder answers a peer that
// initiates IKEv1 main mode in IKEv1, and one that initiates IKEv2 in
// IKEv2.
func TestAnyAnswersEitherInitiator(t *testing.T) {
	t.Run("IKEv1", func(t *testing.T) {
		p := newAnyPair(t, cfg("192.0.2.1", "192.0.2.2", "k", anyCBC, "aes256gcm16", false),
			v1Peer(cfg("192.0.2.2", "192.0.2.1", "k", anyCBC, "aes256gcm16", true)), 0)
		waitFor(t, 10*time.Second, "the IKEv1 Child SA", p.up)
		if st := p.a.Status(); st.Version != "ikev1" || st.VersionSwitches != 1 || !strings.Contains(st.VersionSwitch, "the peer sent IKEv1 (main mode)") {
			t.Fatalf("version %s, %d switches (%q)", st.Version, st.VersionSwitches, st.VersionSwitch)
		}
	})
	t.Run("IKEv2", func(t *testing.T) {
		p := newAnyPair(t, cfg("192.0.2.1", "192.0.2.2", "k", anyCBC, "aes256gcm16", false),
			v2Peer(cfg("192.0.2.2", "192.0.2.1", "k", anyCBC, "aes256gcm16", true)), 0)
		waitFor(t, 10*time.Second, "the IKEv2 Child SA", p.up)
		if st := p.a.Status(); st.Version != "ikev2" || st.VersionSwitches != 0 {
			t.Fatalf("version %s, %d switches", st.Version, st.VersionSwitches)
		}
	})
}

// TestAnyForgedSwitchesAreSpaced: a forged IKEv1 message switches a
// responder without an SA to IKEv1 at once, but forged IKE_SA_INIT
// requests right after do not switch it back (switches without an
// establishment are spaced by RetryInterval and more): a flood costs no
// new session per packet.
func TestAnyForgedSwitchesAreSpaced(t *testing.T) {
	c := cfg("192.0.2.1", "192.0.2.2", "k", anyCBC, "aes256gcm16", false)
	c.RetryInterval = time.Minute
	p := newAnyPair(t, c, v2Peer(cfg("192.0.2.2", "192.0.2.1", "k", anyCBC, "aes256gcm16", false)), 0)
	p.a.Deliver(v1Message(1, 2), false)
	waitFor(t, 5*time.Second, "the switch to IKEv1", func() bool { return p.a.Status().Version == "ikev1" })
	v1 := p.a.cur.Load()
	malformed := func() uint64 { return p.a.Status().Dropped[DropMalformed.String()] }
	before := malformed()
	for i := range 50 {
		b, _ := marshal(&wire.Message{Header: wire.Header{SPIi: uint64(100 + i), Exchange: wire.IKESAInit, Flags: wire.FlagInitiator}}, nil)
		p.a.Deliver(b, false)
	}
	waitFor(t, 5*time.Second, "the IKE_SA_INIT requests dropped by the IKEv1 session", func() bool { return malformed() >= before+50 })
	p.a.mu.Lock()
	pending := p.a.pending
	p.a.mu.Unlock()
	if st := p.a.Status(); pending != nil || p.a.cur.Load() != v1 || st.VersionSwitches != 1 {
		t.Fatalf("pending %v, %d switches, want 1", pending, st.VersionSwitches)
	}
}

// TestAnyAlternates: with a peer that answers nothing, the any initiator
// goes back and forth between the versions (IKEv1 failed: IKEv2 again),
// and every session it leaves stops.
func TestAnyAlternates(t *testing.T) {
	c := cfg("192.0.2.1", "192.0.2.2", "k", anyCBC, "aes256gcm16", true)
	c.DPDTimeout, c.RetryInterval = time.Second, 100*time.Millisecond
	p := newAnyPair(t, c, v2Peer(cfg("192.0.2.2", "192.0.2.1", "k", anyCBC, "aes256gcm16", false)), 0)
	p.al.mu.Lock()
	p.al.drop = true
	p.al.mu.Unlock()
	waitFor(t, 20*time.Second, "three switches", func() bool { return p.a.Status().VersionSwitches >= 3 })
	log := p.logs.String()
	for _, want := range []string{"ikev2 -> ikev1", "ikev1 -> ikev2", "IKEv1 did not establish"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// TestAnySwitchCalledOffWithAnSA: a switch offered while the IKEv2 SA is
// up (as no trigger does: this is the second line of defence) is called
// off by the session's own check, and the SA stays.
func TestAnySwitchCalledOffWithAnSA(t *testing.T) {
	p := newAnyPair(t, cfg("192.0.2.1", "192.0.2.2", "k", anyCBC, "aes256gcm16", true),
		v2Peer(cfg("192.0.2.2", "192.0.2.1", "k", anyCBC, "aes256gcm16", false)), 0)
	waitFor(t, 10*time.Second, "the IKEv2 Child SA", p.up)
	in := p.a.cur.Load()
	if r := p.a.request(in, "test: an offer with the SA up", nil, false); r != switchTaken {
		t.Fatalf("offer: %v", r)
	}
	waitFor(t, 5*time.Second, "the switch called off", func() bool { return strings.Contains(p.logs.String(), "IKE version switch called off") })
	if st := p.a.Status(); p.a.cur.Load() != in || st.VersionSwitches != 0 || st.Version != "ikev2" || !p.up() {
		t.Fatalf("the switch went ahead: %d switches, version %s", st.VersionSwitches, st.Version)
	}
}

// TestAnyWithoutIKEv1Proposal: an any tunnel whose proposals cannot serve
// IKEv1 says so and behaves as ike_version 2: a peer's IKEv1 main mode is
// named, not followed.
func TestAnyWithoutIKEv1Proposal(t *testing.T) {
	p := newAnyPair(t, cfg("192.0.2.1", "192.0.2.2", "k", DefaultIKEProposal, "aes256gcm16", false),
		v1Peer(cfg("192.0.2.2", "192.0.2.1", "k", anyCBC, "aes256gcm16", true)), 0)
	waitFor(t, 10*time.Second, "the peer's IKEv1 named", func() bool {
		return strings.Contains(p.a.Status().LastError, "peer speaks IKEv1 only")
	})
	if st := p.a.Status(); st.VersionSwitches != 0 || st.Version != "ikev2" {
		t.Fatalf("%d switches, version %s", st.VersionSwitches, st.Version)
	}
	if !strings.Contains(p.logs.String(), "ike_version any: this tunnel cannot fall back to IKEv1 and speaks IKEv2 only") {
		t.Fatal("no log line says the tunnel cannot fall back")
	}
}

// TestAnyResume: an initiator that gave its attempt up for a switch that
// was called off tries again later.
func TestAnyResume(t *testing.T) {
	c := cfg("192.0.2.1", "192.0.2.2", "k", anyCBC, "aes256gcm16", true)
	s2, err := NewSession(c, nopTransport{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s1, err := NewV1Session(c, nopTransport{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s2.resume()
	s1.resume()
	if s2.retryAt.IsZero() || s1.retryAt.IsZero() {
		t.Fatalf("no retry: IKEv2 %v, IKEv1 %v", s2.retryAt, s1.retryAt)
	}
}

// TestAnyOutageAfterIKEv2StaysOnIKEv2: once the peer authenticated itself
// over IKEv2, its silence (an outage: the IKE SA declared dead, then
// IKE_SA_INIT unanswered) is not a reason to try IKEv1; the tunnel keeps
// retrying IKEv2 and comes back on it when the peer answers again.
func TestAnyOutageAfterIKEv2StaysOnIKEv2(t *testing.T) {
	c := cfg("192.0.2.1", "192.0.2.2", "k", anyCBC, "aes256gcm16", true)
	c.DPDDelay, c.DPDTimeout, c.RetryInterval = 200*time.Millisecond, time.Second, 100*time.Millisecond
	p := newAnyPair(t, c, v2Peer(cfg("192.0.2.2", "192.0.2.1", "k", anyCBC, "aes256gcm16", false)), 0)
	waitFor(t, 10*time.Second, "the IKEv2 Child SA", p.up)
	p.al.mu.Lock()
	p.al.drop = true
	p.al.mu.Unlock()
	// The SA is declared dead, then at least two IKE_SA_INITs go
	// unanswered: each would have been a fallback before.
	waitFor(t, 20*time.Second, "two unanswered IKE_SA_INITs after the outage", func() bool {
		return strings.Count(p.logs.String(), "no answer to IKE_SA_INIT") >= 2
	})
	if st := p.a.Status(); st.VersionSwitches != 0 || st.Version != "ikev2" {
		t.Fatalf("an outage of an IKEv2 peer switched the tunnel: version %s, %d switches (%q)", st.Version, st.VersionSwitches, st.VersionSwitch)
	}
	p.al.mu.Lock()
	p.al.drop = false
	p.al.mu.Unlock()
	waitFor(t, 20*time.Second, "the tunnel back on IKEv2", func() bool {
		st := p.a.Status()
		return st.State == "established" && st.Establishments >= 2
	})
	if st := p.a.Status(); st.VersionSwitches != 0 || st.Version != "ikev2" {
		t.Fatalf("after the outage: version %s, %d switches", st.Version, st.VersionSwitches)
	}
}

// TestAnySimultaneousInitiation: the any side starts IKEv2 while an
// IKEv1-only peer starts its own main mode at the same moment (both
// initiate, as with AWS's startup action "start" and cgwd's initiate).
// The any side switches to IKEv1 on the peer's main mode (or on the peer
// ignoring IKEv2), the main modes may cross, and the ends must end up
// with one working IKEv1 Child SA pair after exactly one version switch,
// and stay there.
func TestAnySimultaneousInitiation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		refuse uint16
	}{
		{"PeerIgnoresIKEv2", 0},
		{"PeerAnswersNoProposalChosen", wire.NNoProposalChosen},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newAnyPair(t, cfg("192.0.2.1", "192.0.2.2", "k", anyCBC, "aes256gcm16", true),
				v1Peer(cfg("192.0.2.2", "192.0.2.1", "k", anyCBC, "aes256gcm16", true)), tc.refuse)
			waitFor(t, 15*time.Second, "the IKEv1 Child SA", p.up)
			first := p.a.Status()
			if first.Version != "ikev1" || first.VersionSwitches != 1 {
				t.Fatalf("version %s after %d switches (%q), want ikev1 after 1", first.Version, first.VersionSwitches, first.VersionSwitch)
			}
			// Longer than the fallback bound (dpd_timeout, 3 s here): no
			// switch back, no new establishment, still carrying traffic.
			deadline := time.Now().Add(4 * time.Second)
			for time.Now().Before(deadline) {
				time.Sleep(200 * time.Millisecond)
				if st := p.a.Status(); st.VersionSwitches != 1 || st.Version != "ikev1" || st.Establishments != first.Establishments {
					t.Fatalf("after settling: version %s, %d switches, %d establishments (was %d)", st.Version, st.VersionSwitches, st.Establishments, first.Establishments)
				}
			}
			if !p.up() {
				t.Fatal("the Child SA pair no longer matches")
			}
		})
	}
}
