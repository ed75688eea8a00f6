package ike

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/cgwd/cgwd/pkg/certauth"
	"github.com/cgwd/cgwd/pkg/esp"
	"github.com/cgwd/cgwd/pkg/ike/wire"
)

// Config is one IKE peering: cgwd and one AWS tunnel endpoint.
type Config struct {
	Local, Remote netip.Addr
	// LocalID and RemoteID are IPv4 address identities; they default to
	// Local and Remote, as AWS uses them.
	LocalID, RemoteID netip.Addr
	// FragmentSize is the largest IP packet an encrypted IKE message may
	// take before it is sent as RFC 7383 fragments, when the peer
	// announced support (0: 1280, as strongSwan; at least 576).
	FragmentSize int
	// PSK is the pre-shared key. It is never logged.
	PSK []byte
	// Cert, when set, authenticates with certificates instead of PSK;
	// RemoteCertID is then the identity (DN, FQDN or IPv4 address as
	// text) the peer's certificate must carry, or "" for any certificate
	// that verifies to Cert's trust anchors.
	Cert         *certauth.Creds
	RemoteCertID string
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
	// Version is the IKE version the session speaks: 2 (0 means 2) or 1;
	// VersionAny is IKEv2 with a fallback to IKEv1 (see any.go).
	Version int
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
	State          string    `json:"state"`                 // connecting, established
	Version        string    `json:"ike_version,omitempty"` // ikev2 or ikev1
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
	// VersionSwitches counts an ike_version any tunnel's switches between
	// IKEv2 and IKEv1; VersionSwitch is the last one and why.
	VersionSwitches uint64    `json:"ike_version_switches,omitempty"`
	VersionSwitch   string    `json:"ike_version_switch,omitempty"`
	VersionSwitchAt time.Time `json:"ike_version_switch_at,omitzero"`
	// Dropped counts received IKE messages dropped unread, by reason.
	Dropped map[string]uint64 `json:"ike_dropped"`
	// Fragments counts RFC 7383 fragments sent and received.
	Fragments FragmentCounts `json:"ike_fragments"`
}

// Session runs IKEv2 with one peer: it establishes, keeps alive, rekeys and
// re-establishes the IKE SA and its Child SA, and installs the Child SAs
// into a DataPath. All protocol state belongs to the Run goroutine.
type Session struct {
	core
	cfg Config
	tr  Transport
	dp  DataPath
	// noSigHashes (tests) leaves out SIGNATURE_HASH_ALGORITHMS, as a
	// peer without RFC 7427 would.
	noSigHashes bool

	// Owned by Run.
	sas saSet
	// oldLinger is how long a rekeyed Child SA still accepts packets after
	// its delete completed.
	oldLinger time.Duration

	timers   *timers // Run's
	retryAt  time.Time
	failures int
	start    time.Time // when the current attempt began

	ctl chan func() // functions to run on the Run goroutine (tests)

	scratch []byte // reused to encode COOKIE answers

	cookies      *cookieJar
	initArrivals []time.Time // IKE_SA_INIT requests of the last second
	loadLogged   bool        // the cookie demand was logged since the last establishment

	// v1Seen is when the peer last sent an IKEv1 message, v1Logged when
	// that was last logged (version.go).
	v1Seen, v1Logged time.Time
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
	peerID   uint32   // the peer's next request's message ID
	lastResp [][]byte // our last response's datagrams
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
	// fragOK: both ends announced IKE fragmentation (RFC 7383); frags
	// holds the peer's fragmented message being reassembled.
	fragOK bool
	frags  reassembly
	// peerHashes are the RFC 7427 hashes the peer's IKE_SA_INIT announced.
	peerHashes []uint16
}

// NewSession checks cfg and returns a session that is not running yet.
func NewSession(cfg Config, tr Transport, dp DataPath) (*Session, error) {
	if !cfg.Local.Is4() || !cfg.Remote.Is4() {
		return nil, errors.New("ike: local and remote must be IPv4 addresses")
	}
	if len(cfg.PSK) == 0 && cfg.Cert == nil {
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
	s := &Session{core: newCore(log.With("peer", cfg.Remote)), cfg: cfg, tr: tr, dp: dp,
		ctl: make(chan func()), oldLinger: 2 * time.Second, cookies: cookies}
	s.status.State, s.status.Version = "connecting", "ikev2"
	return s, nil
}

// drop counts a received message dropped for r and logs it at debug level.
func (s *Session) drop(r DropReason, h wire.Header, args ...any) {
	s.drops.add(r)
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("dropping IKE message", append([]any{"reason", r.String(), "exchange", h.Exchange,
			"msg_id", h.MsgID, "response", h.IsResponse()}, args...)...)
	}
}

// Run drives the session until ctx ends, then deletes the SAs (best effort).
func (s *Session) Run(ctx context.Context) {
	s.timers = newTimers(s.now)
	defer s.timers.stop()
	if s.cfg.Initiate {
		s.initiate()
	}
	t := &s.timers.t
	for {
		if ctx.Err() != nil { // before anything else that may be ready
			s.shutdown()
			return
		}
		s.arm(s.now())
		select {
		case <-ctx.Done():
			s.shutdown()
			return
		case p := <-s.in:
			s.handle(p)
			p.release()
		case <-t[tRetransmit].C:
			s.onTimer(tRetransmit, s.now())
		case <-t[tHalfOpen].C:
			s.onTimer(tHalfOpen, s.now())
		case <-t[tInitErr].C:
			s.onTimer(tInitErr, s.now())
		case <-t[tRetry].C:
			s.onTimer(tRetry, s.now())
		case <-t[tExpiry].C:
			s.onTimer(tExpiry, s.now())
		case <-t[tNext].C:
			s.onTimer(tNext, s.now())
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
			s.sendAll(b, sa.natt)
		}
	}
	s.dropAll()
	s.log.Info("IKE session stopped")
}

// restart drops everything and, if we initiate, tries again soon.
func (s *Session) restart(why string) {
	s.log.Info("restarting IKE SA", "reason", why)
	s.dropAll()
	s.scheduleRetry(true)
}

func (s *Session) dropAll() {
	s.dropChildren()
	// No message goes out or comes in on these SAs any more.
	for _, sa := range s.sas.clearIKE() {
		sa.keys.wipe()
	}
	s.setStatus(func(st *Status) {
		*st = Status{State: "connecting", Version: "ikev2", ChildRekeys: st.ChildRekeys, IKERekeys: st.IKERekeys,
			LastError: st.LastError, LastErrorAt: st.LastErrorAt, Establishments: st.Establishments, EstablishTime: st.EstablishTime}
	})
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
