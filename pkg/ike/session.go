package ike

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/cgwd/cgwd/pkg/esp"
	"github.com/cgwd/cgwd/pkg/ike/wire"
)

// Config is one IKE peering: cgwd and one AWS tunnel endpoint.
type Config struct {
	Local, Remote netip.Addr
	// LocalID and RemoteID are IPv4 address identities; they default to
	// Local and Remote, as AWS uses them.
	LocalID, RemoteID netip.Addr
	// PSK is the pre-shared key. It is never logged.
	PSK []byte
	// IKEProposals and ESPProposals in preference order.
	IKEProposals, ESPProposals []Proposal
	// Initiate makes cgwd start the IKE SA; otherwise it only responds.
	Initiate bool
	// IKELifetime and ChildLifetime are the hard lifetimes; rekeying starts
	// RekeyMargin (plus up to RekeyFuzz of it, randomly) earlier.
	IKELifetime, ChildLifetime, RekeyMargin time.Duration
	RekeyFuzz                               float64
	// DPDDelay is the time without an IKE message from the peer after
	// which a liveness check is sent (so at most one exchange per DPDDelay);
	// DPDTimeout is how long requests are retransmitted before the peer is
	// declared dead.
	DPDDelay, DPDTimeout time.Duration
	// RetryInterval is the first wait before re-initiating after a failure;
	// it doubles up to 8x.
	RetryInterval time.Duration
	// ForceEncap fakes the NAT detection payloads so that ESP goes in UDP
	// 4500 even without a NAT (cgwd only carries UDP-encapsulated ESP).
	ForceEncap bool
	// ReplayWindow of the inbound ESP SAs.
	ReplayWindow int
	// CookieThreshold is how many IKE_SA_INIT requests in one second make
	// the responder ask for a COOKIE first (RFC 7296 2.6), so that a flood
	// costs no Diffie-Hellman; 0 means 10, a negative value always asks.
	// Cookies are also demanded while the half-open table is half full.
	CookieThreshold int
	// HalfOpenLimit caps the peer-initiated IKE SAs between IKE_SA_INIT
	// and IKE_AUTH (0: 16); HalfOpenTimeout is how long one waits for its
	// IKE_AUTH (0: 10s).
	HalfOpenLimit   int
	HalfOpenTimeout time.Duration
	Logger          *slog.Logger
}

// Transport sends IKE messages to the peer: natt messages from port 4500
// to the peer's 4500 behind the non-ESP marker, others on port 500. It must
// not keep msg after it returns.
type Transport interface {
	SendIKE(msg []byte, natt bool) error
}

// ChildSA is a negotiated pair of ESP SAs for the data path. Keys must
// never be logged.
type ChildSA struct {
	InSPI, OutSPI     uint32
	Suite             esp.Suite
	InKey, OutKey     []byte
	LocalTS, RemoteTS []esp.Selector
}

// DataPath is the ESP side a Session installs Child SAs into.
type DataPath interface {
	// AddInbound starts accepting ESP for c.InSPI.
	AddInbound(c *ChildSA) error
	// UseOutbound sends from now on with c's outbound SA.
	UseOutbound(c *ChildSA) error
	// Remove forgets the inbound SA inSPI (and the outbound SA if it is c's).
	Remove(inSPI uint32)
	// LastInbound is when the last authenticated ESP packet arrived.
	LastInbound() time.Time
	// OutboundSeq is the current outbound SA's last sequence number.
	OutboundSeq() uint64
}

// seqRekey is the outbound sequence number that triggers a Child SA rekey,
// well before the 32-bit space runs out.
const seqRekey = 1<<32 - 1<<24

// Status is a snapshot of the session; it holds no keys.
type Status struct {
	State          string    `json:"state"` // connecting, established
	Role           string    `json:"role,omitempty"`
	SPIi           string    `json:"ike_spi_i,omitempty"`
	SPIr           string    `json:"ike_spi_r,omitempty"`
	IKESuite       string    `json:"ike_suite,omitempty"`
	Established    time.Time `json:"ike_established,omitzero"`
	IKERekeyDue    time.Time `json:"ike_rekey_due,omitzero"`
	ChildInSPI     string    `json:"child_spi_in,omitempty"`
	ChildOutSPI    string    `json:"child_spi_out,omitempty"`
	ChildSuite     string    `json:"child_suite,omitempty"`
	ChildSince     time.Time `json:"child_established,omitzero"`
	ChildRekeyDue  time.Time `json:"child_rekey_due,omitzero"`
	ChildRekeys    uint64    `json:"child_rekeys"`
	IKERekeys      uint64    `json:"ike_rekeys"`
	EstablishTime  float64   `json:"establish_seconds,omitempty"`
	LastError      string    `json:"last_error,omitempty"`
	LastErrorAt    time.Time `json:"last_error_at,omitzero"`
	Establishments uint64    `json:"establishments"`
	// Dropped counts received IKE messages dropped unread, by reason.
	Dropped map[string]uint64 `json:"ike_dropped"`
}

// Session runs IKEv2 with one peer: it establishes, keeps alive, rekeys and
// re-establishes the IKE SA and its Child SA, and installs the Child SAs
// into a DataPath. All protocol state belongs to the Run goroutine.
type Session struct {
	cfg Config
	log *slog.Logger
	tr  Transport
	dp  DataPath
	in  chan packet

	mu     sync.Mutex
	status Status

	// Owned by Run.
	sas saSet
	// oldLinger is how long a rekeyed Child SA still accepts packets after
	// its delete completed.
	oldLinger time.Duration

	retryAt  time.Time
	failures int
	start    time.Time // when the current attempt began

	ctl chan func() // functions to run on the Run goroutine (tests)

	drops   dropCounters
	scratch []byte // reused to encode COOKIE answers

	cookies      *cookieJar
	initArrivals []time.Time // IKE_SA_INIT requests of the last second
	loadLogged   bool        // the cookie demand was logged since the last establishment
}

type packet struct {
	b    []byte
	natt bool
	buf  *[]byte // b's pooled buffer, returned once the packet is handled
}

// pktPool holds receive buffers for IKE messages up to pktPoolSize bytes,
// so that a flood of IKE_SA_INITs answered with COOKIEs makes no garbage.
// Nothing keeps a packet's bytes after handle: what must stay is copied.
var pktPool = sync.Pool{New: func() any { b := make([]byte, 0, pktPoolSize); return &b }}

const pktPoolSize = 2048

func (p packet) release() {
	if p.buf != nil {
		*p.buf = (*p.buf)[:0]
		pktPool.Put(p.buf)
	}
}

type child struct {
	sa          *ChildSA
	suite       suite
	established time.Time
	rekeyAt     time.Time
	expireAt    time.Time
	rekeying    bool   // our CREATE_CHILD_SA rekeying it is under way
	ours        bool   // we initiated the exchange that created it
	ni, nr      []byte // that exchange's nonces (none for IKE_AUTH's)
	deleting    bool   // our delete for it is under way
	// rival is the new SA of the peer's rekey of this one that collided
	// with ours, until our exchange settles which of the two stays.
	rival *child
}

const (
	stInitSent = iota + 1
	stAuthSent
	stRespInit
	stEstablished
	stDeleting
)

type ikeSA struct {
	initiator  bool // we are the original initiator
	spiI, spiR uint64
	state      int
	keys       *ikeKeys
	natt       bool
	group      uint16
	dh         dhKey
	ni, nr     []byte
	cookie     []byte
	initReq    []byte // the IKE_SA_INIT request as sent, for AUTH
	// tries are our IKE_SA_INIT requests of this attempt, one per DH group
	// (an INVALID_KE_PAYLOAD makes us try another): a valid answer to any
	// of them completes, so an attacker's forged notify cannot derail us.
	tries []initTry
	// initErr is an error the peer (or anyone) answered our IKE_SA_INIT
	// with; it is believed only if no valid answer follows within
	// initErrGrace (RFC 7296 2.21.1: such a notify is not authenticated).
	initErr  *initError
	initResp []byte
	childSPI uint32
	nextID   uint32 // our next request's message ID
	req      *pending
	peerID   uint32 // the peer's next request's message ID
	lastResp []byte
	lastNatt bool
	// lastReqHash is the SHA-256 of the request lastResp answers: only
	// that datagram again is a retransmission.
	lastReqHash [sha256.Size]byte
	lastRecv    time.Time
	est         time.Time
	rekeyAt     time.Time
	expireAt    time.Time
	rekeying    bool
	// rival is the new IKE SA of the peer's rekey of this one that
	// collided with ours, until our exchange settles which one stays.
	rival *ikeSA
}

// initTry is one IKE_SA_INIT request of an attempt and its secrets.
type initTry struct {
	group uint16
	dh    dhKey
	ni    []byte
	req   []byte
}

type initError struct {
	at     time.Time
	notify *wire.Notify // an error notify, or nil
	msg    string       // otherwise, what was wrong with the answer
	args   []any
}

// initErrGrace is how long an unauthenticated error answer to our
// IKE_SA_INIT waits for a valid answer before it is believed.
const initErrGrace = 2 * time.Second

type pending struct {
	id       uint32
	data     []byte
	natt     bool
	next     time.Time
	wait     time.Duration
	deadline time.Time
	what     string
	onResp   func(*wire.Message)
	onFail   func()
}

// NewSession checks cfg and returns a session that is not running yet.
func NewSession(cfg Config, tr Transport, dp DataPath) (*Session, error) {
	if !cfg.Local.Is4() || !cfg.Remote.Is4() {
		return nil, errors.New("ike: local and remote must be IPv4 addresses")
	}
	if len(cfg.PSK) == 0 {
		return nil, errors.New("ike: pre-shared key is empty")
	}
	if len(cfg.IKEProposals) == 0 || len(cfg.ESPProposals) == 0 {
		return nil, errors.New("ike: no proposals")
	}
	if !cfg.LocalID.IsValid() {
		cfg.LocalID = cfg.Local
	}
	if !cfg.RemoteID.IsValid() {
		cfg.RemoteID = cfg.Remote
	}
	for i := range cfg.IKEProposals {
		cfg.IKEProposals[i].Num = uint8(i + 1)
		cfg.IKEProposals[i].Protocol = wire.ProtoIKE
	}
	for i := range cfg.ESPProposals {
		cfg.ESPProposals[i].Num = uint8(i + 1)
		cfg.ESPProposals[i].Protocol = wire.ProtoESP
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.IKELifetime, 28800*time.Second)
	def(&cfg.ChildLifetime, 3600*time.Second)
	def(&cfg.RekeyMargin, 540*time.Second)
	def(&cfg.DPDDelay, 10*time.Second)
	def(&cfg.DPDTimeout, 30*time.Second)
	def(&cfg.RetryInterval, 5*time.Second)
	if cfg.ReplayWindow == 0 {
		cfg.ReplayWindow = esp.DefaultWindow
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.CookieThreshold == 0 {
		cfg.CookieThreshold = 10
	}
	if cfg.HalfOpenLimit <= 0 {
		cfg.HalfOpenLimit = 16
	}
	def(&cfg.HalfOpenTimeout, 10*time.Second)
	cookies, err := newCookieJar(time.Now())
	if err != nil {
		return nil, fmt.Errorf("ike: %w", err)
	}
	s := &Session{cfg: cfg, log: log.With("peer", cfg.Remote), tr: tr, dp: dp, in: make(chan packet, 64),
		ctl: make(chan func()), oldLinger: 2 * time.Second, cookies: cookies}
	s.status.State = "connecting"
	return s, nil
}

// Deliver hands the session an IKE message received from the peer (natt:
// on port 4500, marker removed). It never blocks; when the session is
// busy the message is dropped and the peer retransmits.
func (s *Session) Deliver(b []byte, natt bool) {
	p := packet{natt: natt}
	if len(b) <= pktPoolSize {
		p.buf = pktPool.Get().(*[]byte)
		*p.buf = append((*p.buf)[:0], b...)
		p.b = *p.buf
	} else {
		p.b = bytes.Clone(b)
	}
	select {
	case s.in <- p:
	default:
		s.drops.add(DropRate)
		p.release()
	}
}

// Status returns a snapshot of the session.
func (s *Session) Status() Status {
	s.mu.Lock()
	st := s.status
	s.mu.Unlock()
	st.Dropped = s.drops.snapshot()
	return st
}

// drop counts a received message dropped for r and logs it at debug level.
func (s *Session) drop(r DropReason, h wire.Header, args ...any) {
	s.drops.add(r)
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("dropping IKE message", append([]any{"reason", r.String(), "exchange", h.Exchange,
			"msg_id", h.MsgID, "response", h.IsResponse()}, args...)...)
	}
}

func (s *Session) setStatus(fn func(*Status)) {
	s.mu.Lock()
	fn(&s.status)
	s.mu.Unlock()
}

// fail records and logs an error an operator should see.
func (s *Session) fail(msg string, args ...any) {
	s.log.Error(msg, args...)
	text := msg
	for i := 0; i+1 < len(args); i += 2 {
		text += fmt.Sprintf(" %v=%v", args[i], args[i+1])
	}
	s.setStatus(func(st *Status) { st.LastError, st.LastErrorAt = text, time.Now() })
}

// Run drives the session until ctx ends, then deletes the SAs (best effort).
func (s *Session) Run(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	if s.cfg.Initiate {
		s.initiate()
	}
	for {
		select {
		case <-ctx.Done():
			s.shutdown()
			return
		case p := <-s.in:
			s.handle(p)
			p.release()
		case now := <-tick.C:
			s.tick(now)
		case f := <-s.ctl:
			f()
		}
		if saCheck != nil {
			if err := s.sas.check(); err != nil {
				saCheck(err)
			}
		}
	}
}

// saCheck, when set (by tests), is told of every broken invariant of the
// SA set, checked after each event the Run loop handles.
var saCheck func(error)

func (s *Session) shutdown() {
	if sa := s.sas.ike; sa != nil && sa.state == stEstablished {
		msg := &wire.Message{Header: s.reqHeader(sa, wire.Informational), Encrypted: true,
			Payloads: []wire.Payload{&wire.Delete{Protocol: wire.ProtoIKE}}}
		if b, err := s.marshal(sa, msg); err == nil {
			s.tr.SendIKE(b, sa.natt)
		}
	}
	s.dropAll()
	s.log.Info("IKE session stopped")
}

func randSPI() uint64 {
	var b [8]byte
	for {
		rand.Read(b[:])
		if v := binary.BigEndian.Uint64(b[:]); v != 0 {
			return v
		}
	}
}

func randChildSPI() uint32 {
	var b [4]byte
	for {
		rand.Read(b[:])
		if v := binary.BigEndian.Uint32(b[:]); v >= 256 {
			return v
		}
	}
}

func nonce() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

// rekeyTime is lifetime minus the margin and a random part of the fuzz.
func (s *Session) rekeyTime(from time.Time, life time.Duration) time.Time {
	margin := s.cfg.RekeyMargin
	if margin >= life {
		margin = life / 3
	}
	fuzz := time.Duration(mrand.Float64() * s.cfg.RekeyFuzz * float64(margin))
	d := life - margin - fuzz
	if d < life/3 {
		d = life / 3
	}
	return from.Add(d)
}

// --- sending --------------------------------------------------------------

func (s *Session) reqHeader(sa *ikeSA, exch uint8) wire.Header {
	h := wire.Header{SPIi: sa.spiI, SPIr: sa.spiR, Exchange: exch, MsgID: sa.nextID}
	if sa.initiator {
		h.Flags |= wire.FlagInitiator
	}
	return h
}

func (s *Session) marshal(sa *ikeSA, m *wire.Message) ([]byte, error) {
	if !m.Encrypted {
		return marshal(m, nil)
	}
	if sa.initiator {
		return marshal(m, sa.keys.encI)
	}
	return marshal(m, sa.keys.encR)
}

// request sends a request on sa and retransmits it until a response or timeout.
func (s *Session) request(sa *ikeSA, m *wire.Message, what string, onResp func(*wire.Message), onFail func()) {
	b, err := s.marshal(sa, m)
	if err != nil {
		s.fail("cannot encode request", "exchange", what, "err", err)
		return
	}
	now := time.Now()
	sa.req = &pending{id: m.MsgID, data: b, natt: sa.natt, wait: time.Second, next: now.Add(time.Second),
		deadline: now.Add(s.cfg.DPDTimeout), what: what, onResp: onResp, onFail: onFail}
	if err := s.tr.SendIKE(b, sa.natt); err != nil {
		s.log.Debug("send failed", "exchange", what, "err", err)
	}
}

func (s *Session) respond(sa *ikeSA, req wire.Header, ps []wire.Payload, encrypted, natt bool) {
	h := wire.Header{SPIi: sa.spiI, SPIr: sa.spiR, Exchange: req.Exchange, MsgID: req.MsgID, Flags: wire.FlagResponse}
	if sa.initiator {
		h.Flags |= wire.FlagInitiator
	}
	b, err := s.marshal(sa, &wire.Message{Header: h, Encrypted: encrypted, Payloads: ps})
	if err != nil {
		s.log.Error("cannot encode response", "err", err)
		return
	}
	sa.lastResp, sa.lastNatt = b, natt
	sa.peerID = req.MsgID + 1
	s.tr.SendIKE(b, natt)
}

// --- timers ---------------------------------------------------------------

func (s *Session) tick(now time.Time) {
	for _, sa := range []*ikeSA{s.sas.ike, s.sas.old, s.sas.spare} {
		if sa == nil || sa.req == nil {
			continue
		}
		p := sa.req
		if now.After(p.deadline) {
			sa.req = nil
			if p.onFail != nil {
				p.onFail()
			}
			continue
		}
		if now.After(p.next) {
			p.wait *= 2
			if p.wait > 8*time.Second {
				p.wait = 8 * time.Second
			}
			p.next = now.Add(p.wait)
			s.tr.SendIKE(p.data, p.natt)
		}
	}
	s.expireHalfOpen(now)
	s.initErrExpired(now)
	sa := s.sas.ike
	if sa == nil {
		if s.cfg.Initiate && !s.retryAt.IsZero() && now.After(s.retryAt) {
			s.retryAt = time.Time{}
			s.initiate()
		}
		return
	}
	if sa.state != stEstablished {
		return
	}
	if now.After(sa.expireAt) {
		s.log.Warn("IKE SA lifetime expired before a rekey completed")
		s.restart("IKE SA expired")
		return
	}
	for _, c := range append([]*child(nil), s.sas.retired...) {
		if now.After(c.expireAt) {
			s.dropChild(c)
		}
	}
	if o := s.sas.old; o != nil && o.state == stDeleting && o.req == nil && now.After(o.expireAt) {
		s.sas.old = nil
	}
	if o := s.sas.spare; o != nil && o.req == nil && now.After(o.expireAt) {
		s.sas.spare = nil
	}
	if c := s.sas.child; c != nil && now.After(c.expireAt) {
		s.log.Warn("Child SA lifetime expired before a rekey completed")
		s.restart("Child SA expired")
		return
	}
	if sa.req != nil {
		return // message-ID window 1: one request at a time
	}
	switch {
	case s.sas.old != nil && s.sas.old.req == nil && s.sas.old.state == stEstablished:
		s.deleteOld()
	case now.After(sa.rekeyAt) && !sa.rekeying && s.sas.old == nil && s.sas.spare == nil && s.sas.ikeRival == nil:
		s.rekeyIKE()
	case s.sas.child != nil && !s.sas.child.rekeying && s.sas.rival == nil && (now.After(s.sas.child.rekeyAt) || s.dp.OutboundSeq() > seqRekey):
		s.rekeyChild()
	case s.sas.child == nil:
		s.restart("no Child SA")
	default:
		// Only IKE proves the peer hears us: inbound ESP alone (BFD, BGP
		// keepalives) would hide a path that is broken one way.
		if now.Sub(sa.lastRecv) >= s.cfg.DPDDelay {
			s.dpd(sa)
		}
	}
}

func (s *Session) dpd(sa *ikeSA) {
	s.log.Debug("sending liveness check", "msg_id", sa.nextID)
	m := &wire.Message{Header: s.reqHeader(sa, wire.Informational), Encrypted: true}
	s.request(sa, m, "DPD", func(*wire.Message) {}, func() {
		s.fail("peer is dead: no answer to liveness checks", "timeout", s.cfg.DPDTimeout)
		s.restart("DPD")
	})
}

// restart drops everything and, if we initiate, tries again soon.
func (s *Session) restart(why string) {
	s.log.Info("restarting IKE SA", "reason", why)
	s.dropAll()
	s.scheduleRetry(true)
}

func (s *Session) scheduleRetry(soon bool) {
	if !s.cfg.Initiate {
		return
	}
	if soon {
		s.retryAt = time.Now().Add(200 * time.Millisecond)
		return
	}
	d := s.cfg.RetryInterval << min(s.failures, 3)
	s.failures++
	s.retryAt = time.Now().Add(d)
	s.log.Info("will retry", "in", d)
}

func (s *Session) dropAll() {
	s.dropChildren()
	// No message goes out or comes in on these SAs any more.
	for _, sa := range s.sas.clearIKE() {
		sa.keys.wipe()
	}
	s.setStatus(func(st *Status) {
		*st = Status{State: "connecting", ChildRekeys: st.ChildRekeys, IKERekeys: st.IKERekeys,
			LastError: st.LastError, LastErrorAt: st.LastErrorAt, Establishments: st.Establishments, EstablishTime: st.EstablishTime}
	})
}

// --- receiving ------------------------------------------------------------

func (s *Session) handle(p packet) {
	h, err := wire.ParseHeader(p.b)
	if err != nil {
		s.drop(DropMalformed, h, "err", err)
		return
	}
	if h.Exchange == wire.IKESAInit && !h.IsResponse() {
		s.handleInitRequest(h, p)
		return
	}
	sa := s.sas.find(h)
	if sa == nil {
		s.drop(DropUnknownSPI, h, "spi_i", fmt.Sprintf("%016x", h.SPIi), "spi_r", fmt.Sprintf("%016x", h.SPIr))
		return
	}
	if h.IsResponse() && h.Exchange == wire.IKESAInit {
		s.handleInitResponse(sa, h, p)
		return
	}
	// Every exchange after IKE_SA_INIT travels in an SK payload, and SK is
	// the only payload outside it (RFC 7296 3.14): anything else is not
	// the peer's and must not touch the SA, however plausible it looks.
	if wire.PayloadType(p.b[16]) != wire.PayloadSK || sa.keys == nil {
		s.drop(DropUnencrypted, h)
		return
	}
	sk := sa.keys.encR
	if h.Flags&wire.FlagInitiator != 0 {
		sk = sa.keys.encI
	}
	if h.IsResponse() {
		if sa.req == nil || h.MsgID != sa.req.id {
			s.drop(DropWindow, h)
			return
		}
		m, err := s.open(h, p.b, sk)
		if err != nil {
			return
		}
		sa.lastRecv = time.Now()
		req := sa.req
		sa.req = nil
		sa.nextID++
		req.onResp(m)
		return
	}
	// A request from the peer: hashed only once its message ID is one we
	// answer, so an out-of-window flood costs no hashing.
	retransmit := h.MsgID+1 == sa.peerID && sa.lastResp != nil
	if !retransmit && h.MsgID != sa.peerID {
		s.drop(DropWindow, h, "want", sa.peerID)
		return
	}
	reqHash := sha256.Sum256(p.b)
	if retransmit {
		// A retransmission is the same datagram again (RFC 7296 2.1);
		// anything else with that message ID gets no answer.
		if reqHash != sa.lastReqHash {
			s.drop(DropRetransmitMismatch, h)
			return
		}
		s.tr.SendIKE(sa.lastResp, sa.lastNatt)
		return
	}
	m, err := s.open(h, p.b, sk)
	if err != nil {
		// Only with a verified ICV does a bad request get an answer
		// (RFC 7296 3.10.1): the critical payload or the bad syntax was
		// inside SK, so it is the peer's.
		var ec wire.CriticalError
		switch {
		case errors.As(err, &ec):
			sa.lastReqHash = reqHash
			s.respond(sa, h, []wire.Payload{&wire.Notify{NotifyType: wire.NUnsupportedCriticalPayload, Data: []byte{byte(ec)}}}, true, p.natt)
		case errors.Is(err, errInvalidSyntax):
			sa.lastReqHash = reqHash
			s.respond(sa, h, []wire.Payload{&wire.Notify{NotifyType: wire.NInvalidSyntax}}, true, p.natt)
		}
		return
	}
	sa.lastRecv = time.Now()
	sa.lastReqHash = reqHash
	if p.natt {
		sa.natt = true
	}
	switch h.Exchange {
	case wire.IKEAuth:
		if sa.state == stRespInit && s.sas.isHalf(sa) {
			s.handleAuthRequest(sa, h, m, p.natt)
		}
	case wire.Informational:
		s.handleInformational(sa, h, m, p.natt)
	case wire.CreateChildSA:
		s.handleCreateChild(sa, h, m, p.natt)
	}
}

// open verifies and decrypts a message after IKE_SA_INIT. It counts and
// logs a failure; an unsupported critical payload is returned as
// wire.CriticalError once the ICV has been verified.
func (s *Session) open(h wire.Header, b []byte, sk *skCipher) (*wire.Message, error) {
	m, err := parse(b, sk)
	var ec wire.CriticalError
	switch {
	case err == nil && !m.Encrypted:
		s.drop(DropUnencrypted, h)
		return nil, errors.New("not encrypted")
	case err == nil:
		return m, nil
	case errors.Is(err, errICV):
		s.drop(DropBadICV, h)
	case errors.As(err, &ec):
	default:
		s.drop(DropMalformed, h, "err", err)
	}
	return nil, err
}

// natHashes are the NAT detection payloads for the addresses we send from and to.
func (s *Session) natHashes(spiI, spiR uint64) []wire.Payload {
	hash := func(a netip.Addr, port uint16) []byte {
		h := sha1.New()
		binary.Write(h, binary.BigEndian, spiI)
		binary.Write(h, binary.BigEndian, spiR)
		b := a.As4()
		h.Write(b[:])
		binary.Write(h, binary.BigEndian, port)
		return h.Sum(nil)
	}
	src := hash(s.cfg.Local, 500)
	if s.cfg.ForceEncap {
		src = make([]byte, 20) // deliberately wrong: makes both ends use UDP encapsulation
		rand.Read(src)
	}
	return []wire.Payload{
		&wire.Notify{NotifyType: wire.NNATDetectionSourceIP, Data: src},
		&wire.Notify{NotifyType: wire.NNATDetectionDestinationIP, Data: hash(s.cfg.Remote, 500)},
	}
}

// --- initiator ------------------------------------------------------------

func (s *Session) initiate() {
	s.start = time.Now()
	sa := &ikeSA{initiator: true, spiI: randSPI(), state: stInitSent, group: firstDH(s.cfg.IKEProposals)}
	s.sas.ike = sa
	s.log.Info("initiating IKE SA", "spi_i", fmt.Sprintf("%016x", sa.spiI), "proposals", proposalsString(s.cfg.IKEProposals))
	s.sendInit(sa)
}

func firstDH(ps []Proposal) uint16 {
	for _, p := range ps {
		for _, t := range p.Transforms {
			if t.Type == TransformDH {
				return t.ID
			}
		}
	}
	return 0
}

func (s *Session) sendInit(sa *ikeSA) {
	// A retry with a COOKIE resends the request unchanged (RFC 7296 2.6):
	// the responder's cookie is bound to our nonce and SPI.
	if sa.cookie == nil || sa.dh == nil {
		var err error
		if sa.dh, err = newDH(sa.group); err != nil {
			s.fail("cannot make DH key", "group", sa.group, "err", err)
			s.sas.ike = nil
			s.scheduleRetry(false)
			return
		}
		sa.ni = nonce()
	}
	var ps []wire.Payload
	if sa.cookie != nil {
		ps = append(ps, &wire.Notify{NotifyType: wire.NCookie, Data: sa.cookie})
	}
	ps = append(ps, &wire.SA{Proposals: s.cfg.IKEProposals}, &wire.KE{Group: sa.group, Data: sa.dh.public()}, &wire.Nonce{Data: sa.ni})
	ps = append(ps, s.natHashes(sa.spiI, 0)...)
	m := &wire.Message{Header: wire.Header{SPIi: sa.spiI, Exchange: wire.IKESAInit, Flags: wire.FlagInitiator}, Payloads: ps}
	b, _ := marshal(m, nil)
	sa.initReq = b
	try := initTry{group: sa.group, dh: sa.dh, ni: sa.ni, req: b}
	if i := slices.IndexFunc(sa.tries, func(t initTry) bool { return t.group == sa.group }); i >= 0 {
		sa.tries[i] = try
	} else {
		sa.tries = append(sa.tries, try)
	}
	sa.nextID = 0
	s.request(sa, m, "IKE_SA_INIT", nil, func() {
		s.fail("peer unreachable: no answer to IKE_SA_INIT", "timeout", s.cfg.DPDTimeout)
		s.sas.ike = nil
		s.scheduleRetry(false)
	})
}

func (s *Session) handleInitResponse(sa *ikeSA, h wire.Header, p packet) {
	if sa.state != stInitSent || sa.req == nil || h.MsgID != 0 {
		s.drop(DropWindow, h)
		return
	}
	m, err := parse(p.b, nil)
	if err != nil {
		s.drop(DropMalformed, h, "err", err)
		return
	}
	if n := m.Notify(wire.NCookie); n != nil {
		sa.req = nil
		sa.cookie = n.Data
		s.log.Info("peer asked for a cookie; retrying IKE_SA_INIT with it")
		s.sendInit(sa)
		return
	}
	if n := m.Notify(wire.NInvalidKEPayload); n != nil && len(n.Data) == 2 {
		g := binary.BigEndian.Uint16(n.Data)
		tried := slices.ContainsFunc(sa.tries, func(t initTry) bool { return t.group == g })
		if offers(s.cfg.IKEProposals, Transform{Type: TransformDH, ID: g}) && !tried {
			s.log.Info("peer wants another DH group; retrying", "group", g)
			sa.req = nil
			sa.group = g
			sa.dh = nil // a new key for the new group
			s.sendInit(sa)
			return
		}
		s.drop(DropMalformed, h, "err", fmt.Sprintf("INVALID_KE_PAYLOAD for group %d, not offered or already tried", g))
		return
	}
	// Nothing below is authenticated: a bad answer is noted, and believed
	// only if no valid one follows in time.
	suspect := func(n *wire.Notify, msg string, args ...any) {
		if sa.initErr == nil {
			sa.initErr = &initError{at: time.Now(), notify: n, msg: msg, args: args}
			s.log.Info("unauthenticated error answer to IKE_SA_INIT: waiting for a valid one", "wait", initErrGrace)
		}
	}
	if n := m.ErrorNotify(); n != nil {
		suspect(n, "")
		return
	}
	spa, _ := m.Get(wire.PayloadSA).(*wire.SA)
	ke, _ := m.Get(wire.PayloadKE).(*wire.KE)
	nr, _ := m.Get(wire.PayloadNonce).(*wire.Nonce)
	if spa == nil || ke == nil || nr == nil || len(spa.Proposals) != 1 || h.SPIr == 0 {
		suspect(nil, "IKE_SA_INIT response lacks SA, KE or nonce")
		return
	}
	i := slices.IndexFunc(sa.tries, func(t initTry) bool { return t.group == ke.Group })
	chosen, ok := selectProposal(s.cfg.IKEProposals, spa.Proposals, true)
	st := suiteOf(chosen)
	if !ok || i < 0 || len(chosen.Transforms) != len(spa.Proposals[0].Transforms) || st.dh != ke.Group {
		suspect(nil, "peer chose an IKE proposal we did not offer", "chosen", spa.Proposals[0].String(), "ours", proposalsString(s.cfg.IKEProposals))
		return
	}
	if len(nr.Data) < minNonce(st.prf) {
		suspect(nil, "peer's nonce is shorter than its PRF requires", "bytes", len(nr.Data), "min", minNonce(st.prf))
		return
	}
	try := sa.tries[i]
	gir, err := try.dh.shared(ke.Data)
	if err != nil {
		suspect(nil, "bad KE payload from peer", "err", err)
		return
	}
	sa.req, sa.initErr, sa.tries = nil, nil, nil
	sa.group, sa.dh, sa.ni, sa.initReq = try.group, try.dh, try.ni, try.req
	sa.spiR, sa.nr, sa.initResp = h.SPIr, nr.Data, bytes.Clone(p.b)
	if sa.keys, err = deriveIKEKeys(st, gir, sa.ni, sa.nr, sa.spiI, sa.spiR, nil, prf{}); err != nil {
		s.fail("key derivation failed", "err", err)
		s.sas.ike = nil
		s.scheduleRetry(false)
		return
	}
	s.warnWeak(st.dh, "IKE")
	sa.natt = true // cgwd always carries ESP in UDP 4500 (RFC 3948)
	sa.nextID = 1
	s.sendAuth(sa)
}

// initErrExpired acts on an error answer to our IKE_SA_INIT once no valid
// answer came within initErrGrace.
func (s *Session) initErrExpired(now time.Time) {
	sa := s.sas.ike
	if sa == nil || sa.state != stInitSent || sa.initErr == nil || now.Sub(sa.initErr.at) < initErrGrace {
		return
	}
	e := sa.initErr
	sa.req = nil
	if e.notify != nil {
		s.initFailed(e.notify, "IKE_SA_INIT")
		return
	}
	s.fail(e.msg, e.args...)
	s.sas.ike = nil
	s.scheduleRetry(false)
}

func offers(ps []Proposal, t Transform) bool {
	for _, p := range ps {
		for _, x := range p.Transforms {
			if x == t {
				return true
			}
		}
	}
	return false
}

func (s *Session) initFailed(n *wire.Notify, exch string) {
	switch n.NotifyType {
	case wire.NNoProposalChosen:
		s.fail("peer rejected our proposals: NO_PROPOSAL_CHOSEN", "exchange", exch,
			"our_ike_proposals", proposalsString(s.cfg.IKEProposals), "our_esp_proposals", proposalsString(s.cfg.ESPProposals))
	case wire.NAuthenticationFailed:
		s.fail("peer rejected our authentication: AUTHENTICATION_FAILED (check the pre-shared key and the identities)",
			"exchange", exch, "local_id", s.cfg.LocalID, "remote_id", s.cfg.RemoteID)
	case wire.NTSUnacceptable:
		s.fail("peer rejected our traffic selectors: TS_UNACCEPTABLE", "exchange", exch, "tsi", "0.0.0.0/0", "tsr", "0.0.0.0/0")
	default:
		s.fail("peer refused the exchange", "exchange", exch, "notify", wire.NotifyName(n.NotifyType))
	}
	s.sas.ike = nil
	s.scheduleRetry(false)
}

func idPayload(a netip.Addr, responder bool) *wire.ID {
	b := a.As4()
	return &wire.ID{Responder: responder, IDType: wire.IDIPv4Addr, Data: b[:]}
}

func anyTS(responder bool) *wire.TS {
	return &wire.TS{Responder: responder, Selectors: []wire.Selector{{StartPort: 0, EndPort: 65535,
		Start: netip.AddrFrom4([4]byte{}), End: netip.AddrFrom4([4]byte{255, 255, 255, 255})}}}
}

// espOffer is our ESP proposals with SPI; withDH keeps the DH transforms.
func (s *Session) espOffer(spi uint32, withDH bool) []Proposal {
	var out []Proposal
	spib := binary.BigEndian.AppendUint32(nil, spi)
	for _, p := range s.cfg.ESPProposals {
		q := Proposal{Num: p.Num, Protocol: wire.ProtoESP, SPI: spib}
		for _, t := range p.Transforms {
			if t.Type != TransformDH || withDH {
				q.Transforms = append(q.Transforms, t)
			}
		}
		out = append(out, q)
	}
	return out
}

func (s *Session) sendAuth(sa *ikeSA) {
	sa.state = stAuthSent
	sa.childSPI = randChildSPI()
	id := idPayload(s.cfg.LocalID, false)
	auth := pskAuth(sa.keys.prf, s.cfg.PSK, sa.initReq, sa.nr, sa.keys.pi, wire.Body(id))
	ps := []wire.Payload{id, &wire.Notify{NotifyType: wire.NInitialContact}, idPayload(s.cfg.RemoteID, true),
		&wire.Auth{Method: wire.AuthPSK, Data: auth}, &wire.SA{Proposals: s.espOffer(sa.childSPI, false)}, anyTS(false), anyTS(true)}
	m := &wire.Message{Header: s.reqHeader(sa, wire.IKEAuth), Encrypted: true, Payloads: ps}
	s.request(sa, m, "IKE_AUTH", func(r *wire.Message) { s.handleAuthResponse(sa, r) }, func() {
		s.fail("peer unreachable: no answer to IKE_AUTH on UDP 4500", "timeout", s.cfg.DPDTimeout)
		s.sas.ike = nil
		s.scheduleRetry(false)
	})
}

func (s *Session) handleAuthResponse(sa *ikeSA, m *wire.Message) {
	if n := m.ErrorNotify(); n != nil && m.Get(wire.PayloadAuth) == nil {
		s.initFailed(n, "IKE_AUTH")
		return
	}
	id, _ := m.Get(wire.PayloadIDr).(*wire.ID)
	auth, _ := m.Get(wire.PayloadAuth).(*wire.Auth)
	if id == nil || auth == nil {
		s.fail("IKE_AUTH response lacks IDr or AUTH")
		s.sas.ike = nil
		s.scheduleRetry(false)
		return
	}
	want := pskAuth(sa.keys.prf, s.cfg.PSK, sa.initResp, sa.ni, sa.keys.pr, wire.Body(id))
	if auth.Method != wire.AuthPSK || !hmac.Equal(want, auth.Data) {
		s.fail("peer failed authentication: its AUTH does not match the pre-shared key (AUTHENTICATION_FAILED)", "remote_id", idString(id))
		s.sas.ike = nil
		s.scheduleRetry(false)
		return
	}
	if !idMatches(id, s.cfg.RemoteID) {
		s.fail("peer authenticated with an unexpected identity (AUTHENTICATION_FAILED)", "got", idString(id), "want", s.cfg.RemoteID)
		s.sas.ike = nil
		s.scheduleRetry(false)
		return
	}
	s.ikeUp(sa)
	if n := m.ErrorNotify(); n != nil {
		s.initFailed(n, "IKE_AUTH (Child SA)")
		return
	}
	c, err := s.childFromResponse(m, sa.childSPI, nil, sa.ni, sa.nr, false)
	if err != nil {
		s.fail("Child SA not established", "err", err)
		s.sas.ike = nil
		s.scheduleRetry(false)
		return
	}
	s.installChild(c, true)
}

func idString(id *wire.ID) string {
	if id.IDType == wire.IDIPv4Addr && len(id.Data) == 4 {
		return netip.AddrFrom4([4]byte(id.Data)).String()
	}
	return fmt.Sprintf("type%d:%q", id.IDType, id.Data)
}

func idMatches(id *wire.ID, want netip.Addr) bool {
	if id.IDType == wire.IDIPv4Addr && len(id.Data) == 4 {
		return netip.AddrFrom4([4]byte(id.Data)) == want
	}
	return (id.IDType == wire.IDFQDN || id.IDType == 11) && string(id.Data) == want.String()
}

// childFromResponse checks the responder's choice for a Child SA we proposed.
func (s *Session) childFromResponse(m *wire.Message, inSPI uint32, dh dhKey, ni, nr []byte, withDH bool) (*child, error) {
	spa, _ := m.Get(wire.PayloadSA).(*wire.SA)
	tsi, _ := m.Get(wire.PayloadTSi).(*wire.TS)
	tsr, _ := m.Get(wire.PayloadTSr).(*wire.TS)
	if spa == nil || tsi == nil || tsr == nil || len(spa.Proposals) != 1 || len(spa.Proposals[0].SPI) != 4 {
		return nil, errors.New("response lacks SA or traffic selectors")
	}
	chosen, ok := selectProposal(s.cfg.ESPProposals, spa.Proposals, withDH)
	if !ok {
		return nil, fmt.Errorf("peer chose an ESP proposal we did not offer: %s (ours: %s)", spa.Proposals[0], proposalsString(s.cfg.ESPProposals))
	}
	st := suiteOf(chosen)
	if err := st.check(false); err != nil {
		return nil, err
	}
	var gir []byte
	if withDH && st.dh != 0 {
		s.warnWeak(st.dh, "ESP PFS")
		ke, _ := m.Get(wire.PayloadKE).(*wire.KE)
		if ke == nil || dh == nil || ke.Group != st.dh {
			return nil, errors.New("response lacks the KE payload for PFS")
		}
		var err error
		if gir, err = dh.shared(ke.Data); err != nil {
			return nil, err
		}
	}
	// Narrowing by the responder is accepted; the result is enforced on decapsulation.
	local, remote := toESP(tsi.Selectors), toESP(tsr.Selectors)
	if len(local) == 0 || len(remote) == 0 {
		return nil, errors.New("responder narrowed the traffic selectors to nothing IPv4")
	}
	iToR, rToI := childKeys(s.sas.ike.keys, st, gir, ni, nr)
	return &child{suite: st, sa: &ChildSA{
		InSPI: inSPI, OutSPI: binary.BigEndian.Uint32(spa.Proposals[0].SPI), Suite: st.espSuite(),
		OutKey: iToR, InKey: rToI, LocalTS: local, RemoteTS: remote,
	}}, nil
}

func toESP(ss []wire.Selector) []esp.Selector {
	var out []esp.Selector
	for _, s := range ss {
		out = append(out, esp.Selector{First: s.Start, Last: s.End})
	}
	return out
}

func fromESP(ss []esp.Selector) []wire.Selector {
	var out []wire.Selector
	for _, s := range ss {
		out = append(out, wire.Selector{EndPort: 65535, Start: s.First, End: s.Last})
	}
	return out
}

func (s *Session) ikeUp(sa *ikeSA) {
	now := time.Now()
	sa.state = stEstablished
	sa.est = now
	sa.lastRecv = now
	sa.rekeyAt = s.rekeyTime(now, s.cfg.IKELifetime)
	sa.expireAt = now.Add(s.cfg.IKELifetime)
	s.failures = 0
	role := "responder"
	if sa.initiator {
		role = "initiator"
	}
	took := now.Sub(s.start)
	s.log.Info("IKE SA established", "role", role, "suite", sa.keys.suite.String(),
		"spi_i", fmt.Sprintf("%016x", sa.spiI), "spi_r", fmt.Sprintf("%016x", sa.spiR), "took", took.Round(time.Millisecond))
	s.setStatus(func(st *Status) {
		st.State, st.Role = "established", role
		st.SPIi, st.SPIr = fmt.Sprintf("%016x", sa.spiI), fmt.Sprintf("%016x", sa.spiR)
		st.IKESuite, st.Established, st.IKERekeyDue = sa.keys.suite.String(), now, sa.rekeyAt
		st.EstablishTime = took.Seconds()
		st.Establishments++
		st.LastError = ""
	})
}

// installChild puts c into the data path and makes it the current Child
// SA. With switchOut the outbound traffic moves to it at once.
func (s *Session) installChild(c *child, switchOut bool) {
	if err := s.addChild(c); err != nil {
		s.fail("cannot install inbound ESP SA", "err", err)
		return
	}
	if switchOut {
		if err := s.useOut(c); err != nil {
			s.fail("cannot install outbound ESP SA", "err", err)
			return
		}
	}
	s.adopt(c)
}

// addChild starts c's lifetime and accepts ESP on its inbound SA.
func (s *Session) addChild(c *child) error {
	now := time.Now()
	c.established = now
	c.rekeyAt = s.rekeyTime(now, s.cfg.ChildLifetime)
	c.expireAt = now.Add(s.cfg.ChildLifetime)
	return s.dp.AddInbound(c.sa)
}

// useOut sends from now on with c's outbound SA.
func (s *Session) useOut(c *child) error {
	if err := s.dp.UseOutbound(c.sa); err != nil {
		return err
	}
	s.sas.out = c
	return nil
}

// adopt makes the installed c the current Child SA. The one it replaces
// is retired: it keeps its inbound SA, and the outbound one while traffic
// still uses it, until it is deleted.
func (s *Session) adopt(c *child) {
	if s.sas.child == c {
		return
	}
	if old := s.sas.promote(c); old != nil {
		s.retire(old, 30*time.Second) // until the old SA's delete completes
		s.setStatus(func(st *Status) { st.ChildRekeys++ })
	}
	if s.sas.out == nil {
		if err := s.useOut(c); err != nil {
			s.fail("cannot install outbound ESP SA", "err", err)
		}
	}
	s.log.Info("Child SA established", "suite", c.sa.Suite.String(),
		"spi_in", fmt.Sprintf("%08x", c.sa.InSPI), "spi_out", fmt.Sprintf("%08x", c.sa.OutSPI),
		"local_ts", fmtTS(c.sa.LocalTS), "remote_ts", fmtTS(c.sa.RemoteTS))
	s.setStatus(func(st *Status) {
		st.ChildInSPI, st.ChildOutSPI = fmt.Sprintf("%08x", c.sa.InSPI), fmt.Sprintf("%08x", c.sa.OutSPI)
		st.ChildSuite, st.ChildSince, st.ChildRekeyDue = c.suite.String(), c.established, c.rekeyAt
	})
}

// retire keeps c installed until it is deleted, at most for linger.
func (s *Session) retire(c *child, linger time.Duration) { s.sas.retire(c, time.Now().Add(linger)) }

// dropChild removes c from the data path. When outbound traffic still
// used c it moves to the current Child SA first, so that there is no
// moment without an outbound SA (make before break).
func (s *Session) dropChild(c *child) {
	if s.sas.remove(c) {
		if s.sas.child != nil {
			if err := s.useOut(s.sas.child); err != nil {
				s.fail("cannot install outbound ESP SA", "err", err)
			}
		}
	}
	s.dp.Remove(c.sa.InSPI)
}

// dropChildren removes every Child SA from the data path.
func (s *Session) dropChildren() {
	for _, c := range s.sas.clearChildren() {
		s.dp.Remove(c.sa.InSPI)
	}
}

// lostCollision reports whether our exchange (nonces ni, nr) holds the
// lowest of the four nonces of two colliding rekeys, which makes the SA
// it created the redundant one (RFC 7296 2.8.1, 2.8.2). Nonces compare
// octet by octet; a nonce that is a prefix of the other is the lower.
func lostCollision(ni, nr, peerNi, peerNr []byte) bool {
	low := func(a, b []byte) []byte {
		if bytes.Compare(a, b) <= 0 {
			return a
		}
		return b
	}
	return bytes.Compare(low(ni, nr), low(peerNi, peerNr)) < 0
}

func fmtTS(ss []esp.Selector) string {
	var b bytes.Buffer
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s-%s", s.First, s.Last)
	}
	return b.String()
}
