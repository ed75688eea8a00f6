package ike

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
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
	ProtoIKE = 1
	ProtoESP = 3
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
	NInvalidSyntax: "INVALID_SYNTAX", NInvalidMessageID: "INVALID_MESSAGE_ID", NInvalidSPI: "INVALID_SPI",
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

const headerLen = 28

// Transform is one transform of a proposal; KeyLen is in bits (0: none).
type Transform struct {
	Type   uint8
	ID     uint16
	KeyLen uint16
}

// Proposal is one proposal of an SA payload.
type Proposal struct {
	Num        uint8
	Protocol   uint8
	SPI        []byte
	Transforms []Transform
}

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

// body is a payload's content after its generic header.
func body(p Payload) []byte {
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
	case *Notify:
		b = append(b, p.Protocol, byte(len(p.SPI)))
		b = be16(b, p.NotifyType)
		b = append(b, p.SPI...)
		b = append(b, p.Data...)
	case *Delete:
		size := 0
		if len(p.SPIs) > 0 {
			size = len(p.SPIs[0])
		}
		b = append(b, p.Protocol, byte(size))
		b = be16(b, uint16(len(p.SPIs)))
		for _, s := range p.SPIs {
			b = append(b, s...)
		}
	case *TS:
		b = append(b, byte(len(p.Selectors)), 0, 0, 0)
		for _, s := range p.Selectors {
			b = append(b, 7, s.IPProto) // TS_IPV4_ADDR_RANGE
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
		bd := body(p)
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

func appendHeader(b []byte, h Header, next PayloadType, length int) []byte {
	b = binary.BigEndian.AppendUint64(b, h.SPIi)
	b = binary.BigEndian.AppendUint64(b, h.SPIr)
	b = append(b, byte(next), 0x20, h.Exchange, h.Flags)
	b = binary.BigEndian.AppendUint32(b, h.MsgID)
	return binary.BigEndian.AppendUint32(b, uint32(length))
}

// Marshal encodes m; sk must be set when m.Encrypted.
func (m *Message) marshal(sk *skCipher) ([]byte, error) {
	first, chain := encodeChain(m.Payloads)
	if !m.Encrypted {
		return append(appendHeader(nil, m.Header, first, headerLen+len(chain)), chain...), nil
	}
	if sk == nil {
		return nil, errors.New("no keys to encrypt the message")
	}
	skLen := 4 + sk.sealedLen(len(chain))
	head := appendHeader(nil, m.Header, PayloadSK, headerLen+skLen)
	head = append(head, byte(first), 0)
	head = be16(head, uint16(skLen))
	return sk.seal(head, chain), nil
}

// ParseHeader decodes the fixed header and checks version and length.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < headerLen {
		return h, errors.New("message shorter than the IKE header")
	}
	if b[17]>>4 != 2 {
		return h, fmt.Errorf("IKE major version %d, want 2", b[17]>>4)
	}
	if int(binary.BigEndian.Uint32(b[24:])) != len(b) {
		return h, errors.New("IKE header length does not match the datagram")
	}
	h.SPIi = binary.BigEndian.Uint64(b)
	h.SPIr = binary.BigEndian.Uint64(b[8:])
	h.Exchange, h.Flags = b[18], b[19]
	h.MsgID = binary.BigEndian.Uint32(b[20:])
	return h, nil
}

// errCritical is returned for an unknown payload marked critical.
type errCritical PayloadType

func (e errCritical) Error() string {
	return fmt.Sprintf("unsupported critical payload %d", uint8(e))
}

// parse decodes a whole message; sk (may be nil) opens an SK payload.
func parse(b []byte, sk *skCipher) (*Message, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	m := &Message{Header: h}
	next := PayloadType(b[16])
	off := headerLen
	for next != PayloadNone {
		if len(b)-off < 4 {
			return nil, errors.New("truncated payload header")
		}
		cur := next
		next = PayloadType(b[off])
		plen := int(binary.BigEndian.Uint16(b[off+2:]))
		if plen < 4 || off+plen > len(b) {
			return nil, fmt.Errorf("payload %d: bad length %d", cur, plen)
		}
		if cur == PayloadSK {
			if off+plen != len(b) {
				return nil, errors.New("encrypted payload is not the last payload")
			}
			if sk == nil {
				return nil, errors.New("encrypted payload but no keys")
			}
			inner, err := sk.open(b, off+4)
			if err != nil {
				return nil, err
			}
			ps, err := parseChain(next, inner)
			if err != nil {
				return nil, err
			}
			m.Encrypted = true
			m.Payloads = append(m.Payloads, ps...)
			return m, nil
		}
		p, err := parsePayload(cur, b[off+1]&0x80 != 0, b[off+4:off+plen])
		if err != nil {
			return nil, err
		}
		m.Payloads = append(m.Payloads, p)
		off += plen
	}
	return m, nil
}

func parseChain(next PayloadType, b []byte) ([]Payload, error) {
	var ps []Payload
	off := 0
	for next != PayloadNone {
		if len(b)-off < 4 {
			return nil, errors.New("truncated payload header")
		}
		cur := next
		next = PayloadType(b[off])
		plen := int(binary.BigEndian.Uint16(b[off+2:]))
		if plen < 4 || off+plen > len(b) {
			return nil, fmt.Errorf("payload %d: bad length %d", cur, plen)
		}
		if cur == PayloadSK {
			return nil, errors.New("nested encrypted payload")
		}
		p, err := parsePayload(cur, b[off+1]&0x80 != 0, b[off+4:off+plen])
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
		off += plen
	}
	return ps, nil
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

func parsePayload(t PayloadType, critical bool, b []byte) (Payload, error) {
	short := func(n int) error {
		if len(b) < n {
			return fmt.Errorf("payload %d: %d bytes is too short", t, len(b))
		}
		return nil
	}
	switch t {
	case PayloadSA:
		return parseSA(b)
	case PayloadKE:
		if err := short(4); err != nil {
			return nil, err
		}
		return &KE{Group: binary.BigEndian.Uint16(b), Data: clone(b[4:])}, nil
	case PayloadNonce:
		if len(b) < 16 || len(b) > 256 {
			return nil, fmt.Errorf("nonce of %d bytes (16..256 allowed)", len(b))
		}
		return &Nonce{Data: clone(b)}, nil
	case PayloadIDi, PayloadIDr:
		if err := short(4); err != nil {
			return nil, err
		}
		return &ID{Responder: t == PayloadIDr, IDType: b[0], Data: clone(b[4:])}, nil
	case PayloadAuth:
		if err := short(4); err != nil {
			return nil, err
		}
		return &Auth{Method: b[0], Data: clone(b[4:])}, nil
	case PayloadN:
		if err := short(4); err != nil {
			return nil, err
		}
		n := int(b[1])
		if err := short(4 + n); err != nil {
			return nil, err
		}
		return &Notify{Protocol: b[0], NotifyType: binary.BigEndian.Uint16(b[2:]), SPI: clone(b[4 : 4+n]), Data: clone(b[4+n:])}, nil
	case PayloadD:
		if err := short(4); err != nil {
			return nil, err
		}
		size, num := int(b[1]), int(binary.BigEndian.Uint16(b[2:]))
		if len(b)-4 != size*num {
			return nil, errors.New("delete payload: SPI count does not match its length")
		}
		d := &Delete{Protocol: b[0]}
		for i := 0; i < num; i++ {
			d.SPIs = append(d.SPIs, clone(b[4+i*size:4+(i+1)*size]))
		}
		return d, nil
	case PayloadTSi, PayloadTSr:
		return parseTS(t == PayloadTSr, b)
	}
	if critical {
		return nil, errCritical(t)
	}
	return &Raw{PType: t, Body: clone(b)}, nil
}

func parseSA(b []byte) (*SA, error) {
	sa := &SA{}
	for len(b) > 0 {
		if len(b) < 8 {
			return nil, errors.New("SA payload: truncated proposal")
		}
		plen := int(binary.BigEndian.Uint16(b[2:]))
		if plen < 8 || plen > len(b) {
			return nil, errors.New("SA payload: bad proposal length")
		}
		pb := b[:plen]
		last := b[0] == 0
		spiSize, nt := int(pb[6]), int(pb[7])
		if 8+spiSize > plen {
			return nil, errors.New("SA payload: SPI overruns the proposal")
		}
		pr := Proposal{Num: pb[4], Protocol: pb[5], SPI: clone(pb[8 : 8+spiSize])}
		tb := pb[8+spiSize:]
		for i := 0; i < nt; i++ {
			if len(tb) < 8 {
				return nil, errors.New("SA payload: truncated transform")
			}
			tl := int(binary.BigEndian.Uint16(tb[2:]))
			if tl < 8 || tl > len(tb) {
				return nil, errors.New("SA payload: bad transform length")
			}
			tr := Transform{Type: tb[4], ID: binary.BigEndian.Uint16(tb[6:])}
			for ab := tb[8:tl]; len(ab) > 0; {
				if len(ab) < 4 {
					return nil, errors.New("SA payload: truncated attribute")
				}
				at := binary.BigEndian.Uint16(ab)
				if at&0x8000 == 0 { // TLV attribute: skip it
					al := 4 + int(binary.BigEndian.Uint16(ab[2:]))
					if al > len(ab) {
						return nil, errors.New("SA payload: attribute overruns the transform")
					}
					ab = ab[al:]
					continue
				}
				if at&0x7fff == 14 {
					tr.KeyLen = binary.BigEndian.Uint16(ab[2:])
				}
				ab = ab[4:]
			}
			pr.Transforms = append(pr.Transforms, tr)
			tb = tb[tl:]
		}
		sa.Proposals = append(sa.Proposals, pr)
		b = b[plen:]
		if last {
			break
		}
	}
	return sa, nil
}

func parseTS(responder bool, b []byte) (*TS, error) {
	if len(b) < 4 {
		return nil, errors.New("TS payload too short")
	}
	ts := &TS{Responder: responder}
	n := int(b[0])
	b = b[4:]
	for i := 0; i < n; i++ {
		if len(b) < 4 {
			return nil, errors.New("TS payload: truncated selector")
		}
		sl := int(binary.BigEndian.Uint16(b[2:]))
		if sl < 8 || sl > len(b) {
			return nil, errors.New("TS payload: bad selector length")
		}
		if b[0] == 7 && sl == 16 {
			ts.Selectors = append(ts.Selectors, Selector{
				IPProto: b[1], StartPort: binary.BigEndian.Uint16(b[4:]), EndPort: binary.BigEndian.Uint16(b[6:]),
				Start: netip.AddrFrom4([4]byte(b[8:12])), End: netip.AddrFrom4([4]byte(b[12:16])),
			})
		} // other selector types (IPv6) are ignored
		b = b[sl:]
	}
	return ts, nil
}
