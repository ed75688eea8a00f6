// Package esp is the ESP data path of an IPsec tunnel (RFC 4303, tunnel mode,
// IPv4 inner packets) carried in UDP (RFC 3948). An Outbound SA seals inner
// packets into ESP; an Inbound SA authenticates, decrypts and checks them
// against its anti-replay window and traffic selectors. Both work in place
// on caller buffers and allocate nothing per packet.
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

// transform holds one direction's cipher state.
type transform struct {
	suite Suite
	aead  cipher.AEAD
	salt  [4]byte
	block cipher.Block
	cbc   cipher.BlockMode // with SetIV
	mac   hash.Hash
	icv   int
	sum   [64]byte // scratch for the HMAC output
	nonce [12]byte // scratch for the GCM nonce: salt, then explicit IV
}

type ivSetter interface{ SetIV([]byte) }

func newTransform(s Suite, keymat []byte, encrypt bool) (*transform, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if len(keymat) != s.KeyMatLen() {
		return nil, fmt.Errorf("esp: %s needs %d bytes of key material, got %d", s, s.KeyMatLen(), len(keymat))
	}
	t := &transform{suite: s}
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
	var zero [16]byte
	if encrypt {
		t.cbc = cipher.NewCBCEncrypter(block, zero[:])
	} else {
		t.cbc = cipher.NewCBCDecrypter(block, zero[:])
	}
	if _, ok := t.cbc.(ivSetter); !ok {
		return nil, errors.New("esp: CBC mode cannot reset its IV")
	}
	newHash, _, icv := s.Integ.hash()
	t.mac = hmac.New(newHash, keymat[s.KeyLen:])
	t.icv = icv
	return t, nil
}

func (t *transform) hmac(data []byte) []byte {
	t.mac.Reset()
	t.mac.Write(data)
	return t.mac.Sum(t.sum[:0])[:t.icv]
}

// Outbound is the sending half of a Child SA. Seal is safe for use by one
// goroutine at a time; counters may be read concurrently.
type Outbound struct {
	SPI      uint32
	t        *transform
	seq      atomic.Uint64
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
// returns it. buf must have room for len(inner)+Overhead bytes; inner may
// not overlap buf.
func (o *Outbound) Seal(buf, inner []byte) ([]byte, error) {
	seq := o.seq.Add(1)
	if seq > maxSeq {
		o.seq.Store(maxSeq + 1)
		return nil, ErrSeqExhausted
	}
	t := o.t
	var ivLen, align int
	if t.suite.Cipher == AESGCM16 {
		ivLen, align = gcmIVLen, 4
	} else {
		ivLen, align = cbcIVLen, 16
	}
	plen := len(inner) + trailerBase
	pad := (align - plen%align) % align
	plen += pad
	total := espHdrLen + ivLen + plen + t.icv
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
		copy(t.nonce[:4], t.salt[:])
		copy(t.nonce[4:], iv)
		t.aead.Seal(pt[:0], t.nonce[:], pt, b[:espHdrLen])
		o.Counters.Packets.Add(1)
		o.Counters.Bytes.Add(uint64(len(inner)))
		return b, nil
	}
	iv := b[espHdrLen : espHdrLen+cbcIVLen]
	if _, err := rand.Read(iv); err != nil {
		return nil, fmt.Errorf("esp: IV: %w", err)
	}
	t.cbc.(ivSetter).SetIV(iv)
	t.cbc.CryptBlocks(pt, pt)
	authEnd := espHdrLen + ivLen + plen
	copy(b[authEnd:], t.hmac(b[:authEnd]))
	o.Counters.Packets.Add(1)
	o.Counters.Bytes.Add(uint64(len(inner)))
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

// Inbound is the receiving half of a Child SA. Open is safe for use by one
// goroutine at a time; counters may be read concurrently.
type Inbound struct {
	SPI      uint32
	t        *transform
	window   replayWindow
	local    []Selector // allowed inner destinations
	remote   []Selector // allowed inner sources
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
	inner, reason, err := in.open(pkt)
	if err != nil {
		in.Counters.Drops[reason].Add(1)
		return nil, err
	}
	if inner != nil {
		in.Counters.Packets.Add(1)
		in.Counters.Bytes.Add(uint64(len(inner)))
	}
	return inner, nil
}

func (in *Inbound) open(pkt []byte) ([]byte, DropReason, error) {
	t := in.t
	ivLen := gcmIVLen
	if t.suite.Cipher == AESCBC {
		ivLen = cbcIVLen
	}
	if len(pkt) < espHdrLen+ivLen+trailerBase+t.icv || binary.BigEndian.Uint32(pkt) != in.SPI {
		return nil, DropMalformed, ErrMalformed
	}
	seq := uint64(binary.BigEndian.Uint32(pkt[4:]))
	if !in.window.check(seq) {
		return nil, DropReplay, ErrReplay
	}
	ct := pkt[espHdrLen+ivLen : len(pkt)-t.icv]
	var pt []byte
	if t.suite.Cipher == AESGCM16 {
		copy(t.nonce[:4], t.salt[:])
		copy(t.nonce[4:], pkt[espHdrLen:espHdrLen+gcmIVLen])
		var err error
		pt, err = t.aead.Open(ct[:0], t.nonce[:], pkt[espHdrLen+gcmIVLen:], pkt[:espHdrLen])
		if err != nil {
			return nil, DropAuth, ErrAuth
		}
	} else {
		authEnd := len(pkt) - t.icv
		if !hmac.Equal(t.hmac(pkt[:authEnd]), pkt[authEnd:]) {
			return nil, DropAuth, ErrAuth
		}
		if len(ct)%16 != 0 {
			return nil, DropMalformed, ErrMalformed
		}
		t.cbc.(ivSetter).SetIV(pkt[espHdrLen : espHdrLen+cbcIVLen])
		t.cbc.CryptBlocks(ct, ct)
		pt = ct
	}
	// Authenticated: the sequence number is genuine, so move the window
	// even if the payload turns out to be unusable.
	in.window.update(seq)
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
