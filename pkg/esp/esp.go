// Package esp is the ESP data path of an IPsec tunnel (RFC 4303, tunnel mode,
// IPv4 inner packets) carried in UDP (RFC 3948). An Outbound SA seals inner
// packets into ESP; an Inbound SA authenticates, decrypts and checks them
// against its anti-replay window and traffic selectors. Both work in place
// on caller buffers and allocate nothing per packet.
//
// Seal and Open serve one goroutine. For a parallel data path the work
// splits in two: the sequence number is taken in order (NextSeq) and the
// packet sealed by any goroutine (SealSeq); an inbound packet is decrypted
// by any goroutine (Decrypt) and then accepted in arrival order by one
// (Accept), which alone moves the anti-replay window. Each goroutine passes
// its own Scratch.
package esp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"sync/atomic"
)

// Cipher is an ESP encryption algorithm.
type Cipher uint8

// Supported ciphers.
const (
	AESGCM16 Cipher = iota + 1 // AES-GCM with a 16-byte ICV (RFC 4106)
	AESCBC                     // AES-CBC (RFC 3602), needs an Integ
)

// Integ is an ESP integrity algorithm (none for AEAD ciphers).
type Integ uint8

// Supported integrity algorithms.
const (
	IntegNone Integ = iota
	HMACSHA1_96
	HMACSHA256_128
	HMACSHA384_192
	HMACSHA512_256
)

// Suite is a negotiated ESP transform set.
type Suite struct {
	Cipher Cipher
	KeyLen int // cipher key length in bytes: 16 or 32
	Integ  Integ
}

// String names the suite the way strongSwan does, e.g. aes256gcm16.
func (s Suite) String() string {
	switch s.Cipher {
	case AESGCM16:
		return fmt.Sprintf("aes%dgcm16", s.KeyLen*8)
	case AESCBC:
		return fmt.Sprintf("aes%d-%s", s.KeyLen*8, s.Integ)
	}
	return "unknown"
}

func (i Integ) String() string {
	switch i {
	case HMACSHA1_96:
		return "sha1"
	case HMACSHA256_128:
		return "sha256"
	case HMACSHA384_192:
		return "sha384"
	case HMACSHA512_256:
		return "sha512"
	}
	return "none"
}

func (i Integ) hash() (func() hash.Hash, int, int) { // new, key length, ICV length
	switch i {
	case HMACSHA1_96:
		return sha1.New, 20, 12
	case HMACSHA256_128:
		return sha256.New, 32, 16
	case HMACSHA384_192:
		return sha512.New384, 48, 24
	case HMACSHA512_256:
		return sha512.New, 64, 32
	}
	return nil, 0, 0
}

// IntegKeyLen is the key length in bytes of an integrity algorithm.
func (i Integ) IntegKeyLen() int { _, k, _ := i.hash(); return k }

// IntegICVLen is the truncated ICV length in bytes of an integrity algorithm.
func (i Integ) IntegICVLen() int { _, _, n := i.hash(); return n }

// KeyMatLen is the number of KEYMAT bytes one direction of the suite takes:
// the cipher key (plus the 4-byte salt for GCM) and then the integrity key.
func (s Suite) KeyMatLen() int {
	if s.Cipher == AESGCM16 {
		return s.KeyLen + 4
	}
	return s.KeyLen + s.Integ.IntegKeyLen()
}

func (s Suite) check() error {
	if s.KeyLen != 16 && s.KeyLen != 32 {
		return fmt.Errorf("esp: key length %d is not 16 or 32", s.KeyLen)
	}
	switch s.Cipher {
	case AESGCM16:
		if s.Integ != IntegNone {
			return errors.New("esp: AES-GCM takes no integrity algorithm")
		}
	case AESCBC:
		if n, _, _ := s.Integ.hash(); n == nil {
			return errors.New("esp: AES-CBC needs an integrity algorithm")
		}
	default:
		return fmt.Errorf("esp: unknown cipher %d", s.Cipher)
	}
	return nil
}

// Overhead is the most bytes Seal adds to an inner packet: header, IV,
// padding, trailer and ICV.
func (s Suite) Overhead() int {
	if s.Cipher == AESGCM16 {
		return 8 + 8 + 3 + 2 + 16
	}
	return 8 + 16 + 15 + 2 + s.Integ.IntegICVLen()
}

// Protocol numbers carried in the ESP next-header field.
const (
	nextIPv4    = 4
	nextNoNext  = 59
	espHdrLen   = 8 // SPI and sequence number
	gcmIVLen    = 8
	gcmICVLen   = 16
	cbcIVLen    = 16
	maxSeq      = 1<<32 - 1
	ipv4HdrMin  = 20
	trailerBase = 2 // pad length, next header
)

// Errors returned by Seal and Open. Open's errors map to drop reasons.
var (
	ErrSeqExhausted = errors.New("esp: sequence numbers exhausted, the SA must be rekeyed")
	ErrShortBuffer  = errors.New("esp: buffer too short")
	ErrReplay       = errors.New("esp: replayed or too old sequence number")
	ErrAuth         = errors.New("esp: authentication failed")
	ErrMalformed    = errors.New("esp: malformed packet")
	ErrSelector     = errors.New("esp: inner packet outside the traffic selectors")
)

// DropReason names why Open dropped a packet, for counters and metrics.
type DropReason int

// Drop reasons.
const (
	DropReplay DropReason = iota
	DropAuth
	DropTS
	DropMalformed
	numDropReasons
)

// DropReasons lists every drop reason in order, for exporting counters.
var DropReasons = [...]DropReason{DropReplay, DropAuth, DropTS, DropMalformed}

func (r DropReason) String() string {
	return [...]string{"replay", "auth", "ts", "malformed"}[r]
}

// Counters are an SA's traffic counters. Bytes count inner packets.
type Counters struct {
	Packets, Bytes atomic.Uint64
	Drops          [numDropReasons]atomic.Uint64
}

// transform holds one direction's keys. It is read-only once made: the
// AEAD and the block cipher are safe for concurrent use, and the stateful
// CBC and HMAC objects live in per-goroutine cbcStates.
type transform struct {
	suite   Suite
	encrypt bool
	aead    cipher.AEAD
	salt    [4]byte
	block   cipher.Block
	macKey  []byte
	icv     int
	states  chan *cbcState // idle CBC/HMAC states, reused across goroutines
}

type ivSetter interface{ SetIV([]byte) }

// cbcState is the CBC mode and HMAC of one SA, used by one goroutine at a time.
type cbcState struct {
	owner *transform
	mode  cipher.BlockMode // with SetIV
	mac   hash.Hash
	sum   [64]byte // the HMAC output
}

// idleStates is how many idle CBC/HMAC states an SA keeps for reuse.
const idleStates = 16

func (t *transform) newCBCState() *cbcState {
	var zero [16]byte
	c := &cbcState{owner: t}
	if t.encrypt {
		c.mode = cipher.NewCBCEncrypter(t.block, zero[:])
	} else {
		c.mode = cipher.NewCBCDecrypter(t.block, zero[:])
	}
	newHash, _, _ := t.suite.Integ.hash()
	c.mac = hmac.New(newHash, t.macKey)
	return c
}

func (c *cbcState) hmac(data []byte) []byte {
	c.mac.Reset()
	c.mac.Write(data)
	return c.mac.Sum(c.sum[:0])[:c.owner.icv]
}

// Scratch is the working memory of one goroutine that seals or decrypts:
// with a Scratch each, any number of goroutines may call SealSeq and
// Decrypt on the same SA at once. The zero value is ready to use.
type Scratch struct {
	nonce [12]byte  // the GCM nonce: salt, then explicit IV
	cbc   *cbcState // the CBC/HMAC state of the SA last used
}

// cbcFor returns a CBC/HMAC state of t, reusing the one the scratch holds
// when it belongs to t and otherwise an idle one of t's.
func (sc *Scratch) cbcFor(t *transform) *cbcState {
	if c := sc.cbc; c != nil && c.owner == t {
		return c
	}
	sc.Release()
	select {
	case sc.cbc = <-t.states:
	default:
		sc.cbc = t.newCBCState()
	}
	return sc.cbc
}

// Release gives back the SA state the scratch holds, so that an SA that is
// no longer used is not kept alive by an idle goroutine's scratch.
func (sc *Scratch) Release() {
	if c := sc.cbc; c != nil {
		select {
		case c.owner.states <- c:
		default:
		}
		sc.cbc = nil
	}
}

func newTransform(s Suite, keymat []byte, encrypt bool) (*transform, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if len(keymat) != s.KeyMatLen() {
		return nil, fmt.Errorf("esp: %s needs %d bytes of key material, got %d", s, s.KeyMatLen(), len(keymat))
	}
	t := &transform{suite: s, encrypt: encrypt}
	block, err := aes.NewCipher(keymat[:s.KeyLen])
	if err != nil {
		return nil, fmt.Errorf("esp: %w", err)
	}
	t.block = block
	if s.Cipher == AESGCM16 {
		t.aead, err = cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("esp: %w", err)
		}
		copy(t.salt[:], keymat[s.KeyLen:])
		t.icv = gcmICVLen
		return t, nil
	}
	_, _, t.icv = s.Integ.hash()
	t.macKey = append([]byte(nil), keymat[s.KeyLen:]...)
	t.states = make(chan *cbcState, idleStates)
	c := t.newCBCState()
	if _, ok := c.mode.(ivSetter); !ok {
		return nil, errors.New("esp: CBC mode cannot reset its IV")
	}
	t.states <- c
	return t, nil
}

// Outbound is the sending half of a Child SA. Seal is safe for use by one
// goroutine at a time; NextSeq and SealSeq may be used concurrently (see the
// package comment); counters may be read concurrently.
type Outbound struct {
	SPI      uint32
	t        *transform
	seq      atomic.Uint64
	sc       Scratch // Seal's
	Counters Counters
}

// NewOutbound makes an outbound SA from the peer's SPI and this direction's KEYMAT.
func NewOutbound(spi uint32, s Suite, keymat []byte) (*Outbound, error) {
	t, err := newTransform(s, keymat, true)
	if err != nil {
		return nil, err
	}
	return &Outbound{SPI: spi, t: t}, nil
}

// Seq is the last sequence number used.
func (o *Outbound) Seq() uint64 { return o.seq.Load() }

// Seal builds the ESP packet carrying the IPv4 packet inner into buf and
// returns it, taking the next sequence number and counting the packet.
// buf must have room for SealedLen(len(inner)) bytes; inner may not overlap
// buf.
func (o *Outbound) Seal(buf, inner []byte) ([]byte, error) {
	seq, err := o.NextSeq()
	if err != nil {
		return nil, err
	}
	b, err := o.SealSeq(&o.sc, buf, inner, seq)
	if err != nil {
		return nil, err
	}
	o.Counters.Packets.Add(1)
	o.Counters.Bytes.Add(uint64(len(inner)))
	return b, nil
}

// NextSeq takes the next sequence number, for SealSeq. Every number is
// handed out once: a GCM nonce is built from it, so it must never be used
// for two packets. After 2^32-1 it returns ErrSeqExhausted.
func (o *Outbound) NextSeq() (uint64, error) {
	seq := o.seq.Add(1)
	if seq > maxSeq {
		o.seq.Store(maxSeq + 1)
		return 0, ErrSeqExhausted
	}
	return seq, nil
}

func (t *transform) layout(n int) (ivLen, pad, plen, total int) {
	align := 4
	ivLen = gcmIVLen
	if t.suite.Cipher == AESCBC {
		ivLen, align = cbcIVLen, 16
	}
	plen = n + trailerBase
	pad = (align - plen%align) % align
	plen += pad
	return ivLen, pad, plen, espHdrLen + ivLen + plen + t.icv
}

// SealedLen is the length of the ESP packet that carries an n-byte inner packet.
func (o *Outbound) SealedLen(n int) int {
	_, _, _, total := o.t.layout(n)
	return total
}

// SealSeq is Seal with a sequence number from NextSeq and the caller's
// Scratch; it does not count the packet (the caller adds to Counters).
// Several goroutines may call it at once, each with its own Scratch.
func (o *Outbound) SealSeq(sc *Scratch, buf, inner []byte, seq uint64) ([]byte, error) {
	t := o.t
	ivLen, pad, plen, total := t.layout(len(inner))
	if cap(buf) < total {
		return nil, ErrShortBuffer
	}
	b := buf[:total]
	binary.BigEndian.PutUint32(b[0:], o.SPI)
	binary.BigEndian.PutUint32(b[4:], uint32(seq))
	pt := b[espHdrLen+ivLen : espHdrLen+ivLen+plen]
	n := copy(pt, inner)
	for i := 0; i < pad; i++ {
		pt[n+i] = byte(i + 1)
	}
	pt[plen-2] = byte(pad)
	pt[plen-1] = nextIPv4
	if t.suite.Cipher == AESGCM16 {
		// The explicit IV is the sequence number: unique per key, so the
		// GCM nonce never repeats (RFC 4106 section 3.1).
		iv := b[espHdrLen : espHdrLen+gcmIVLen]
		binary.BigEndian.PutUint64(iv, seq)
		copy(sc.nonce[:4], t.salt[:])
		copy(sc.nonce[4:], iv)
		t.aead.Seal(pt[:0], sc.nonce[:], pt, b[:espHdrLen])
		return b, nil
	}
	iv := b[espHdrLen : espHdrLen+cbcIVLen]
	if _, err := rand.Read(iv); err != nil {
		return nil, fmt.Errorf("esp: IV: %w", err)
	}
	c := sc.cbcFor(t)
	c.mode.(ivSetter).SetIV(iv)
	c.mode.CryptBlocks(pt, pt)
	authEnd := espHdrLen + ivLen + plen
	copy(b[authEnd:], c.hmac(b[:authEnd]))
	return b, nil
}

// Selector is an IPv4 address range of a traffic selector, inclusive.
type Selector struct{ First, Last netip.Addr }

// AnyIPv4 is the selector 0.0.0.0/0.
var AnyIPv4 = Selector{netip.AddrFrom4([4]byte{}), netip.AddrFrom4([4]byte{255, 255, 255, 255})}

func (s Selector) contains(a [4]byte) bool {
	x := binary.BigEndian.Uint32(a[:])
	f, l := s.First.As4(), s.Last.As4()
	return x >= binary.BigEndian.Uint32(f[:]) && x <= binary.BigEndian.Uint32(l[:])
}

// Inbound is the receiving half of a Child SA. Open and Accept are safe for
// use by one goroutine at a time; Precheck and Decrypt may be used
// concurrently with them and with each other (see the package comment);
// counters may be read concurrently.
type Inbound struct {
	SPI      uint32
	t        *transform
	window   *replayWindow
	local    []Selector // allowed inner destinations
	remote   []Selector // allowed inner sources
	sc       Scratch    // Open's
	d        Decrypted  // Open's
	Counters Counters
}

// NewInbound makes an inbound SA from our SPI and this direction's KEYMAT.
// window is the anti-replay window in packets (MinWindow..MaxWindow, a
// multiple of 64); local and remote are the negotiated traffic selectors
// that inner destinations and sources must fall in.
func NewInbound(spi uint32, s Suite, keymat []byte, window int, local, remote []Selector) (*Inbound, error) {
	if window < MinWindow || window > MaxWindow || window%64 != 0 {
		return nil, fmt.Errorf("esp: replay window %d is not a multiple of 64 in %d..%d", window, MinWindow, MaxWindow)
	}
	if len(local) == 0 || len(remote) == 0 {
		return nil, errors.New("esp: inbound SA needs traffic selectors")
	}
	t, err := newTransform(s, keymat, false)
	if err != nil {
		return nil, err
	}
	return &Inbound{SPI: spi, t: t, window: newReplayWindow(window), local: local, remote: remote}, nil
}

// PeekSPI returns the SPI of an ESP packet, to pick its Inbound SA.
func PeekSPI(pkt []byte) (uint32, bool) {
	if len(pkt) < espHdrLen {
		return 0, false
	}
	return binary.BigEndian.Uint32(pkt), true
}

// Open authenticates and decrypts the ESP packet pkt in place and returns
// the inner IPv4 packet, a sub-slice of pkt. A nil packet with a nil error
// is a dummy packet (next header 59) to be dropped silently. Each error is
// counted under its drop reason.
func (in *Inbound) Open(pkt []byte) ([]byte, error) {
	if err := in.Precheck(pkt); err != nil {
		return nil, err
	}
	in.Decrypt(&in.sc, pkt, &in.d)
	return in.Accept(&in.d)
}

// Decrypted is what Decrypt found in one packet, for Accept.
type Decrypted struct {
	inner  []byte
	seq    uint64
	authed bool // the ICV matched: seq is genuine
	reason DropReason
	err    error
}

func (in *Inbound) ivLen() int {
	if in.t.suite.Cipher == AESCBC {
		return cbcIVLen
	}
	return gcmIVLen
}

// Precheck drops, before any crypto, a packet too short to be ESP of this
// SA or whose sequence number the anti-replay window already refuses, and
// counts the drop. Passing it is no promise: Accept checks the window
// again. It may run concurrently with Accept.
func (in *Inbound) Precheck(pkt []byte) error {
	if len(pkt) < espHdrLen+in.ivLen()+trailerBase+in.t.icv || binary.BigEndian.Uint32(pkt) != in.SPI {
		in.Counters.Drops[DropMalformed].Add(1)
		return ErrMalformed
	}
	if !in.window.check(uint64(binary.BigEndian.Uint32(pkt[4:]))) {
		in.Counters.Drops[DropReplay].Add(1)
		return ErrReplay
	}
	return nil
}

// Decrypt authenticates and decrypts pkt in place into d, touching neither
// the anti-replay window nor the counters: pass d to Accept, in the order
// the packets arrived. Several goroutines may call it at once, each with
// its own Scratch.
func (in *Inbound) Decrypt(sc *Scratch, pkt []byte, d *Decrypted) {
	*d = Decrypted{}
	d.inner, d.seq, d.authed, d.reason, d.err = in.decrypt(sc, pkt)
}

// Accept finishes a packet Decrypt has worked on: if it authenticated, it
// checks and then moves the anti-replay window (RFC 4303 3.4.3: only after
// the ICV is verified), and it counts the packet or its drop. It returns
// the inner packet as Open does. Call it from one goroutine, in arrival
// order.
func (in *Inbound) Accept(d *Decrypted) ([]byte, error) {
	if !d.authed {
		in.Counters.Drops[d.reason].Add(1)
		return nil, d.err
	}
	if !in.window.check(d.seq) {
		in.Counters.Drops[DropReplay].Add(1)
		return nil, ErrReplay
	}
	// The sequence number is genuine, so move the window even if the
	// payload turns out to be unusable.
	in.window.update(d.seq)
	if d.err != nil {
		in.Counters.Drops[d.reason].Add(1)
		return nil, d.err
	}
	if d.inner != nil {
		in.Counters.Packets.Add(1)
		in.Counters.Bytes.Add(uint64(len(d.inner)))
	}
	return d.inner, nil
}

// decrypt returns the inner packet, the sequence number, whether the packet
// authenticated, and the drop reason and error if it is to be dropped.
func (in *Inbound) decrypt(sc *Scratch, pkt []byte) ([]byte, uint64, bool, DropReason, error) {
	t := in.t
	ivLen := in.ivLen()
	if len(pkt) < espHdrLen+ivLen+trailerBase+t.icv || binary.BigEndian.Uint32(pkt) != in.SPI {
		return nil, 0, false, DropMalformed, ErrMalformed
	}
	seq := uint64(binary.BigEndian.Uint32(pkt[4:]))
	ct := pkt[espHdrLen+ivLen : len(pkt)-t.icv]
	var pt []byte
	if t.suite.Cipher == AESGCM16 {
		copy(sc.nonce[:4], t.salt[:])
		copy(sc.nonce[4:], pkt[espHdrLen:espHdrLen+gcmIVLen])
		var err error
		pt, err = t.aead.Open(ct[:0], sc.nonce[:], pkt[espHdrLen+gcmIVLen:], pkt[:espHdrLen])
		if err != nil {
			return nil, seq, false, DropAuth, ErrAuth
		}
	} else {
		c := sc.cbcFor(t)
		authEnd := len(pkt) - t.icv
		if !hmac.Equal(c.hmac(pkt[:authEnd]), pkt[authEnd:]) {
			return nil, seq, false, DropAuth, ErrAuth
		}
		if len(ct)%16 != 0 {
			return nil, seq, true, DropMalformed, ErrMalformed
		}
		c.mode.(ivSetter).SetIV(pkt[espHdrLen : espHdrLen+cbcIVLen])
		c.mode.CryptBlocks(ct, ct)
		pt = ct
	}
	inner, reason, err := in.unwrap(pt)
	return inner, seq, true, reason, err
}

// unwrap checks the trailer and the inner packet of an authenticated,
// decrypted payload.
func (in *Inbound) unwrap(pt []byte) ([]byte, DropReason, error) {
	padLen := int(pt[len(pt)-2])
	next := pt[len(pt)-1]
	if padLen+trailerBase > len(pt) {
		return nil, DropMalformed, ErrMalformed
	}
	body := pt[:len(pt)-trailerBase-padLen]
	for i, p := range pt[len(body) : len(pt)-trailerBase] {
		if p != byte(i+1) { // RFC 4303 2.4: default padding is 1, 2, 3, ...
			return nil, DropMalformed, ErrMalformed
		}
	}
	switch next {
	case nextNoNext:
		return nil, 0, nil
	case nextIPv4:
	default:
		return nil, DropMalformed, ErrMalformed
	}
	if len(body) < ipv4HdrMin || body[0]>>4 != 4 || int(binary.BigEndian.Uint16(body[2:])) > len(body) {
		return nil, DropMalformed, ErrMalformed
	}
	src, dst := [4]byte(body[12:16]), [4]byte(body[16:20])
	if !anyContains(in.remote, src) || !anyContains(in.local, dst) {
		return nil, DropTS, ErrSelector
	}
	return body[:binary.BigEndian.Uint16(body[2:])], 0, nil
}

func anyContains(ss []Selector, a [4]byte) bool {
	for _, s := range ss {
		if s.contains(a) {
			return true
		}
	}
	return false
}

// UDP payload kinds on port 4500 (RFC 3948 section 2).
const (
	UDPKeepalive = iota // a one-byte 0xFF NAT keepalive
	UDPIKE              // IKE behind the four-byte non-ESP marker
	UDPESP              // an ESP packet
	UDPInvalid
)

// ClassifyUDP says what a UDP payload received on port 4500 carries.
func ClassifyUDP(p []byte) int {
	switch {
	case len(p) == 1 && p[0] == 0xff:
		return UDPKeepalive
	case len(p) >= 4 && p[0] == 0 && p[1] == 0 && p[2] == 0 && p[3] == 0:
		return UDPIKE
	case len(p) >= espHdrLen:
		return UDPESP
	}
	return UDPInvalid
}
