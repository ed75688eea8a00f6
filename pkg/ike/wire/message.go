// Package wire encodes and decodes IKEv2 messages (RFC 7296 section 3):
// the header, the payloads cgwd uses and the SK payload's framing. It holds
// no session or key state: an SK payload is sealed and opened by a Cipher
// the caller supplies. Everything it parses is bounded by the parsing
// limits below, and whatever it rejects wraps ErrMalformed.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/cgwd/cgwd/pkg/proposal"
)

// Exchange types.
const (
	IKESAInit     = 34
	IKEAuth       = 35
	CreateChildSA = 36
	Informational = 37
)

// Header flags.
const (
	FlagInitiator = 0x08
	FlagResponse  = 0x20
)

// PayloadType identifies an IKEv2 payload.
type PayloadType uint8

// Payload types.
const (
	PayloadNone  PayloadType = 0
	PayloadSA    PayloadType = 33
	PayloadKE    PayloadType = 34
	PayloadIDi   PayloadType = 35
	PayloadIDr   PayloadType = 36
	PayloadAuth  PayloadType = 39
	PayloadNonce PayloadType = 40
	PayloadN     PayloadType = 41
	PayloadD     PayloadType = 42
	PayloadV     PayloadType = 43
	PayloadTSi   PayloadType = 44
	PayloadTSr   PayloadType = 45
	PayloadSK    PayloadType = 46
)

// Protocol IDs in proposals, notifies and deletes.
const (
	ProtoIKE = proposal.ProtoIKE
	ProtoAH  = proposal.ProtoAH
	ProtoESP = proposal.ProtoESP
)

// ID types and the AUTH method cgwd uses.
const (
	IDIPv4Addr = 1
	IDFQDN     = 2
	AuthPSK    = 2
)

// Notify message types cgwd sends or acts on.
const (
	NUnsupportedCriticalPayload = 1
	NInvalidIKESPI              = 4
	NInvalidMajorVersion        = 5
	NInvalidSyntax              = 7
	NInvalidMessageID           = 9
	NInvalidSPI                 = 11
	NNoProposalChosen           = 14
	NInvalidKEPayload           = 17
	NAuthenticationFailed       = 24
	NSinglePairRequired         = 34
	NNoAdditionalSAs            = 35
	NInternalAddressFailure     = 36
	NFailedCPRequired           = 37
	NTSUnacceptable             = 38
	NTemporaryFailure           = 43
	NChildSANotFound            = 44
	NInitialContact             = 16384
	NNATDetectionSourceIP       = 16388
	NNATDetectionDestinationIP  = 16389
	NCookie                     = 16390
	NUseTransportMode           = 16391
	NRekeySA                    = 16393
)

var notifyNames = map[uint16]string{
	NUnsupportedCriticalPayload: "UNSUPPORTED_CRITICAL_PAYLOAD", NInvalidIKESPI: "INVALID_IKE_SPI",
	NInvalidMajorVersion: "INVALID_MAJOR_VERSION",
	NInvalidSyntax:       "INVALID_SYNTAX", NInvalidMessageID: "INVALID_MESSAGE_ID", NInvalidSPI: "INVALID_SPI",
	NNoProposalChosen: "NO_PROPOSAL_CHOSEN", NInvalidKEPayload: "INVALID_KE_PAYLOAD",
	NAuthenticationFailed: "AUTHENTICATION_FAILED", NSinglePairRequired: "SINGLE_PAIR_REQUIRED",
	NNoAdditionalSAs: "NO_ADDITIONAL_SAS", NInternalAddressFailure: "INTERNAL_ADDRESS_FAILURE",
	NFailedCPRequired: "FAILED_CP_REQUIRED", NTSUnacceptable: "TS_UNACCEPTABLE",
	NTemporaryFailure: "TEMPORARY_FAILURE", NChildSANotFound: "CHILD_SA_NOT_FOUND",
	NInitialContact: "INITIAL_CONTACT", NNATDetectionSourceIP: "NAT_DETECTION_SOURCE_IP",
	NNATDetectionDestinationIP: "NAT_DETECTION_DESTINATION_IP", NCookie: "COOKIE",
	NUseTransportMode: "USE_TRANSPORT_MODE", NRekeySA: "REKEY_SA",
}

// NotifyName is the RFC name of a notify type.
func NotifyName(t uint16) string {
	if n, ok := notifyNames[t]; ok {
		return n
	}
	return fmt.Sprintf("NOTIFY_%d", t)
}

// Header is the fixed IKE header.
type Header struct {
	SPIi, SPIr uint64
	Exchange   uint8
	Flags      uint8
	MsgID      uint32
}

// IsResponse reports whether the R flag is set.
func (h Header) IsResponse() bool { return h.Flags&FlagResponse != 0 }

// HeaderLen is the length of the fixed IKE header.
const HeaderLen = 28

// Transform is one transform of a proposal (see package proposal).
type Transform = proposal.Transform

// Proposal is one proposal of an SA payload (see package proposal).
type Proposal = proposal.Proposal

// Payload is one IKE payload.
type Payload interface{ Type() PayloadType }

// SA is the security association payload.
type SA struct{ Proposals []Proposal }

// KE is the key exchange payload.
type KE struct {
	Group uint16
	Data  []byte
}

// Nonce is the Ni/Nr payload.
type Nonce struct{ Data []byte }

// ID is an IDi or IDr payload.
type ID struct {
	Responder bool // IDr rather than IDi
	IDType    uint8
	Data      []byte
}

// Auth is the authentication payload.
type Auth struct {
	Method uint8
	Data   []byte
}

// Notify is the N payload.
type Notify struct {
	Protocol   uint8
	SPI        []byte
	NotifyType uint16
	Data       []byte
}

// Delete is the D payload.
type Delete struct {
	Protocol uint8
	SPIs     [][]byte
}

// Selector is one IPv4 address-range traffic selector.
type Selector struct {
	IPProto            uint8
	StartPort, EndPort uint16
	Start, End         netip.Addr
}

// TS is a TSi or TSr payload.
type TS struct {
	Responder bool // TSr rather than TSi
	Selectors []Selector
}

// Raw is a payload cgwd does not interpret (vendor ID, CERTREQ, ...).
type Raw struct {
	PType    PayloadType
	Critical bool
	Body     []byte
}

// Type implementations.
func (*SA) Type() PayloadType     { return PayloadSA }
func (*KE) Type() PayloadType     { return PayloadKE }
func (*Nonce) Type() PayloadType  { return PayloadNonce }
func (*Auth) Type() PayloadType   { return PayloadAuth }
func (*Notify) Type() PayloadType { return PayloadN }
func (*Delete) Type() PayloadType { return PayloadD }
func (r *Raw) Type() PayloadType  { return r.PType }

// Type is IDi or IDr.
func (p *ID) Type() PayloadType {
	if p.Responder {
		return PayloadIDr
	}
	return PayloadIDi
}

// Type is TSi or TSr.
func (p *TS) Type() PayloadType {
	if p.Responder {
		return PayloadTSr
	}
	return PayloadTSi
}

// Message is an IKE message. Encrypted says its payloads travel in an SK payload.
type Message struct {
	Header
	Encrypted bool
	Payloads  []Payload
}

// Notify returns the first notify of type t, or nil.
func (m *Message) Notify(t uint16) *Notify {
	for _, p := range m.Payloads {
		if n, ok := p.(*Notify); ok && n.NotifyType == t {
			return n
		}
	}
	return nil
}

// ErrorNotify returns the first error notify (type below 16384), or nil.
func (m *Message) ErrorNotify() *Notify {
	for _, p := range m.Payloads {
		if n, ok := p.(*Notify); ok && n.NotifyType < 16384 {
			return n
		}
	}
	return nil
}

// Get returns the first payload of type t, or nil.
func (m *Message) Get(t PayloadType) Payload {
	for _, p := range m.Payloads {
		if p.Type() == t {
			return p
		}
	}
	return nil
}

func be16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }

// Body is a payload's content after its generic header; RFC 7296 section
// 2.15 signs an ID payload's.
func Body(p Payload) []byte {
	var b []byte
	switch p := p.(type) {
	case *SA:
		for i, pr := range p.Proposals {
			var pb []byte
			for j, t := range pr.Transforms {
				last := byte(3)
				if j == len(pr.Transforms)-1 {
					last = 0
				}
				tl := 8
				if t.KeyLen != 0 {
					tl = 12
				}
				pb = append(pb, last, 0)
				pb = be16(pb, uint16(tl))
				pb = append(pb, t.Type, 0)
				pb = be16(pb, t.ID)
				if t.KeyLen != 0 {
					pb = be16(pb, 0x800e) // TV attribute: key length
					pb = be16(pb, t.KeyLen)
				}
			}
			last := byte(2)
			if i == len(p.Proposals)-1 {
				last = 0
			}
			b = append(b, last, 0)
			b = be16(b, uint16(8+len(pr.SPI)+len(pb)))
			b = append(b, pr.Num, pr.Protocol, byte(len(pr.SPI)), byte(len(pr.Transforms)))
			b = append(b, pr.SPI...)
			b = append(b, pb...)
		}
	case *KE:
		b = be16(b, p.Group)
		b = append(b, 0, 0)
		b = append(b, p.Data...)
	case *Nonce:
		b = append(b, p.Data...)
	case *ID:
		b = append(b, p.IDType, 0, 0, 0)
		b = append(b, p.Data...)
	case *Auth:
		b = append(b, p.Method, 0, 0, 0)
		b = append(b, p.Data...)
	case *Cert:
		b = append(b, p.Encoding)
		b = append(b, p.Data...)
	case *CertReq:
		b = append(b, p.Encoding)
		b = append(b, p.Data...)
	case *Notify:
		b = append(b, p.Protocol, byte(len(p.SPI)))
		b = be16(b, p.NotifyType)
		b = append(b, p.SPI...)
		b = append(b, p.Data...)
	case *Delete:
		size := 0 // RFC 7296 section 3.11: 0 for IKE, 4 for AH and ESP
		if len(p.SPIs) > 0 {
			size = len(p.SPIs[0])
		} else if p.Protocol == ProtoAH || p.Protocol == ProtoESP {
			size = 4
		}
		b = append(b, p.Protocol, byte(size))
		b = be16(b, uint16(len(p.SPIs)))
		for _, s := range p.SPIs {
			b = append(b, s...)
		}
	case *TS:
		b = append(b, byte(len(p.Selectors)), 0, 0, 0)
		for _, s := range p.Selectors {
			b = append(b, tsIPv4, s.IPProto)
			b = be16(b, 16)
			b = be16(b, s.StartPort)
			b = be16(b, s.EndPort)
			a, z := s.Start.As4(), s.End.As4()
			b = append(b, a[:]...)
			b = append(b, z[:]...)
		}
	case *Raw:
		b = append(b, p.Body...)
	}
	return b
}

// encodeChain encodes payloads as a chain and returns the first type.
func encodeChain(ps []Payload) (PayloadType, []byte) {
	var b []byte
	for i, p := range ps {
		next := PayloadNone
		if i+1 < len(ps) {
			next = ps[i+1].Type()
		}
		bd := Body(p)
		crit := byte(0)
		if r, ok := p.(*Raw); ok && r.Critical {
			crit = 0x80
		}
		b = append(b, byte(next), crit)
		b = be16(b, uint16(4+len(bd)))
		b = append(b, bd...)
	}
	if len(ps) == 0 {
		return PayloadNone, nil
	}
	return ps[0].Type(), b
}

// AppendHeader appends header h, whose first payload has type next, of a
// message of length bytes.
func AppendHeader(b []byte, h Header, next PayloadType, length int) []byte {
	b = binary.BigEndian.AppendUint64(b, h.SPIi)
	b = binary.BigEndian.AppendUint64(b, h.SPIr)
	b = append(b, byte(next), 0x20, h.Exchange, h.Flags)
	b = binary.BigEndian.AppendUint32(b, h.MsgID)
	return binary.BigEndian.AppendUint32(b, uint32(length))
}

// Cipher seals and opens the SK payload of one direction (RFC 7296
// section 3.14); pkg/ike's keys implement it.
type Cipher interface {
	// SealedLen is the length of the SK payload body (IV, ciphertext,
	// padding and ICV) that Seal makes of plainLen bytes.
	SealedLen(plainLen int) int
	// Seal appends to head, the message up to the SK payload's body, the
	// sealed plain, and returns the whole message.
	Seal(head, plain []byte) []byte
	// Open verifies and decrypts the SK payload whose body starts at
	// msg[off:], msg being the whole message, and returns its content.
	// A failure that is not an integrity-check failure wraps ErrMalformed.
	Open(msg []byte, off int) ([]byte, error)
}

// Marshal encodes m; sk must be set when m.Encrypted.
func (m *Message) Marshal(sk Cipher) ([]byte, error) {
	first, chain := encodeChain(m.Payloads)
	if !m.Encrypted {
		return append(AppendHeader(nil, m.Header, first, HeaderLen+len(chain)), chain...), nil
	}
	if sk == nil {
		return nil, errors.New("no keys to encrypt the message")
	}
	return SealChain(sk, m.Header, first, chain), nil
}

// SealChain makes a message of header h and one SK payload holding chain,
// whose first payload has type first.
func SealChain(sk Cipher, h Header, first PayloadType, chain []byte) []byte {
	skLen := 4 + sk.SealedLen(len(chain))
	head := AppendHeader(nil, h, PayloadSK, HeaderLen+skLen)
	head = append(head, byte(first), 0)
	head = be16(head, uint16(skLen))
	return sk.Seal(head, chain)
}

// Parsing limits. Everything below is read before the peer is
// authenticated, so each limit bounds what one datagram can make cgwd
// allocate (see README, "IKE parsing limits", and AllocBudget): the
// structures a message decodes to are capped by maxPayloads and maxItems,
// and everything else is a copy of at most the datagram's bytes.
const (
	// MaxMessageLen is the longest IKE message cgwd parses. The header's
	// length field has 32 bits, but a UDP datagram carries at most 65,507
	// bytes over IPv4 and pkg/tunnel/ipsec reads into 65,536-byte buffers.
	MaxMessageLen = 65535
	maxPayloads   = 64 // per message: outer chain, SK payload and inner chain together
	maxProposals  = 64 // per SA payload
	maxTransforms = 64 // per proposal
	maxAttributes = 16 // per transform
	maxSelectors  = 32 // per TS payload
	// maxItems caps the proposals, traffic selectors and Delete SPIs of one
	// message together: each decodes to up to 56 bytes, more than the 4 to
	// 16 bytes it takes on the wire.
	maxItems     = 256
	maxKELen     = 1024 // KE data: the largest MODP group has 8192 bits
	minNonceLen  = 16   // RFC 7296 section 3.9
	maxNonceLen  = 256
	maxCookieLen = 64 // RFC 7296 section 2.6: COOKIE data is 1 to 64 bytes
)

// AllocBudget is the most the codec may allocate for one n-byte datagram,
// whatever its content; the fuzz targets hold Parse and PeekInit to it.
// The 64 KiB cover the decoded structures, which maxPayloads and maxItems
// bound whatever the length (64 payloads and 256 proposals, selectors or
// SPIs of at most 56 bytes each: under 24 KiB), the MAC state and the
// error values. The 4 bytes per datagram byte cover
// what grows with the length: the decrypted SK body (1x), the copies of
// payload data the Message keeps (at most 1x), the transform arrays (6
// bytes per transform of at least 8 bytes: under 1x) and append's slack.
func AllocBudget(n int) uint64 { return 64<<10 + 4*uint64(n) }

// ErrMalformed is wrapped (errors.Is) by every error that says a message
// breaks RFC 7296's encoding or one of the parsing limits: the header, a
// payload chain, a payload's structure, an unsupported critical payload, or
// the layout of a decrypted SK payload. An SK payload that fails its
// integrity check fails with the Cipher's own error instead.
var ErrMalformed = errors.New("malformed IKE message")

// ErrInvalidSyntax is wrapped, next to ErrMalformed, by the errors of an SK
// payload whose integrity check passed but whose content is malformed: the
// peer holding the keys sent it, so RFC 7296 section 3.10.1 allows
// answering INVALID_SYNTAX (a CriticalError found there is wrapped too).
var ErrInvalidSyntax = errors.New("in a verified encrypted payload")

// ParseError is a structural Parse failure; it wraps ErrMalformed. Made from
// a constant it converts to error without allocating, which PeekInit needs.
type ParseError string

func (e ParseError) Error() string { return string(e) }
func (e ParseError) Unwrap() error { return ErrMalformed }

// ParseHeader decodes the fixed header and checks version and length.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	switch {
	case len(b) < HeaderLen:
		return h, ParseError("message shorter than the IKE header")
	case len(b) > MaxMessageLen:
		return h, ParseError("message longer than 65535 bytes")
	case b[17]>>4 == 1:
		return h, ErrIKEv1
	case b[17]>>4 != 2:
		return h, ParseError("IKE major version is not 2")
	case int(binary.BigEndian.Uint32(b[24:])) != len(b):
		return h, ParseError("IKE header length does not match the datagram")
	}
	h.SPIi = binary.BigEndian.Uint64(b)
	h.SPIr = binary.BigEndian.Uint64(b[8:])
	h.Exchange, h.Flags = b[18], b[19]
	h.MsgID = binary.BigEndian.Uint32(b[20:])
	return h, nil
}

// ErrIKEv1 is ParseHeader's error for a message of ISAKMP major version 1:
// the peer speaks IKEv1 (RFC 2408/2409), not IKEv2.
const ErrIKEv1 = ParseError("IKE major version 1: an IKEv1 (ISAKMP) message")

// IKEv1 exchange types (RFC 2408 3.1, RFC 2409 5.5), for naming what an
// IKEv1 peer sent.
var v1Exchanges = map[uint8]string{1: "base", 2: "main mode", 3: "authentication only", 4: "aggressive mode",
	5: "informational", 32: "quick mode", 33: "new group mode"}

// V1ExchangeName names the exchange of an IKEv1 message b (at least
// HeaderLen bytes: ParseHeader returned ErrIKEv1 for it).
func V1ExchangeName(b []byte) string {
	if n, ok := v1Exchanges[b[18]]; ok {
		return n
	}
	return fmt.Sprintf("exchange %d", b[18])
}

// CriticalError is returned for an unknown payload marked critical; it wraps
// ErrMalformed.
type CriticalError PayloadType

func (e CriticalError) Error() string {
	return fmt.Sprintf("unsupported critical payload %d", uint8(e))
}

func (e CriticalError) Unwrap() error { return ErrMalformed }

// quota counts what one message has used of maxPayloads and maxItems.
type quota struct{ payloads, items int }

func (q *quota) payload() error {
	if q.payloads++; q.payloads > maxPayloads {
		return ParseError("more than 64 payloads in one message")
	}
	return nil
}

func (q *quota) take(n int) error {
	if q.items += n; q.items > maxItems {
		return ParseError("more than 256 proposals, traffic selectors and Delete SPIs in one message")
	}
	return nil
}

// chain walks a payload chain (RFC 7296 section 3.2) without copying.
type chain struct {
	b    []byte
	off  int         // where the next payload starts
	next PayloadType // its type; PayloadNone at the end
}

// payload returns the next payload's type, critical bit and body, or
// PayloadNone once the chain has ended, which must be at the end of b. It
// charges q for the payload. (q is not a field of chain: returned bodies
// point into c.b, and escape analysis would move a quota reached through c
// to the heap.)
func (c *chain) payload(q *quota) (PayloadType, bool, []byte, error) {
	if c.next == PayloadNone {
		if c.off != len(c.b) {
			return PayloadNone, false, nil, ParseError("data after the last payload")
		}
		return PayloadNone, false, nil, nil
	}
	if err := q.payload(); err != nil {
		return PayloadNone, false, nil, err
	}
	rest := c.b[c.off:]
	if len(rest) < 4 {
		return PayloadNone, false, nil, ParseError("truncated payload header")
	}
	plen := int(binary.BigEndian.Uint16(rest[2:]))
	if plen < 4 || plen > len(rest) {
		return PayloadNone, false, nil, ParseError("payload length overruns the message")
	}
	t := c.next
	c.next, c.off = PayloadType(rest[0]), c.off+plen
	return t, rest[1]&0x80 != 0, rest[4:plen], nil
}

// Parse decodes a whole message; sk (may be nil) opens an SK payload.
func Parse(b []byte, sk Cipher) (*Message, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	m := &Message{Header: h}
	var q quota
	c := chain{b: b, off: HeaderLen, next: PayloadType(b[16])}
	for {
		start := c.off
		t, critical, body, err := c.payload(&q)
		if err != nil {
			return nil, err
		}
		switch t {
		case PayloadNone:
			return m, nil
		case PayloadSK:
			if c.off != len(b) {
				return nil, ParseError("encrypted payload is not the last payload")
			}
			if sk == nil {
				return nil, ParseError("encrypted payload but no keys")
			}
			inner, err := sk.Open(b, start+4)
			if err != nil {
				return nil, err
			}
			ps, err := parseChain(c.next, inner, &q)
			if err != nil {
				return nil, fmt.Errorf("%w %w", err, ErrInvalidSyntax)
			}
			m.Encrypted = true
			m.Payloads = append(m.Payloads, ps...)
			return m, nil
		}
		p, err := parsePayload(t, critical, body, &q)
		if err != nil {
			return nil, err
		}
		m.Payloads = append(m.Payloads, p)
	}
}

// parseChain decodes the payload chain b whose first payload has type next.
func parseChain(next PayloadType, b []byte, q *quota) ([]Payload, error) {
	c := chain{b: b, next: next}
	var ps []Payload
	for {
		t, critical, body, err := c.payload(q)
		if err != nil || t == PayloadNone {
			return ps, err
		}
		p, err := parsePayload(t, critical, body, q)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// checkPayload validates the body of a payload of type t against RFC 7296
// section 3 and the parsing limits, charging q for its items. It allocates
// nothing; parsePayload and PeekInit share it.
func checkPayload(t PayloadType, critical bool, b []byte, q *quota) error {
	switch t {
	case PayloadSA:
		n, err := scanSA(b)
		if err != nil {
			return err
		}
		return q.take(n)
	case PayloadKE:
		if len(b) < 4 {
			return ParseError("KE payload shorter than 4 bytes")
		}
		if len(b)-4 > maxKELen {
			return ParseError("KE data longer than 1024 bytes")
		}
	case PayloadNonce:
		if len(b) < minNonceLen || len(b) > maxNonceLen {
			return ParseError("nonce not 16 to 256 bytes long")
		}
	case PayloadIDi, PayloadIDr:
		if len(b) < 4 {
			return ParseError("ID payload shorter than 4 bytes")
		}
	case PayloadAuth:
		if len(b) < 4 {
			return ParseError("AUTH payload shorter than 4 bytes")
		}
	case PayloadCert, PayloadCertReq:
		return checkCert(t, b)
	case PayloadN:
		_, err := checkNotify(b)
		return err
	case PayloadD:
		n, err := checkDelete(b)
		if err != nil {
			return err
		}
		return q.take(n)
	case PayloadTSi, PayloadTSr:
		n, _, err := scanTS(b)
		if err != nil {
			return err
		}
		return q.take(n)
	case PayloadSK:
		return ParseError("nested encrypted payload")
	default:
		if critical {
			return CriticalError(t)
		}
	}
	return nil
}

// parsePayload decodes one payload body, copying what it keeps.
func parsePayload(t PayloadType, critical bool, b []byte, q *quota) (Payload, error) {
	if err := checkPayload(t, critical, b, q); err != nil {
		return nil, err
	}
	switch t {
	case PayloadSA:
		return buildSA(b), nil
	case PayloadKE:
		return &KE{Group: binary.BigEndian.Uint16(b), Data: clone(b[4:])}, nil
	case PayloadNonce:
		return &Nonce{Data: clone(b)}, nil
	case PayloadIDi, PayloadIDr:
		return &ID{Responder: t == PayloadIDr, IDType: b[0], Data: clone(b[4:])}, nil
	case PayloadAuth:
		return &Auth{Method: b[0], Data: clone(b[4:])}, nil
	case PayloadCert:
		return &Cert{Encoding: b[0], Data: clone(b[1:])}, nil
	case PayloadCertReq:
		return &CertReq{Encoding: b[0], Data: clone(b[1:])}, nil
	case PayloadN:
		n := 4 + int(b[1])
		return &Notify{Protocol: b[0], NotifyType: binary.BigEndian.Uint16(b[2:]), SPI: clone(b[4:n]), Data: clone(b[n:])}, nil
	case PayloadD:
		d := &Delete{Protocol: b[0]}
		if n := int(binary.BigEndian.Uint16(b[2:])); n > 0 {
			spis := clone(b[4:]) // one copy for all of them
			d.SPIs = make([][]byte, n)
			for i := range d.SPIs {
				d.SPIs[i] = spis[4*i : 4*i+4 : 4*i+4]
			}
		}
		return d, nil
	case PayloadTSi, PayloadTSr:
		return buildTS(t == PayloadTSr, b), nil
	}
	return &Raw{PType: t, Body: clone(b)}, nil
}

// checkNotify validates an N payload body (RFC 7296 section 3.10) and
// returns the length of its SPI.
func checkNotify(b []byte) (int, error) {
	if len(b) < 4 {
		return 0, ParseError("notify payload shorter than 4 bytes")
	}
	spi := int(b[1])
	switch {
	case spi == 0:
	case spi == 4 && (b[0] == ProtoAH || b[0] == ProtoESP):
	case spi == 8 && b[0] == ProtoIKE:
	default:
		return 0, ParseError("notify payload: SPI size is not 0, 4 for AH or ESP, or 8 for IKE")
	}
	if len(b) < 4+spi {
		return 0, ParseError("notify payload: SPI overruns the payload")
	}
	if binary.BigEndian.Uint16(b[2:]) == NCookie {
		if n := len(b) - 4 - spi; n < 1 || n > maxCookieLen {
			return 0, ParseError("COOKIE notify data not 1 to 64 bytes long")
		}
	}
	return spi, nil
}

// checkDelete validates a D payload body (RFC 7296 section 3.11) and
// returns its number of SPIs: none for the IKE SA, 4-byte ones for AH and
// ESP, which must fill the payload exactly.
func checkDelete(b []byte) (int, error) {
	if len(b) < 4 {
		return 0, ParseError("delete payload shorter than 4 bytes")
	}
	size, n := int(b[1]), int(binary.BigEndian.Uint16(b[2:]))
	switch b[0] {
	case ProtoIKE:
		if size != 0 || n != 0 || len(b) != 4 {
			return 0, ParseError("delete payload: an IKE SA deletion carries SPIs")
		}
	case ProtoAH, ProtoESP:
		if size != 4 {
			return 0, ParseError("delete payload: SPI size for AH or ESP is not 4")
		}
		if len(b)-4 != 4*n {
			return 0, ParseError("delete payload: SPI count does not match its length")
		}
	default:
		return 0, ParseError("delete payload: protocol is not IKE, AH or ESP")
	}
	return n, nil
}

// parseSA decodes an SA payload body.
func parseSA(b []byte, q *quota) (*SA, error) {
	if err := checkPayload(PayloadSA, false, b, q); err != nil {
		return nil, err
	}
	return buildSA(b), nil
}

// scanSA validates an SA payload body (RFC 7296 section 3.3) and returns
// its number of proposals.
func scanSA(b []byte) (int, error) {
	n := 0
	for more := true; more; n++ {
		if n == maxProposals {
			return 0, ParseError("SA payload: more than 64 proposals")
		}
		if len(b) < 8 {
			return 0, ParseError("SA payload: truncated proposal")
		}
		switch b[0] {
		case 0:
			more = false
		case 2:
		default:
			return 0, ParseError("SA payload: proposal's Last Substruc is not 0 or 2")
		}
		plen := int(binary.BigEndian.Uint16(b[2:]))
		if plen < 8 || plen > len(b) {
			return 0, ParseError("SA payload: proposal length overruns the payload")
		}
		if err := scanProposal(b[:plen]); err != nil {
			return 0, err
		}
		b = b[plen:]
	}
	if len(b) != 0 {
		return 0, ParseError("SA payload: data after the last proposal")
	}
	return n, nil
}

// scanProposal validates one proposal substructure of at least 8 bytes.
func scanProposal(p []byte) error {
	spiSize, nt := int(p[6]), int(p[7])
	switch {
	case p[5] == ProtoIKE && (spiSize == 0 || spiSize == 8):
	case (p[5] == ProtoAH || p[5] == ProtoESP) && spiSize == 4:
	default:
		return ParseError("SA payload: proposal's SPI size does not fit its protocol (IKE 0 or 8, AH and ESP 4)")
	}
	if 8+spiSize > len(p) {
		return ParseError("SA payload: SPI overruns the proposal")
	}
	if nt > maxTransforms {
		return ParseError("SA payload: more than 64 transforms in a proposal")
	}
	tb := p[8+spiSize:]
	for i := 0; i < nt; i++ {
		if len(tb) < 8 {
			return ParseError("SA payload: truncated transform")
		}
		if last := i == nt-1; tb[0] != 0 && last || tb[0] != 3 && !last {
			return ParseError("SA payload: transform's Last Substruc disagrees with the transform count")
		}
		tl := int(binary.BigEndian.Uint16(tb[2:]))
		if tl < 8 || tl > len(tb) {
			return ParseError("SA payload: transform length overruns the proposal")
		}
		if err := scanAttributes(tb[8:tl]); err != nil {
			return err
		}
		tb = tb[tl:]
	}
	if len(tb) != 0 {
		return ParseError("SA payload: data after the last transform")
	}
	return nil
}

// scanAttributes validates a transform's attributes (RFC 7296 section
// 3.3.5): 4-byte TV ones, or TLV ones that fit.
func scanAttributes(ab []byte) error {
	for n := 0; len(ab) > 0; n++ {
		if n == maxAttributes {
			return ParseError("SA payload: more than 16 attributes in a transform")
		}
		if len(ab) < 4 {
			return ParseError("SA payload: truncated attribute")
		}
		al := 4
		if ab[0]&0x80 == 0 { // TLV
			al += int(binary.BigEndian.Uint16(ab[2:]))
		}
		if al > len(ab) {
			return ParseError("SA payload: attribute overruns the transform")
		}
		ab = ab[al:]
	}
	return nil
}

// buildSA decodes an SA payload body that scanSA accepted.
func buildSA(b []byte) *SA {
	n, _ := scanSA(b)
	sa := &SA{Proposals: make([]Proposal, n)}
	for i := range sa.Proposals {
		plen := int(binary.BigEndian.Uint16(b[2:]))
		p := b[:plen]
		b = b[plen:]
		spiSize, nt := int(p[6]), int(p[7])
		pr := &sa.Proposals[i]
		pr.Num, pr.Protocol, pr.SPI = p[4], p[5], clone(p[8:8+spiSize])
		if nt > 0 {
			pr.Transforms = make([]Transform, nt)
		}
		tb := p[8+spiSize:]
		for j := range pr.Transforms {
			tl := int(binary.BigEndian.Uint16(tb[2:]))
			tr := &pr.Transforms[j]
			tr.Type, tr.ID = tb[4], binary.BigEndian.Uint16(tb[6:])
			for ab := tb[8:tl]; len(ab) > 0; {
				if ab[0]&0x80 == 0 { // TLV: skip it
					ab = ab[4+int(binary.BigEndian.Uint16(ab[2:])):]
					continue
				}
				if binary.BigEndian.Uint16(ab)&0x7fff == 14 { // key length
					tr.KeyLen = binary.BigEndian.Uint16(ab[2:])
				}
				ab = ab[4:]
			}
			tb = tb[tl:]
		}
	}
	return sa
}

// parseTS decodes a TSi or TSr payload body.
func parseTS(responder bool, b []byte, q *quota) (*TS, error) {
	t := PayloadTSi
	if responder {
		t = PayloadTSr
	}
	if err := checkPayload(t, false, b, q); err != nil {
		return nil, err
	}
	return buildTS(responder, b), nil
}

// scanTS validates a TS payload body (RFC 7296 section 3.13) and returns
// its number of selectors and how many of them are IPv4 ranges.
func scanTS(b []byte) (n, v4 int, err error) {
	if len(b) < 4 {
		return 0, 0, ParseError("TS payload shorter than 4 bytes")
	}
	n = int(b[0])
	if n > maxSelectors {
		return 0, 0, ParseError("TS payload: more than 32 selectors")
	}
	b = b[4:]
	for i := 0; i < n; i++ {
		if len(b) < 8 {
			return 0, 0, ParseError("TS payload: truncated selector")
		}
		sl := int(binary.BigEndian.Uint16(b[2:]))
		if sl < 8 || sl > len(b) {
			return 0, 0, ParseError("TS payload: selector length overruns the payload")
		}
		switch {
		case b[0] == tsIPv4 && sl != 16:
			return 0, 0, ParseError("TS payload: IPv4 selector is not 16 bytes")
		case b[0] == tsIPv4:
			v4++
		case b[0] == tsIPv6 && sl != 40:
			return 0, 0, ParseError("TS payload: IPv6 selector is not 40 bytes")
		}
		b = b[sl:]
	}
	if len(b) != 0 {
		return 0, 0, ParseError("TS payload: selector count does not match its length")
	}
	return n, v4, nil
}

// Traffic selector types.
const (
	tsIPv4 = 7 // TS_IPV4_ADDR_RANGE
	tsIPv6 = 8 // TS_IPV6_ADDR_RANGE
)

// buildTS decodes a TS payload body that scanTS accepted; selectors other
// than IPv4 ranges are left out.
func buildTS(responder bool, b []byte) *TS {
	_, v4, _ := scanTS(b)
	ts := &TS{Responder: responder}
	if v4 > 0 {
		ts.Selectors = make([]Selector, 0, v4)
	}
	for b, n := b[4:], int(b[0]); n > 0; n-- {
		sl := int(binary.BigEndian.Uint16(b[2:]))
		if b[0] == tsIPv4 {
			ts.Selectors = append(ts.Selectors, Selector{
				IPProto: b[1], StartPort: binary.BigEndian.Uint16(b[4:]), EndPort: binary.BigEndian.Uint16(b[6:]),
				Start: netip.AddrFrom4([4]byte(b[8:12])), End: netip.AddrFrom4([4]byte(b[12:16])),
			})
		}
		b = b[sl:]
	}
	return ts
}

// InitPeek is what an IKE_SA_INIT request offers, as slices into the
// datagram; PeekInit allocates nothing. A field is nil when the message
// lacks its payload; the first payload of each type counts.
type InitPeek struct {
	Cookie  []byte // N(COOKIE) data
	KEGroup uint16
	KE      []byte // KE data
	Nonce   []byte // Ni data
	HasSA   bool
}

// PeekInit checks an IKE_SA_INIT request as cheaply as possible, before any
// state or Diffie-Hellman work: the header (an INIT request, message ID 0,
// no responder SPI), the payload chain and every payload's structure under
// the same rules and limits as Parse, without an SK payload. It allocates
// nothing and keeps no reference to b beyond the returned slices.
func PeekInit(b []byte) (InitPeek, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return InitPeek{}, err
	}
	switch {
	case h.Exchange != IKESAInit || h.IsResponse():
		return InitPeek{}, ParseError("not an IKE_SA_INIT request")
	case h.MsgID != 0:
		return InitPeek{}, ParseError("IKE_SA_INIT request with a message ID other than 0")
	case h.SPIr != 0:
		return InitPeek{}, ParseError("IKE_SA_INIT request with a responder SPI")
	}
	var p InitPeek
	var q quota
	c := chain{b: b, off: HeaderLen, next: PayloadType(b[16])}
	for {
		t, critical, body, err := c.payload(&q)
		if err != nil {
			return InitPeek{}, err
		}
		if t == PayloadNone {
			return p, nil
		}
		if t == PayloadSK {
			return InitPeek{}, ParseError("encrypted payload in an IKE_SA_INIT request")
		}
		if err := checkPayload(t, critical, body, &q); err != nil {
			return InitPeek{}, err
		}
		switch t {
		case PayloadSA:
			p.HasSA = true
		case PayloadKE:
			if p.KE == nil {
				p.KEGroup, p.KE = binary.BigEndian.Uint16(body), body[4:]
			}
		case PayloadNonce:
			if p.Nonce == nil {
				p.Nonce = body
			}
		case PayloadN:
			if binary.BigEndian.Uint16(body[2:]) == NCookie && p.Cookie == nil {
				p.Cookie = body[4+int(body[1]):]
			}
		}
	}
}
