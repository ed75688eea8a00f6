package ike

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cgwd/cgwd/pkg/ike/wire"
)

// ike_version any (AWS's IkeVersions "ikev1,ikev2", AWS's default): one
// Runner that owns one inner session, IKEv2 first, and replaces it with
// one of the other version when the peer shows it speaks that one.
//
// IKEv2 to IKEv1, as initiator: the peer answers our IKE_SA_INIT with
// NO_PROPOSAL_CHOSEN or INVALID_MAJOR_VERSION (believed, as every
// unauthenticated error answer, once no valid answer followed within
// initErrGrace, 2 s); it sends an IKEv1 message (an answer, or a main
// mode of its own: at once); or it does not answer IKE_SA_INIT within
// AnyInitWait (10 s: the request and its retransmissions at 1, 3 and 7 s;
// dpd_timeout if shorter), unless IKEv2 established with this peer before
// (silenceIsOutage). IKEv1 to IKEv2: an IKEv1 attempt of ours
// fails (main mode timed out, the SA lost). As responder the tunnel
// answers in the version the peer initiates with: an IKEv1 message while
// IKEv2 runs, or an IKE_SA_INIT request while IKEv1 runs, switches the
// inner session, which then gets that message.
//
// Every trigger is unauthenticated: whoever can send from the peer's
// address can make the tunnel try the other version (a forged
// NO_PROPOSAL_CHOSEN pushes it to IKEv1). That is acceptable only because
// the operator allowed both versions and both authenticate the peer with
// the same credentials (pre-shared key or certificates): a forged trigger delays the tunnel, it cannot make
// it accept anyone else. No switch happens while the inner session has an
// SA to lose (an established IKE or Child SA, or an exchange past its
// first round trip): that is checked on the inner session's own goroutine,
// which stops right after, so nothing establishes in between. Switches
// without an establishment between them are spaced out (anyDwell), so
// forged packets cost at most one new session per RetryInterval, and the
// inner sessions bound their pre-authentication work as always.

// AnyInitWait is how long an ike_version any initiator waits for an
// answer to its IKE_SA_INIT before it falls back to IKEv1.
const AnyInitWait = 10 * time.Second

// switchResult is what a session's offer to switch versions came to.
type switchResult int

const (
	switchNone  switchResult = iota // no switch: not ike_version any, or the other version cannot be spoken
	switchLater                     // not now (a switch is under way, or the last one was too recent)
	switchTaken                     // the tunnel switches, now or once anyDwell allows
)

// versioned is an inner session of an ike_version any tunnel.
type versioned interface {
	Runner
	base() *core
	// control is the channel of functions its Run goroutine runs.
	control() chan func()
	// busy (on the Run goroutine): it has an SA that a switch would lose.
	busy() bool
	// resume (on the Run goroutine) makes an initiator that gave its
	// attempt up for a switch that was then called off try again later.
	resume()
}

func (s *core) base() *core { return s }

func (s *Session) control() chan func()   { return s.ctl }
func (s *V1Session) control() chan func() { return s.ctl }

// busy: an established IKE or Child SA, or an IKE_AUTH under way, which
// only a valid answer to our IKE_SA_INIT starts.
func (s *Session) busy() bool {
	sa := s.sas.ike
	return s.sas.child != nil || sa != nil && (sa.state == stEstablished || sa.state == stAuthSent || sa.state == stDeleting)
}

// busy: an ISAKMP SA or Child SA, or a main mode past its first round trip.
func (s *V1Session) busy() bool {
	return len(s.children) > 0 || slices.ContainsFunc(s.sas, func(sa *v1SA) bool { return sa.state != v1I1 && sa.state != v1R2 })
}

func (s *Session) resume() {
	if s.cfg.Initiate && s.sas.ike == nil && s.retryAt.IsZero() {
		s.scheduleRetry(false)
	}
}

func (s *V1Session) resume() {
	if s.cfg.Initiate && s.retryAt.IsZero() && s.current() == nil && !slices.ContainsFunc(s.sas, func(sa *v1SA) bool { return sa.initiator }) {
		s.retryAt = s.now().Add(s.cfg.RetryInterval)
	}
}

// anyInner links an inner session to its ike_version any tunnel.
type anyInner struct {
	s       versioned
	version int
	w       *anySession
	start   time.Time // when it began to run
}

// offerSwitch asks the session's ike_version any tunnel, if any, to switch
// to the other version for reason; pkt (nil: none), received on the port
// natt says, goes to the new session.
func (s *core) offerSwitch(reason string, pkt []byte, natt bool) switchResult {
	if s.any == nil {
		return switchNone
	}
	return s.any.w.request(s.any, reason, pkt, natt)
}

// anySwitch is a switch to come.
type anySwitch struct {
	from   *anyInner
	reason string
	at     time.Time
	pkt    []byte
	natt   bool
}

// anySession is an ike_version any tunnel's Runner.
type anySession struct {
	cfg   Config
	tr    Transport
	dp    DataPath
	log   *slog.Logger
	v1err error // why IKEv1 cannot be spoken: then IKEv2 only
	retry time.Duration
	now   func() time.Time // the tunnel's clock, its inner sessions' too
	cur   atomic.Pointer[anyInner]
	wake  chan struct{}

	mu       sync.Mutex
	pending  *anySwitch
	last     time.Time // the last switch
	streak   int       // switches since an inner session last established
	switches uint64
	lastWhy  string
	lastAt   time.Time
	retired  Status // the counters of the replaced inner sessions
	// spokeV2: an IKEv2 inner session of this tunnel established (it
	// authenticated the peer): silence is then an outage, not a version.
	spokeV2 bool
}

func newAnySession(cfg Config, tr Transport, dp DataPath) (Runner, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	w := &anySession{cfg: cfg, tr: tr, dp: dp, log: log.With("peer", cfg.Remote), retry: cfg.RetryInterval, now: time.Now,
		wake: make(chan struct{}, 1)}
	if w.retry <= 0 {
		w.retry = 5 * time.Second
	}
	in, err := w.newInner(2)
	if err != nil {
		return nil, err
	}
	if _, err := NewV1Session(w.config(), tr, dp); err != nil {
		w.v1err = err
	}
	w.cur.Store(in)
	return w, nil
}

// config is a copy of the tunnel's config for one inner session (which
// numbers the proposals in place).
func (w *anySession) config() Config {
	c := w.cfg
	c.IKEProposals, c.ESPProposals = slices.Clone(c.IKEProposals), slices.Clone(c.ESPProposals)
	return c
}

func (w *anySession) newInner(version int) (*anyInner, error) {
	in := &anyInner{version: version, w: w}
	if version == 1 {
		s, err := NewV1Session(w.config(), w.tr, w.dp)
		if err != nil {
			return nil, err
		}
		s.any, s.now, in.s = in, w.now, s
		return in, nil
	}
	s, err := NewSession(w.config(), w.tr, w.dp)
	if err != nil {
		return nil, err
	}
	s.any, s.now, in.s = in, w.now, s
	return in, nil
}

// silenceIsOutage reports whether the IKEv2 session s, with no answer to
// its IKE_SA_INIT, must not fall back to IKEv1 for that: the peer
// authenticated itself over IKEv2 before (in s or an earlier IKEv2 session
// of this tunnel), so it speaks IKEv2 and its silence is an outage. Without
// this an AWS endpoint's maintenance would leave the tunnel on IKEv1 until
// that SA failed. An explicit refusal or an IKEv1 message still switches.
func (w *anySession) silenceIsOutage(s *Session) bool {
	s.mu.Lock()
	established := s.status.Establishments > 0
	s.mu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	return established || w.spokeV2
}

// fallbackBound is the longest an initiator waits on IKEv2 before it
// falls back: AnyInitWait, or dpd_timeout if shorter (Session.initWait).
func (w *anySession) fallbackBound() time.Duration {
	if d := w.cfg.DPDTimeout; d > 0 && d < AnyInitWait {
		return d
	}
	return AnyInitWait
}

func versionName(v int) string { return fmt.Sprintf("ikev%d", v) }

// anyDwell is the least time between the last switch and the nth switch
// since an inner session last established: none for the first, then
// RetryInterval doubling up to 8 times it.
func (w *anySession) anyDwell(n int) time.Duration {
	if n <= 1 {
		return 0
	}
	return w.retry << min(n-2, 3)
}

// request is an inner session's offer to switch (offerSwitch); any
// goroutine may call it.
func (w *anySession) request(from *anyInner, reason string, pkt []byte, natt bool) switchResult {
	if from.version == 2 && w.v1err != nil {
		return switchNone
	}
	c := from.s.base()
	c.mu.Lock()
	established := c.status.Establishments > 0
	c.mu.Unlock()
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cur.Load() != from {
		return switchLater // being replaced
	}
	if p := w.pending; p != nil {
		if pkt != nil && p.pkt == nil {
			p.pkt, p.natt = bytes.Clone(pkt), natt
		}
		return switchTaken
	}
	n := w.streak
	if established {
		n = 0
	}
	at := w.last.Add(w.anyDwell(n + 1))
	if pkt != nil && now.Before(at) {
		return switchLater // the peer retransmits
	}
	w.pending = &anySwitch{from: from, reason: reason, at: at, pkt: bytes.Clone(pkt), natt: natt}
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return switchTaken
}

// Deliver hands the inner session a message; an IKE_SA_INIT request while
// IKEv1 runs is the peer initiating IKEv2 (IKEv1 messages go to the IKEv2
// session, which offers the switch on its own goroutine, where it knows
// whether it has an SA).
func (w *anySession) Deliver(b []byte, natt bool) {
	in := w.cur.Load()
	if in.version == 1 && ikev2InitRequest(b) && w.request(in, "the peer initiates IKEv2 (IKE_SA_INIT request)", b, natt) == switchTaken {
		return
	}
	in.s.Deliver(b, natt)
}

func ikev2InitRequest(b []byte) bool {
	return len(b) >= wire.HeaderLen && b[17]>>4 == 2 && b[18] == wire.IKESAInit && b[19]&wire.FlagResponse == 0 &&
		binary.BigEndian.Uint64(b[8:]) == 0
}

// Status is the inner session's status, with the counters of the sessions
// it replaced and the last version switch.
func (w *anySession) Status() Status {
	st := w.cur.Load().s.Status()
	w.mu.Lock()
	defer w.mu.Unlock()
	r := &w.retired
	st.ChildRekeys += r.ChildRekeys
	st.IKERekeys += r.IKERekeys
	st.Establishments += r.Establishments
	if st.EstablishTime == 0 {
		st.EstablishTime = r.EstablishTime
	}
	if r.LastErrorAt.After(st.LastErrorAt) {
		st.LastError, st.LastErrorAt = r.LastError, r.LastErrorAt
	}
	for k, v := range r.Dropped {
		st.Dropped[k] += v
	}
	st.VersionSwitches, st.VersionSwitch, st.VersionSwitchAt = w.switches, w.lastWhy, w.lastAt
	return st
}

// Run drives the inner session, and the next one after each switch, until
// ctx ends.
func (w *anySession) Run(ctx context.Context) {
	if w.v1err != nil {
		w.log.Warn("ike_version any: this tunnel cannot fall back to IKEv1 and speaks IKEv2 only", "err", w.v1err)
	}
	for {
		in := w.cur.Load()
		in.start = w.now()
		ictx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); in.s.Run(ictx) }()
		sw := w.await(ctx, in, stop, done)
		stop()
		<-done
		if sw == nil {
			return
		}
		if !w.switchTo(in, sw) {
			return
		}
	}
}

// await waits until a switch is due and in, asked on its own goroutine,
// has no SA to lose; it then returns the switch with in stopping. It
// returns nil when ctx ends.
func (w *anySession) await(ctx context.Context, in *anyInner, stop func(), done <-chan struct{}) *anySwitch {
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		w.mu.Lock()
		sw := w.pending
		w.mu.Unlock()
		if sw != nil {
			if d := sw.at.Sub(w.now()); d > 0 {
				t.Reset(d)
			} else {
				free, ok := w.quiesce(in, stop, done)
				if !ok {
					return nil
				}
				if free {
					return sw
				}
				w.mu.Lock()
				w.pending = nil
				w.mu.Unlock()
				w.log.Info("IKE version switch called off: the "+versionName(in.version)+" session has an SA now",
					"reason_was", sw.reason)
				continue
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-done:
			return nil
		case <-w.wake:
		case <-t.C:
		}
	}
}

// quiesce asks in, on its Run goroutine, whether it has an SA to lose; if
// not it stops it there (stop), so nothing establishes after the answer.
// ok is false when in stopped before it could answer.
func (w *anySession) quiesce(in *anyInner, stop func(), done <-chan struct{}) (free, ok bool) {
	res := make(chan bool, 1)
	f := func() {
		busy := in.s.busy()
		if busy {
			in.s.resume()
		} else {
			stop()
		}
		res <- !busy
	}
	select {
	case in.s.control() <- f:
		return <-res, true
	case <-done:
		return false, false
	}
}

// switchTo replaces the stopped inner session in by one of the other
// version, logs why and hands it the switch's message.
func (w *anySession) switchTo(in *anyInner, sw *anySwitch) bool {
	st := in.s.Status()
	to := 3 - in.version
	next, err := w.newInner(to)
	if err != nil { // checked in newAnySession: cannot happen
		w.log.Error("ike_version any: cannot start the "+versionName(to)+" session", "err", err)
		return false
	}
	now := w.now()
	w.mu.Lock()
	r := &w.retired
	r.ChildRekeys += st.ChildRekeys
	r.IKERekeys += st.IKERekeys
	r.Establishments += st.Establishments
	if st.EstablishTime != 0 {
		r.EstablishTime = st.EstablishTime
	}
	if st.LastErrorAt.After(r.LastErrorAt) {
		r.LastError, r.LastErrorAt = st.LastError, st.LastErrorAt
	}
	if r.Dropped == nil {
		r.Dropped = map[string]uint64{}
	}
	for k, v := range st.Dropped {
		r.Dropped[k] += v
	}
	if st.Establishments > 0 {
		w.streak = 0
		w.spokeV2 = w.spokeV2 || in.version == 2
	}
	w.streak++
	w.last, w.pending = now, nil
	w.switches++
	w.lastWhy = versionName(in.version) + " -> " + versionName(to) + ": " + sw.reason
	w.lastAt = now
	w.cur.Store(next)
	nextAt := now.Add(w.anyDwell(w.streak + 1))
	w.mu.Unlock()
	role := "responder"
	if w.cfg.Initiate {
		role = "initiator"
	}
	args := []any{"from", versionName(in.version), "to", versionName(to), "reason", sw.reason, "role", role,
		"after", now.Sub(in.start).Round(100 * time.Millisecond)}
	if to == 1 && w.cfg.Initiate {
		args = append(args, "fallback_bound", w.fallbackBound())
	}
	args = append(args, "next_switch_not_before", nextAt.Sub(now))
	w.log.Warn(fmt.Sprintf("IKE version switch (ike_version any): %s -> %s", versionName(in.version), versionName(to)), args...)
	if sw.pkt != nil {
		next.s.Deliver(sw.pkt, sw.natt)
	}
	return true
}
