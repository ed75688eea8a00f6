package ike

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/cgwd/cgwd/pkg/ike/wire1"
)

// V1Session runs IKEv1 (RFC 2409 main mode and quick mode with a
// pre-shared key or certificates, NAT-T always on, DPD) with one peer, on
// the same Transport and DataPath as the IKEv2 Session. All protocol state
// belongs to the Run goroutine.
//
// Unauthenticated work is bounded as for IKEv2: a main mode message 1
// costs a parse and a half-open entry (at most HalfOpenLimit per session
// and MaxHalfOpenTotal in all, forgotten after HalfOpenTimeout; above
// CookieThreshold message 1s a second they are dropped), and
// Diffie-Hellman is computed only for a message 3 that echoes our
// responder cookie. Everything after main mode message 4 is encrypted
// and checked (HASH_I/R, quick mode and informational HASHes) before it
// changes any state.
type V1Session struct {
	core
	cfg Config
	tr  Transport
	dp  DataPath

	p1  []v1Suite
	esp []v1ESP

	// Owned by Run.
	sas       []*v1SA // ISAKMP SAs: ours being set up, the peer's half-open ones, established ones (newest last)
	children  []*v1Child
	timer     *time.Timer
	retryAt   time.Time
	failures  int
	start     time.Time
	msg1s     []time.Time // main mode message 1s of the last second
	contacted bool        // an ISAKMP SA was established since start: no INITIAL-CONTACT any more
	oldLinger time.Duration
	// deleteDelay is how long after our outbound traffic left a rekeyed
	// Child SA we tell the peer to delete it (see v1DeleteDelay).
	deleteDelay time.Duration
	// authLogged is when each kind of main mode message 5/6 refusal was
	// last logged (see failAuth).
	authLogged map[string]time.Time
	ctl        chan func() // functions to run on the Run goroutine (any.go)
	// wake is the first retransmission of a flight sent since tick last
	// looked at the SAs (a rekey that tick itself started, say).
	wake time.Time
}

const (
	v1I1 = iota + 1 // we sent main mode message 1
	v1I3
	v1I5
	v1R2 // we answered message 1 (half-open)
	v1R4
	v1Est
)

// v1Flight is the last message we sent in an exchange, retransmitted until
// the answer comes or the deadline passes; lastIn is the hash of the
// message it answered, whose retransmission gets out again.
type v1Flight struct {
	out      []byte
	natt     bool
	next     time.Time // zero: not retransmitted (an answer)
	wait     time.Duration
	deadline time.Time
	lastIn   [sha256.Size]byte
}

// v1SA is an ISAKMP SA.
type v1SA struct {
	initiator bool
	ci, cr    uint64
	state     int
	suite     v1Suite
	life      time.Duration
	saiB      []byte
	dh        dhKey
	gxi, gxr  []byte
	ni, nr    []byte
	keys      *v1Keys
	iv        []byte // main mode's CBC chain
	natt      bool
	peerNATT  bool
	peerDPD   bool
	fl        v1Flight
	created   time.Time
	lastRecv  time.Time
	est       time.Time
	rekeyAt   time.Time
	expireAt  time.Time
	rekeying  bool // our phase 1 rekey (a new main mode) is under way
	dpdSeq    uint32
	dpdSince  time.Time // first unanswered R-U-THERE; zero when none
	dpdNext   time.Time
	qms       map[uint32]*v1QM
	// pastQMs are the message IDs of the quick modes forgotten on this SA:
	// a quick mode message 1 with one of them is a replay (its HASH(1)
	// has no freshness), not a new exchange.
	pastQMs map[uint32]struct{}
	// replaces: SAs established before this one's main mode began exist;
	// its first quick mode replaces every child and those SAs go.
	replaces bool
}

// v1QM is a quick mode exchange.
type v1QM struct {
	id         uint32
	initiator  bool
	iv         []byte
	ni, nr     []byte
	dh         dhKey
	inSPI      uint32
	child      *v1Child // the child it creates (responder: after message 2)
	rekeyOf    *v1Child
	replace    bool // once installed, the other children and older ISAKMP SAs go
	idci, idcr *wire1.ID
	fl         v1Flight
	created    time.Time
	done       bool
}

type v1Child struct {
	sa          *ChildSA
	suite       suite
	established time.Time
	rekeyAt     time.Time
	expireAt    time.Time
	rekeying    bool
	ours        bool
	removeAt    time.Time // a replaced child lingers until then
	deleteAt    time.Time // when the peer is told to delete it (zero: told, or never)
	// done is when its quick mode completed (HASH(2) read, or HASH(3)):
	// a rekey replaces only children done before its quick mode began.
	done     time.Time
	inUse    bool // our outbound traffic leaves by it
	replaces bool // other children existed when it was made: a rekey
	// useAt is when a rekeyed child takes our outbound traffic, via sa
	// (its quick mode began at since; see v1SwitchDelay).
	useAt time.Time
	via   *v1SA
	since time.Time
}

// NewV1Session checks cfg for IKEv1 and returns a session that is not
// running yet.
func NewV1Session(cfg Config, tr Transport, dp DataPath) (*V1Session, error) {
	if cfg.Cert == nil && len(cfg.PSK) == 0 {
		return nil, errors.New("ike: IKEv1 needs a pre-shared key or certificates")
	}
	s2, err := NewSession(cfg, tr, dp) // the same checks and defaults
	if err != nil {
		return nil, err
	}
	cfg = s2.cfg
	s := &V1Session{core: newCore(s2.log.With("ike_version", 1)), cfg: cfg, tr: tr, dp: dp, oldLinger: 2 * time.Second, deleteDelay: v1DeleteDelay, ctl: make(chan func())}
	s.p1 = v1Phase1Suites(cfg.IKEProposals)
	if len(s.p1) == 0 {
		return nil, fmt.Errorf("ike: %w", errV1NoCBC)
	}
	auth, err := v1AuthMethod(cfg)
	if err != nil {
		return nil, fmt.Errorf("ike: %w", err)
	}
	for i := range s.p1 {
		s.p1[i].auth = auth
	}
	s.esp = v1ESPTransforms(cfg.ESPProposals)
	if len(s.esp) == 0 {
		return nil, errors.New("ike: no ESP proposal usable for IKEv1")
	}
	s.status.State = "connecting"
	s.status.Version = "ikev1"
	return s, nil
}

func (s *V1Session) drop(r DropReason, h wire1.Header, args ...any) {
	s.drops.add(r)
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("dropping IKEv1 message", append([]any{"reason", r.String(), "exchange", h.Exchange, "msg_id", h.MsgID}, args...)...)
	}
}

// Run drives the session until ctx ends, then deletes the SAs (best effort).
func (s *V1Session) Run(ctx context.Context) {
	s.timer = time.NewTimer(time.Hour)
	defer s.timer.Stop()
	if s.cfg.Initiate {
		s.initiate()
	}
	for {
		if ctx.Err() != nil { // before anything else that may be ready
			s.shutdown()
			return
		}
		s.arm(s.tick(s.now()))
		select {
		case <-ctx.Done():
			s.shutdown()
			return
		case p := <-s.in:
			s.handle(p)
			p.release()
		case <-s.timer.C:
		case f := <-s.ctl:
			f()
		}
	}
}

func (s *V1Session) arm(at time.Time) {
	if !s.timer.Stop() {
		select {
		case <-s.timer.C:
		default:
		}
	}
	s.timer.Reset(max(at.Sub(s.now()), minRearm))
}

// current is the newest established ISAKMP SA, or nil.
func (s *V1Session) current() *v1SA {
	for i := len(s.sas) - 1; i >= 0; i-- {
		if s.sas[i].state == v1Est {
			return s.sas[i]
		}
	}
	return nil
}

func (s *V1Session) removeSA(sa *v1SA) {
	if i := slices.Index(s.sas, sa); i >= 0 {
		if !sa.initiator && sa.state < v1Est {
			halfOpenTotal.Add(-1)
		}
		s.sas = slices.Delete(s.sas, i, i+1)
	}
	sa.keys.wipe()
}

func (s *V1Session) halfOpen() int {
	n := 0
	for _, sa := range s.sas {
		if !sa.initiator && sa.state < v1Est {
			n++
		}
	}
	return n
}

func (s *V1Session) shutdown() {
	if sa := s.current(); sa != nil {
		var ps []wire1.Payload
		for _, c := range s.children {
			ps = append(ps, &wire1.Delete{DOI: wire1.DOIIPsec, Protocol: wire1.ProtoESP, SPIs: [][]byte{spiBytes(c.sa.InSPI)}})
		}
		for _, p := range ps {
			s.sendInfo(sa, p)
		}
		s.sendInfo(sa, &wire1.Delete{DOI: wire1.DOIIPsec, Protocol: wire1.ProtoISAKMP, SPIs: [][]byte{cookies(sa.ci, sa.cr)}})
	}
	s.dropAll()
	s.log.Info("IKE session stopped")
}

func (s *V1Session) dropAll() {
	for _, c := range s.children {
		s.dp.Remove(c.sa.InSPI)
	}
	s.children = nil
	for _, sa := range slices.Clone(s.sas) {
		s.removeSA(sa)
	}
	s.setStatus(func(st *Status) {
		*st = Status{State: "connecting", Version: "ikev1", ChildRekeys: st.ChildRekeys, IKERekeys: st.IKERekeys,
			LastError: st.LastError, LastErrorAt: st.LastErrorAt, Establishments: st.Establishments, EstablishTime: st.EstablishTime}
	})
}

// restart drops everything and, if we initiate, tries again soon.
func (s *V1Session) restart(why string) {
	s.log.Info("restarting IKEv1 SA", "reason", why)
	s.dropAll()
	s.scheduleRetry()
}

func (s *V1Session) scheduleRetry() {
	if !s.cfg.Initiate {
		return
	}
	if s.offerSwitch("IKEv1 did not establish or was lost: trying IKEv2 again", nil, false) == switchTaken {
		return
	}
	s.failures++
	d := s.cfg.RetryInterval << min(s.failures-1, 3)
	s.retryAt = s.now().Add(d)
}

// send sends b to the peer.
func (s *V1Session) send(b []byte, natt bool) {
	if err := s.tr.SendIKE(b, natt); err != nil {
		s.log.Debug("send failed", "err", err)
	}
}

// sendFlight sends b as fl's message; with retransmit it is sent again
// until fl is answered (cleared) or DPDTimeout passes.
func (s *V1Session) sendFlight(fl *v1Flight, b []byte, natt, retransmit bool) {
	fl.out, fl.natt = b, natt
	fl.next = time.Time{}
	if retransmit {
		now := s.now()
		fl.wait = time.Second
		fl.next, fl.deadline = now.Add(fl.wait), now.Add(s.cfg.DPDTimeout)
		s.wake = earliest(s.wake, fl.next)
	}
	s.send(b, natt)
}

// retransmitted answers a retransmission of the message fl answered; it
// reports whether b was one.
func (s *V1Session) retransmitted(fl *v1Flight, b []byte) bool {
	if fl.out == nil || sha256.Sum256(b) != fl.lastIn {
		return false
	}
	s.send(fl.out, fl.natt)
	return true
}

// due retransmits fl if its time has come; false once its deadline passed.
func (s *V1Session) due(fl *v1Flight, now time.Time, next *time.Time) bool {
	if fl.next.IsZero() {
		return true
	}
	if !now.Before(fl.deadline) {
		return false
	}
	if !now.Before(fl.next) {
		s.send(fl.out, fl.natt)
		fl.wait = min(2*fl.wait, 8*time.Second)
		fl.next = now.Add(fl.wait)
	}
	*next = earliest(*next, fl.next)
	return true
}

func spiBytes(spi uint32) []byte { return binary.BigEndian.AppendUint32(nil, spi) }

// tick does whatever is due at now and returns when it must run next.
func (s *V1Session) tick(now time.Time) time.Time {
	next := now.Add(time.Minute)
	if s.cfg.Initiate && !s.retryAt.IsZero() {
		if !now.Before(s.retryAt) {
			s.retryAt = time.Time{}
			s.initiate()
		} else {
			next = earliest(next, s.retryAt)
		}
	}
	for _, sa := range slices.Clone(s.sas) {
		s.tickSA(sa, now, &next)
	}
	s.tickChildren(now, &next)
	next = earliest(next, s.wake)
	s.wake = time.Time{}
	return next
}

func (s *V1Session) tickSA(sa *v1SA, now time.Time, next *time.Time) {
	if sa.state != v1Est {
		if !sa.initiator && now.Sub(sa.created) > s.cfg.HalfOpenTimeout {
			s.removeSA(sa)
			return
		}
		if !s.due(&sa.fl, now, next) {
			s.removeSA(sa)
			s.fail("IKEv1 main mode timed out: no answer from the peer", "exchange", "main mode", "our_version", "ikev1")
			if cur := s.current(); cur == nil {
				s.scheduleRetry()
			} else {
				// The rekey is tried again at once (each try lasts DPDTimeout).
				cur.rekeying = false
				*next = earliest(*next, cur.rekeyAt)
			}
			return
		}
		if !sa.initiator {
			*next = earliest(*next, sa.created.Add(s.cfg.HalfOpenTimeout))
		}
		return
	}
	for id, qm := range sa.qms {
		if !s.due(&qm.fl, now, next) || now.Sub(qm.created) > s.cfg.DPDTimeout+10*time.Second {
			delete(sa.qms, id)
			if sa.pastQMs == nil {
				sa.pastQMs = map[uint32]struct{}{}
			}
			sa.pastQMs[id] = struct{}{}
			if qm.rekeyOf != nil {
				qm.rekeyOf.rekeying = false
			}
			if !qm.done {
				s.fail("IKEv1 quick mode timed out", "msg_id", fmt.Sprintf("%08x", id))
			}
			continue
		}
		*next = earliest(*next, qm.created.Add(s.cfg.DPDTimeout+10*time.Second))
	}
	if !now.Before(sa.expireAt) {
		s.log.Info("ISAKMP SA expired", "cookies", fmt.Sprintf("%016x/%016x", sa.ci, sa.cr))
		s.sendInfo(sa, &wire1.Delete{DOI: wire1.DOIIPsec, Protocol: wire1.ProtoISAKMP, SPIs: [][]byte{cookies(sa.ci, sa.cr)}})
		s.removeSA(sa)
		if s.current() == nil {
			s.afterPhase1Loss()
		}
		return
	}
	*next = earliest(*next, sa.expireAt)
	if sa == s.current() && s.cfg.Initiate && !sa.rekeying {
		if !now.Before(sa.rekeyAt) {
			sa.rekeying = true
			s.log.Info("rekeying ISAKMP SA (new main mode)")
			s.initiate()
		} else {
			*next = earliest(*next, sa.rekeyAt)
		}
	}
	if sa == s.current() {
		s.tickDPD(sa, now, next)
	}
}

// afterPhase1Loss: no ISAKMP SA is left. The children carry on until
// they expire; an initiator sets up a new ISAKMP SA at once.
func (s *V1Session) afterPhase1Loss() {
	s.setStatus(func(st *Status) { st.State = "connecting" })
	if s.cfg.Initiate && !slices.ContainsFunc(s.sas, func(sa *v1SA) bool { return sa.initiator }) {
		s.retryAt = s.now()
	}
}

// tickDPD sends R-U-THERE when nothing came from the peer for DPDDelay
// and declares it dead after DPDTimeout without an ACK (RFC 3706).
func (s *V1Session) tickDPD(sa *v1SA, now time.Time, next *time.Time) {
	if !sa.peerDPD {
		return
	}
	last := sa.lastRecv
	if t := s.dp.LastInbound(); t.After(last) {
		last = t
	}
	if !sa.dpdSince.IsZero() {
		if now.Sub(sa.dpdSince) > s.cfg.DPDTimeout {
			s.fail("peer is dead: no R-U-THERE-ACK", "waited", s.cfg.DPDTimeout)
			s.restart("dead peer")
			return
		}
		if !now.Before(sa.dpdNext) {
			s.sendDPD(sa, now)
		}
		*next = earliest(*next, sa.dpdNext)
		return
	}
	if now.Sub(last) >= s.cfg.DPDDelay {
		sa.dpdSince = now
		s.sendDPD(sa, now)
		*next = earliest(*next, sa.dpdNext)
		return
	}
	*next = earliest(*next, last.Add(s.cfg.DPDDelay))
}

func (s *V1Session) sendDPD(sa *v1SA, now time.Time) {
	sa.dpdSeq++
	sa.dpdNext = now.Add(5 * time.Second)
	s.sendInfo(sa, &wire1.Notify{DOI: wire1.DOIIPsec, Protocol: wire1.ProtoISAKMP, SPI: cookies(sa.ci, sa.cr),
		NotifyType: wire1.NRUThere, Data: binary.BigEndian.AppendUint32(nil, sa.dpdSeq)})
}

func (s *V1Session) tickChildren(now time.Time, next *time.Time) {
	for _, c := range slices.Clone(s.children) {
		if !c.useAt.IsZero() {
			if now.Before(c.useAt) {
				*next = earliest(*next, c.useAt)
			} else {
				c.useAt = time.Time{}
				s.useChild(c.via, c, c.since)
				c.via = nil
			}
		}
		if !c.deleteAt.IsZero() {
			if now.Before(c.deleteAt) {
				*next = earliest(*next, c.deleteAt)
			} else {
				c.deleteAt = time.Time{}
				if sa := s.current(); sa != nil {
					s.sendInfo(sa, &wire1.Delete{DOI: wire1.DOIIPsec, Protocol: wire1.ProtoESP, SPIs: [][]byte{spiBytes(c.sa.InSPI)}})
				}
			}
		}
		if !c.removeAt.IsZero() {
			if !now.Before(c.removeAt) {
				s.removeChild(c)
			} else {
				*next = earliest(*next, c.removeAt)
			}
			continue
		}
		if !now.Before(c.expireAt) {
			s.log.Info("Child SA expired", "spi_in", fmt.Sprintf("%08x", c.sa.InSPI))
			s.removeChild(c)
			s.afterChildLoss()
			continue
		}
		*next = earliest(*next, c.expireAt)
		if !c.rekeying && c == s.newestChild() {
			if !now.Before(c.rekeyAt) {
				if sa := s.current(); sa != nil {
					c.rekeying = true
					s.startQuick(sa, c, false)
				}
			} else {
				*next = earliest(*next, c.rekeyAt)
			}
		}
	}
}

func (s *V1Session) newestChild() *v1Child {
	var n *v1Child
	for _, c := range s.children {
		if c.removeAt.IsZero() && (n == nil || c.established.After(n.established)) {
			n = c
		}
	}
	return n
}

func (s *V1Session) removeChild(c *v1Child) {
	if i := slices.Index(s.children, c); i >= 0 {
		s.children = slices.Delete(s.children, i, i+1)
		s.dp.Remove(c.sa.InSPI)
	}
	if n := s.newestChild(); n == nil {
		s.setStatus(func(st *Status) { st.ChildInSPI, st.ChildOutSPI, st.ChildSuite = "", "", "" })
	}
}

// rekeyTime is when an SA of lifetime life established at est starts its
// rekey: RekeyMargin (plus up to RekeyFuzz of it) before it expires.
func (s *V1Session) rekeyTime(est time.Time, life time.Duration) time.Time {
	m := s.cfg.RekeyMargin
	if m >= life {
		m = life / 3
	}
	m += time.Duration(float64(m) * s.cfg.RekeyFuzz * randFloat())
	if m >= life {
		m = life / 2
	}
	return est.Add(life - m)
}
