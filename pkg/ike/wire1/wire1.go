// Package wire1 encodes and decodes ISAKMP messages as IKEv1 uses them
// (RFC 2408 section 3, RFC 2409, the IPsec DOI of RFC 2407, NAT-T of RFC
// 3947 and DPD of RFC 3706): the header and the payloads of main mode,
// quick mode and informational exchanges. It holds no keys: the caller
// encrypts and decrypts the payload chain after the header. Everything it
// parses is bounded by the limits below, and whatever it rejects wraps
// ErrMalformed.
package wire1

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Exchange types (RFC 2408 3.1, RFC 2409 5.5).
const (
	ExchMain  = 2  // identity protection (main mode)
	ExchAggr  = 4  // aggressive mode
	ExchInfo  = 5  // informational
	ExchQuick = 32 // quick mode
)

// Header flags.
const (
	FlagEncrypted = 0x01
	FlagCommit    = 0x02
	FlagAuthOnly  = 0x04
)

// Version is the ISAKMP version byte of IKEv1: major 1, minor 0.
const Version = 0x10

// PayloadType identifies an ISAKMP payload.
type PayloadType uint8

// Payload types (RFC 2408 3.1; NAT-D and NAT-OA from RFC 3947).
const (
	PayloadNone  PayloadType = 0
	PayloadSA    PayloadType = 1
	PayloadP     PayloadType = 2 // proposal, inside SA only
	PayloadT     PayloadType = 3 // transform, inside a proposal only
	PayloadKE    PayloadType = 4
	PayloadID    PayloadType = 5
	PayloadCert  PayloadType = 6
	PayloadCR    PayloadType = 7
	PayloadHash  PayloadType = 8
	PayloadSig   PayloadType = 9
	PayloadNonce PayloadType = 10
	PayloadN     PayloadType = 11
	PayloadD     PayloadType = 12
	PayloadVID   PayloadType = 13
	PayloadNATD  PayloadType = 20
	PayloadNATOA PayloadType = 21
)

// Protocol IDs (RFC 2407 4.4.1) and the IPsec DOI.
const (
	ProtoISAKMP = 1
	ProtoAH     = 2
	ProtoESP    = 3
	DOIIPsec    = 1
	// SitIdentityOnly is the only situation IKEv1 peers use.
	SitIdentityOnly = 1
)

// ID types (RFC 2407 4.6.2.1).
const (
	IDIPv4Addr       = 1
	IDFQDN           = 2
	IDIPv4AddrSubnet = 4
	IDDN             = 9 // ID_DER_ASN1_DN: a certificate's subject
)

// CertX509Sig is the certificate encoding "X.509 Certificate - Signature"
// (RFC 2408 3.9) of CERT and CR payloads.
const CertX509Sig = 4

// Notify types cgwd sends or acts on (RFC 2408 3.14.1, RFC 2407 4.6.3,
// RFC 3706).
const (
	NInvalidPayloadType  = 1
	NInvalidCookie       = 4
	NInvalidExchangeType = 7
	NInvalidMessageID    = 9
	NInvalidSPI          = 11
	NNoProposalChosen    = 14
	NPayloadMalformed    = 16
	NInvalidKeyInfo      = 17
	NInvalidIDInfo       = 18
	NAuthFailed          = 24
	NInvalidHashInfo     = 23
	NResponderLifetime   = 24576
	NInitialContact      = 24578
	NRUThere             = 36136
	NRUThereAck          = 36137
)

var notifyNames = map[uint16]string{
	NInvalidPayloadType: "INVALID-PAYLOAD-TYPE", NInvalidCookie: "INVALID-COOKIE",
	NInvalidExchangeType: "INVALID-EXCHANGE-TYPE", NInvalidMessageID: "INVALID-MESSAGE-ID",
	NInvalidSPI: "INVALID-SPI", NNoProposalChosen: "NO-PROPOSAL-CHOSEN", NPayloadMalformed: "PAYLOAD-MALFORMED",
	NInvalidKeyInfo: "INVALID-KEY-INFORMATION", NInvalidIDInfo: "INVALID-ID-INFORMATION",
	NInvalidHashInfo: "INVALID-HASH-INFORMATION", NAuthFailed: "AUTHENTICATION-FAILED",
	NResponderLifetime: "RESPONDER-LIFETIME", NInitialContact: "INITIAL-CONTACT",
	NRUThere: "R-U-THERE", NRUThereAck: "R-U-THERE-ACK",
}

// NotifyName is the RFC name of a notify type.
func NotifyName(t uint16) string {
	if n, ok := notifyNames[t]; ok {
		return n
	}
	return fmt.Sprintf("NOTIFY_%d", t)
}

// Header is the fixed ISAKMP header. Its next payload and length fields
// are the encoder's business.
type Header struct {
	ICookie, RCookie uint64
	Exchange, Flags  uint8
	MsgID            uint32
}

// HeaderLen is the length of the ISAKMP header.
const HeaderLen = 28

// Payload is one ISAKMP payload.
type Payload interface{ Type() PayloadType }

// Attr is a data attribute (RFC 2408 3.3): basic (AF set, a 16-bit
// value) or variable (a length and Data).
type Attr struct {
	Type  uint16 // without the AF bit
	Basic bool
	Value uint16 // when Basic
	Data  []byte // when not Basic
}

// Uint is the attribute's value as a number; ok is false for a variable
// attribute longer than 8 bytes.
func (a Attr) Uint() (uint64, bool) {
	if a.Basic {
		return uint64(a.Value), true
	}
	if len(a.Data) > 8 {
		return 0, false
	}
	var v uint64
	for _, c := range a.Data {
		v = v<<8 | uint64(c)
	}
	return v, true
}

// Transform is a transform payload (RFC 2408 3.6).
type Transform struct {
	Num, ID uint8
	Attrs   []Attr
}

// Proposal is a proposal payload (RFC 2408 3.5).
type Proposal struct {
	Num, Protocol uint8
	SPI           []byte
	Transforms    []Transform
}

// SA is the security association payload with the IPsec DOI's situation.
type SA struct {
	DOI, Situation uint32
	Proposals      []Proposal
}

// KE is the key exchange payload.
type KE struct{ Data []byte }

// Nonce is the nonce payload.
type Nonce struct{ Data []byte }

// Hash is the hash payload.
type Hash struct{ Data []byte }

// VendorID is the vendor ID payload.
type VendorID struct{ Data []byte }

// NATD is the NAT discovery payload (RFC 3947 3.2).
type NATD struct{ Data []byte }

// ID is an identification payload with the IPsec DOI's fields (RFC 2407 4.6.2).
type ID struct {
	IDType, ProtoID uint8
	Port            uint16
	Data            []byte
}

// Notify is the notification payload.
type Notify struct {
	DOI        uint32
	Protocol   uint8
	SPI        []byte
	NotifyType uint16
	Data       []byte
}

// Delete is the delete payload; every SPI has the same size.
type Delete struct {
	DOI      uint32
	Protocol uint8
	SPIs     [][]byte
}

// Cert is the certificate payload (RFC 2408 3.9): one DER certificate
// when Encoding is CertX509Sig.
type Cert struct {
	Encoding uint8
	Data     []byte
}

// CertReq is the certificate request payload (RFC 2408 3.10): a
// certificate type and an acceptable CA, for X.509 its DER-encoded
// subject DN (RFC 4945 3.2.4); empty for any CA.
type CertReq struct {
	CertType uint8
	CA       []byte
}

// Sig is the signature payload (RFC 2408 3.12; SIG_I and SIG_R of RFC
// 2409 5.1).
type Sig struct{ Data []byte }

// Raw is a payload cgwd does not interpret (NAT-OA, ...).
type Raw struct {
	PType PayloadType
	Body  []byte
}

// Type implementations.
func (*SA) Type() PayloadType       { return PayloadSA }
func (*KE) Type() PayloadType       { return PayloadKE }
func (*Nonce) Type() PayloadType    { return PayloadNonce }
func (*Hash) Type() PayloadType     { return PayloadHash }
func (*VendorID) Type() PayloadType { return PayloadVID }
func (*NATD) Type() PayloadType     { return PayloadNATD }
func (*ID) Type() PayloadType       { return PayloadID }
func (*Notify) Type() PayloadType   { return PayloadN }
func (*Delete) Type() PayloadType   { return PayloadD }
func (*Cert) Type() PayloadType     { return PayloadCert }
func (*CertReq) Type() PayloadType  { return PayloadCR }
func (*Sig) Type() PayloadType      { return PayloadSig }
func (r *Raw) Type() PayloadType    { return r.PType }

// Parsing limits: a datagram, however it is crafted, decodes to bounded
// structures (see AllocBudget).
const (
	MaxMessageLen = 65535
	maxPayloads   = 64
	maxItems      = 256 // proposals, transforms, attributes and Delete SPIs of one message together
	maxKELen      = 1024
	maxNonceLen   = 256
	minNonceLen   = 8 // RFC 2409 5: 8 to 256 bytes
	maxHashLen    = 64
	maxSPILen     = 16
	// Certificates arrive before anything is authenticated: each is
	// capped, and so is their number in one message (a peer's chain is
	// a few deep; certauth refuses more than it takes with a clear error).
	maxCertLen  = 8192
	maxCerts    = 8
	maxCRLen    = 1024 // a CA's DN
	maxCertReqs = 16
	maxSigLen   = 1024 // an 8192-bit RSA signature
)

// AllocBudget is the most the codec may allocate for one n-byte payload
// chain or datagram, whatever its content: maxItems and maxPayloads bound
// the decoded structures (each item under 80 bytes: 20 KiB, payloads and
// their slices under 8 KiB) and every byte of payload data is copied at
// most once, plus append's slack.
func AllocBudget(n int) uint64 { return 48<<10 + 3*uint64(n) }

// ErrMalformed is wrapped by every error that says a message is not valid.
var ErrMalformed = errors.New("malformed IKEv1 message")

type parseError string

func (e parseError) Error() string { return "malformed IKEv1 message: " + string(e) }
func (e parseError) Unwrap() error { return ErrMalformed }

// ParseHeader checks the fixed header of datagram b: its length, version
// and length field. It returns the first payload's type.
func ParseHeader(b []byte) (Header, PayloadType, error) {
	var h Header
	switch {
	case len(b) < HeaderLen:
		return h, 0, parseError("shorter than the ISAKMP header")
	case len(b) > MaxMessageLen:
		return h, 0, parseError("longer than 65535 bytes")
	case b[17]>>4 != 1:
		return h, 0, parseError("ISAKMP major version is not 1")
	case int(binary.BigEndian.Uint32(b[24:])) != len(b):
		return h, 0, parseError("header length does not match the datagram")
	}
	h.ICookie = binary.BigEndian.Uint64(b)
	h.RCookie = binary.BigEndian.Uint64(b[8:])
	h.Exchange, h.Flags = b[18], b[19]
	h.MsgID = binary.BigEndian.Uint32(b[20:])
	return h, PayloadType(b[16]), nil
}

// AppendHeader appends h with first payload next and total length n.
func AppendHeader(b []byte, h Header, next PayloadType, n int) []byte {
	b = binary.BigEndian.AppendUint64(b, h.ICookie)
	b = binary.BigEndian.AppendUint64(b, h.RCookie)
	b = append(b, byte(next), Version, h.Exchange, h.Flags)
	b = binary.BigEndian.AppendUint32(b, h.MsgID)
	return binary.BigEndian.AppendUint32(b, uint32(n))
}

// Marshal encodes an unencrypted message.
func Marshal(h Header, ps []Payload) []byte {
	first, chain := EncodeChain(ps)
	return append(AppendHeader(make([]byte, 0, HeaderLen+len(chain)), h, first, HeaderLen+len(chain)), chain...)
}

// Chain is a parsed payload chain: the payloads and, for each, its whole
// encoding (generic header included) as a slice of the input, which the
// hashes of quick mode and informational exchanges cover.
type Chain struct {
	Payloads []Payload
	Raw      [][]byte
}

// ParseChain decodes the payload chain b whose first payload is first.
// With padded (a decrypted chain) bytes after the last payload are
// allowed: they are the cipher's padding.
func ParseChain(first PayloadType, b []byte, padded bool) (*Chain, error) {
	c := &Chain{}
	items, certs, crs := 0, 0, 0
	next := first
	off := 0
	for next != PayloadNone {
		if len(c.Payloads) == maxPayloads {
			return nil, parseError("more than 64 payloads")
		}
		if len(b)-off < 4 {
			return nil, parseError(fmt.Sprintf("payload %d truncated", next))
		}
		l := int(binary.BigEndian.Uint16(b[off+2:]))
		if l < 4 || l > len(b)-off {
			return nil, parseError(fmt.Sprintf("payload %d has bad length %d", next, l))
		}
		raw := b[off : off+l]
		switch next {
		case PayloadCert:
			if certs++; certs > maxCerts {
				return nil, parseError(fmt.Sprintf("more than %d CERT payloads", maxCerts))
			}
		case PayloadCR:
			if crs++; crs > maxCertReqs {
				return nil, parseError(fmt.Sprintf("more than %d CR payloads", maxCertReqs))
			}
		}
		p, err := parsePayload(next, raw[4:], &items)
		if err != nil {
			return nil, err
		}
		c.Payloads = append(c.Payloads, p)
		c.Raw = append(c.Raw, raw)
		next = PayloadType(raw[0])
		off += l
	}
	if off != len(b) && !padded {
		return nil, parseError("bytes after the last payload")
	}
	return c, nil
}

// take counts n items against maxItems.
func take(items *int, n int) error {
	*items += n
	if *items > maxItems {
		return parseError("more than 256 proposals, transforms, attributes and SPIs")
	}
	return nil
}

func clone(b []byte) []byte { return append([]byte{}, b...) }

func parsePayload(t PayloadType, b []byte, items *int) (Payload, error) {
	switch t {
	case PayloadSA:
		return parseSA(b, items)
	case PayloadKE:
		if len(b) == 0 || len(b) > maxKELen {
			return nil, parseError(fmt.Sprintf("KE data of %d bytes", len(b)))
		}
		return &KE{clone(b)}, nil
	case PayloadNonce:
		if len(b) < minNonceLen || len(b) > maxNonceLen {
			return nil, parseError(fmt.Sprintf("nonce of %d bytes (8..256)", len(b)))
		}
		return &Nonce{clone(b)}, nil
	case PayloadHash:
		if len(b) == 0 || len(b) > maxHashLen {
			return nil, parseError(fmt.Sprintf("hash of %d bytes", len(b)))
		}
		return &Hash{clone(b)}, nil
	case PayloadVID:
		return &VendorID{clone(b)}, nil
	case PayloadNATD:
		if len(b) == 0 || len(b) > maxHashLen {
			return nil, parseError(fmt.Sprintf("NAT-D of %d bytes", len(b)))
		}
		return &NATD{clone(b)}, nil
	case PayloadID:
		if len(b) < 4 {
			return nil, parseError("ID payload truncated")
		}
		return &ID{IDType: b[0], ProtoID: b[1], Port: binary.BigEndian.Uint16(b[2:]), Data: clone(b[4:])}, nil
	case PayloadN:
		if len(b) < 8 || len(b) < 8+int(b[5]) {
			return nil, parseError("notify payload truncated")
		}
		if b[5] > maxSPILen {
			return nil, parseError("notify SPI longer than 16 bytes")
		}
		n := 8 + int(b[5])
		return &Notify{DOI: binary.BigEndian.Uint32(b), Protocol: b[4], SPI: clone(b[8:n]),
			NotifyType: binary.BigEndian.Uint16(b[6:]), Data: clone(b[n:])}, nil
	case PayloadD:
		return parseDelete(b, items)
	case PayloadCert:
		if len(b) < 2 || len(b) > 1+maxCertLen {
			return nil, parseError(fmt.Sprintf("CERT payload of %d bytes (at most %d of certificate)", len(b), maxCertLen))
		}
		return &Cert{Encoding: b[0], Data: clone(b[1:])}, nil
	case PayloadCR:
		if len(b) < 1 || len(b) > 1+maxCRLen {
			return nil, parseError(fmt.Sprintf("CR payload of %d bytes (at most %d of CA)", len(b), maxCRLen))
		}
		return &CertReq{CertType: b[0], CA: clone(b[1:])}, nil
	case PayloadSig:
		if len(b) == 0 || len(b) > maxSigLen {
			return nil, parseError(fmt.Sprintf("signature of %d bytes", len(b)))
		}
		return &Sig{clone(b)}, nil
	case PayloadP, PayloadT:
		return nil, parseError(fmt.Sprintf("payload %d outside an SA payload", t))
	}
	return &Raw{PType: t, Body: clone(b)}, nil
}

func parseDelete(b []byte, items *int) (*Delete, error) {
	if len(b) < 8 {
		return nil, parseError("delete payload truncated")
	}
	size, n := int(b[5]), int(binary.BigEndian.Uint16(b[6:]))
	if size == 0 || size > maxSPILen || n == 0 {
		return nil, parseError(fmt.Sprintf("delete payload with %d SPIs of %d bytes", n, size))
	}
	if len(b) != 8+size*n {
		return nil, parseError("delete payload length does not match its SPIs")
	}
	if err := take(items, n); err != nil {
		return nil, err
	}
	d := &Delete{DOI: binary.BigEndian.Uint32(b), Protocol: b[4]}
	data := clone(b[8:])
	for i := 0; i < n; i++ {
		d.SPIs = append(d.SPIs, data[i*size:(i+1)*size:(i+1)*size])
	}
	return d, nil
}

// sub walks the generic headers of the payloads inside an SA payload
// (proposals) or a proposal (transforms): each must be of type want, the
// chain must end exactly at the end of b.
func sub(b []byte, want PayloadType, what string, f func([]byte) error) error {
	for len(b) > 0 {
		if len(b) < 4 {
			return parseError(what + " truncated")
		}
		l := int(binary.BigEndian.Uint16(b[2:]))
		if l < 4 || l > len(b) {
			return parseError(fmt.Sprintf("%s has bad length %d", what, l))
		}
		if err := f(b[4:l]); err != nil {
			return err
		}
		next := PayloadType(b[0])
		b = b[l:]
		if next == PayloadNone {
			if len(b) != 0 {
				return parseError("bytes after the last " + what)
			}
			return nil
		}
		if next != want {
			return parseError(fmt.Sprintf("%s followed by payload %d", what, next))
		}
	}
	return parseError("no " + what)
}

func parseSA(b []byte, items *int) (*SA, error) {
	if len(b) < 8 {
		return nil, parseError("SA payload truncated")
	}
	sa := &SA{DOI: binary.BigEndian.Uint32(b), Situation: binary.BigEndian.Uint32(b[4:])}
	err := sub(b[8:], PayloadP, "proposal", func(pb []byte) error {
		if err := take(items, 1); err != nil {
			return err
		}
		if len(pb) < 4 || len(pb) < 4+int(pb[2]) {
			return parseError("proposal truncated")
		}
		if pb[2] > maxSPILen {
			return parseError("proposal SPI longer than 16 bytes")
		}
		p := Proposal{Num: pb[0], Protocol: pb[1], SPI: clone(pb[4 : 4+int(pb[2])])}
		count := int(pb[3])
		err := sub(pb[4+int(pb[2]):], PayloadT, "transform", func(tb []byte) error {
			if err := take(items, 1); err != nil {
				return err
			}
			if len(tb) < 4 {
				return parseError("transform truncated")
			}
			t := Transform{Num: tb[0], ID: tb[1]}
			attrs, err := parseAttrs(tb[4:], items)
			if err != nil {
				return err
			}
			t.Attrs = attrs
			p.Transforms = append(p.Transforms, t)
			return nil
		})
		if err != nil {
			return err
		}
		if count != len(p.Transforms) {
			return parseError(fmt.Sprintf("proposal says %d transforms, has %d", count, len(p.Transforms)))
		}
		sa.Proposals = append(sa.Proposals, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sa, nil
}

func parseAttrs(b []byte, items *int) ([]Attr, error) {
	var out []Attr
	for len(b) > 0 {
		if err := take(items, 1); err != nil {
			return nil, err
		}
		if len(b) < 4 {
			return nil, parseError("attribute truncated")
		}
		typ := binary.BigEndian.Uint16(b)
		v := binary.BigEndian.Uint16(b[2:])
		if typ&0x8000 != 0 {
			out = append(out, Attr{Type: typ &^ 0x8000, Basic: true, Value: v})
			b = b[4:]
			continue
		}
		if int(v) > len(b)-4 {
			return nil, parseError(fmt.Sprintf("attribute %d longer than its transform", typ))
		}
		out = append(out, Attr{Type: typ, Data: clone(b[4 : 4+int(v)])})
		b = b[4+int(v):]
	}
	return out, nil
}

// Body is the encoding of p without its generic header (what RFC 2409
// calls the payload's body, e.g. SAi_b and IDii_b in HASH_I).
func Body(p Payload) []byte {
	switch p := p.(type) {
	case *SA:
		b := binary.BigEndian.AppendUint32(nil, p.DOI)
		b = binary.BigEndian.AppendUint32(b, p.Situation)
		for i, pr := range p.Proposals {
			start := len(b)
			b = append(b, lastOr(i, len(p.Proposals), PayloadP), 0, 0, 0, pr.Num, pr.Protocol, byte(len(pr.SPI)), byte(len(pr.Transforms)))
			b = append(b, pr.SPI...)
			for j, t := range pr.Transforms {
				ts := len(b)
				b = append(b, lastOr(j, len(pr.Transforms), PayloadT), 0, 0, 0, t.Num, t.ID, 0, 0)
				for _, a := range t.Attrs {
					if a.Basic {
						b = binary.BigEndian.AppendUint16(b, a.Type|0x8000)
						b = binary.BigEndian.AppendUint16(b, a.Value)
						continue
					}
					b = binary.BigEndian.AppendUint16(b, a.Type)
					b = binary.BigEndian.AppendUint16(b, uint16(len(a.Data)))
					b = append(b, a.Data...)
				}
				binary.BigEndian.PutUint16(b[ts+2:], uint16(len(b)-ts))
			}
			binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
		}
		return b
	case *KE:
		return p.Data
	case *Nonce:
		return p.Data
	case *Hash:
		return p.Data
	case *VendorID:
		return p.Data
	case *NATD:
		return p.Data
	case *ID:
		b := []byte{p.IDType, p.ProtoID, byte(p.Port >> 8), byte(p.Port)}
		return append(b, p.Data...)
	case *Notify:
		b := binary.BigEndian.AppendUint32(nil, p.DOI)
		b = append(b, p.Protocol, byte(len(p.SPI)))
		b = binary.BigEndian.AppendUint16(b, p.NotifyType)
		b = append(b, p.SPI...)
		return append(b, p.Data...)
	case *Delete:
		b := binary.BigEndian.AppendUint32(nil, p.DOI)
		size := 0
		if len(p.SPIs) > 0 {
			size = len(p.SPIs[0])
		}
		b = append(b, p.Protocol, byte(size))
		b = binary.BigEndian.AppendUint16(b, uint16(len(p.SPIs)))
		for _, s := range p.SPIs {
			b = append(b, s...)
		}
		return b
	case *Cert:
		return append([]byte{p.Encoding}, p.Data...)
	case *CertReq:
		return append([]byte{p.CertType}, p.CA...)
	case *Sig:
		return p.Data
	case *Raw:
		return p.Body
	}
	return nil
}

func lastOr(i, n int, t PayloadType) byte {
	if i == n-1 {
		return 0
	}
	return byte(t)
}

// EncodePayload is p with its generic header; next is the type of the
// payload after it.
func EncodePayload(p Payload, next PayloadType) []byte {
	body := Body(p)
	b := make([]byte, 4, 4+len(body))
	b[0] = byte(next)
	binary.BigEndian.PutUint16(b[2:], uint16(4+len(body)))
	return append(b, body...)
}

// EncodeChain encodes ps as a payload chain and returns the first one's type.
func EncodeChain(ps []Payload) (PayloadType, []byte) {
	var b []byte
	for i, p := range ps {
		next := PayloadNone
		if i+1 < len(ps) {
			next = ps[i+1].Type()
		}
		b = append(b, EncodePayload(p, next)...)
	}
	if len(ps) == 0 {
		return PayloadNone, b
	}
	return ps[0].Type(), b
}
