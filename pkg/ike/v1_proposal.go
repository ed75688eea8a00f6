package ike

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cgwd/cgwd/pkg/ike/wire1"
	"github.com/cgwd/cgwd/pkg/proposal"
)

// IKEv1 proposals: cgwd's proposals (IKEv2-style lists of transforms per
// type) become IKEv1 transforms, one per combination, each a whole suite.

// Phase 1 attributes (RFC 2409 Appendix A) and their values cgwd uses.
const (
	v1AttrEncr      = 1
	v1AttrHash      = 2
	v1AttrAuth      = 3
	v1AttrGroup     = 4
	v1AttrLifeType  = 11
	v1AttrLifeDur   = 12
	v1AttrKeyLength = 14

	v1EncrAESCBC   = 7
	v1AuthPSK      = 1
	v1AuthRSASig   = 3  // RSA signatures (RFC 2409 5.1)
	v1AuthECDSA256 = 9  // ECDSA on P-256 with SHA-256 (RFC 4754)
	v1AuthECDSA384 = 10 // ECDSA on P-384 with SHA-384
	v1AuthECDSA521 = 11 // ECDSA on P-521 with SHA-512
	v1LifeSecs     = 1
	v1KeyIKE       = 1 // KEY_IKE, the phase 1 transform ID
)

// Phase 2 (IPsec DOI, RFC 2407 4.5) attributes and values.
const (
	v2AttrLifeType  = 1
	v2AttrLifeDur   = 2
	v2AttrGroup     = 3
	v2AttrEncap     = 4
	v2AttrAuth      = 5
	v2AttrKeyLength = 6

	espAESCBC           = 12
	espAESGCM16         = 20
	encapUDPTunnel      = 3     // RFC 3947
	encapUDPTunnelDraft = 61443 // draft-ietf-ipsec-nat-t-ike
)

// v1Hash maps an IKEv2 PRF ID to IKEv1's hash algorithm; v1Auth an IKEv2
// integrity ID to IKEv1's ESP authentication algorithm.
var (
	v1Hash = map[uint16]uint16{PRFHMACSHA1: 2, PRFHMACSHA256: 4, PRFHMACSHA384: 5, PRFHMACSHA512: 6}
	v1Auth = map[uint16]uint16{IntegHMACSHA1_96: 2, IntegHMACSHA256128: 5, IntegHMACSHA384192: 6, IntegHMACSHA512256: 7}
)

// errV1NoCBC says no IKE proposal can be phase 1: IKEv1 has no AEAD there.
var errV1NoCBC = errors.New("no IKE proposal usable for IKEv1 phase 1: it needs AES-CBC with a hash (e.g. aes256-sha256-modp2048); AES-GCM is IKEv2 only")

// v1Phase1Suites expands the IKE proposals into phase 1 suites in
// preference order.
func v1Phase1Suites(ps []Proposal) []v1Suite {
	var out []v1Suite
	for _, p := range ps {
		for _, e := range p.Transforms {
			if e.Type != TransformEncr || e.ID != EncrAESCBC {
				continue
			}
			for _, f := range p.Transforms {
				if f.Type != TransformPRF || v1Hash[f.ID] == 0 {
					continue
				}
				for _, g := range p.Transforms {
					if g.Type == TransformDH {
						out = append(out, v1Suite{keyBits: e.KeyLen, prf: f.ID, group: g.ID})
					}
				}
			}
		}
	}
	return out
}

func basic(t, v uint16) wire1.Attr { return wire1.Attr{Type: t, Basic: true, Value: v} }

// lifeAttr is a life duration in seconds, basic when it fits.
func lifeAttr(t uint16, d time.Duration) wire1.Attr {
	s := uint64(d / time.Second)
	if s <= 0xffff {
		return basic(t, uint16(s))
	}
	return wire1.Attr{Type: t, Data: binary.BigEndian.AppendUint32(nil, uint32(s))}
}

func (s v1Suite) transform(num uint8, life time.Duration) wire1.Transform {
	return wire1.Transform{Num: num, ID: v1KeyIKE, Attrs: []wire1.Attr{
		basic(v1AttrEncr, v1EncrAESCBC), basic(v1AttrKeyLength, s.keyBits), basic(v1AttrHash, v1Hash[s.prf]),
		basic(v1AttrAuth, s.auth), basic(v1AttrGroup, s.group),
		basic(v1AttrLifeType, v1LifeSecs), lifeAttr(v1AttrLifeDur, life)}}
}

// v1Phase1SA is our main mode SA payload.
func v1Phase1SA(suites []v1Suite, life time.Duration) *wire1.SA {
	p := wire1.Proposal{Num: 1, Protocol: wire1.ProtoISAKMP}
	for i, s := range suites {
		if i == 255 {
			break
		}
		p.Transforms = append(p.Transforms, s.transform(uint8(i+1), life))
	}
	return &wire1.SA{DOI: wire1.DOIIPsec, Situation: wire1.SitIdentityOnly, Proposals: []wire1.Proposal{p}}
}

// parseV1Transform reads a phase 1 transform; ok is false for one cgwd
// cannot use (not AES-CBC, an authentication method other than PSK, RSA
// or ECDSA signatures, an unknown attribute value).
func parseV1Transform(t wire1.Transform) (s v1Suite, life time.Duration, ok bool) {
	if t.ID != v1KeyIKE {
		return s, 0, false
	}
	var encr, auth uint64
	lifeType := uint64(v1LifeSecs)
	for _, a := range t.Attrs {
		v, fits := a.Uint()
		if !fits {
			return s, 0, false
		}
		switch a.Type {
		case v1AttrEncr:
			encr = v
		case v1AttrKeyLength:
			s.keyBits = uint16(v)
		case v1AttrHash:
			for prfID, h := range v1Hash {
				if uint64(h) == v {
					s.prf = prfID
				}
			}
		case v1AttrAuth:
			auth = v
		case v1AttrGroup:
			s.group = uint16(v)
		case v1AttrLifeType:
			lifeType = v
		case v1AttrLifeDur:
			if lifeType == v1LifeSecs && v < 1<<31 {
				life = time.Duration(v) * time.Second
			}
		}
	}
	s.auth = uint16(auth)
	ok = encr == v1EncrAESCBC && v1AuthName(s.auth) != "" && s.prf != 0 && s.group != 0 && (s.keyBits == 128 || s.keyBits == 256)
	return s, life, ok
}

// v1ESP is one phase 2 ESP transform: a suite and the PFS group (0: none).
type v1ESP struct {
	suite suite
	group uint16
}

// v1ESPTransforms expands the ESP proposals; every transform carries the
// PFS group of the first proposal that has one (one KE payload serves
// the whole quick mode).
func v1ESPTransforms(ps []Proposal) []v1ESP {
	var group uint16
	for _, p := range ps {
		for _, t := range p.Transforms {
			if t.Type == TransformDH && group == 0 {
				group = t.ID
			}
		}
	}
	var out []v1ESP
	for _, p := range ps {
		for _, e := range p.Transforms {
			if e.Type != TransformEncr {
				continue
			}
			if e.ID == EncrAESGCM16 {
				out = append(out, v1ESP{suite{encr: e.ID, encrKeyBits: e.KeyLen}, group})
				continue
			}
			for _, i := range p.Transforms {
				if i.Type == TransformInteg && v1Auth[i.ID] != 0 {
					out = append(out, v1ESP{suite{encr: e.ID, encrKeyBits: e.KeyLen, integ: i.ID}, group})
				}
			}
		}
	}
	return out
}

func (e v1ESP) transform(num uint8, life time.Duration) wire1.Transform {
	t := wire1.Transform{Num: num, ID: espAESCBC}
	if e.suite.encr == EncrAESGCM16 {
		t.ID = espAESGCM16
	}
	t.Attrs = []wire1.Attr{basic(v2AttrLifeType, v1LifeSecs), lifeAttr(v2AttrLifeDur, life),
		basic(v2AttrEncap, encapUDPTunnel), basic(v2AttrKeyLength, e.suite.encrKeyBits)}
	if e.suite.integ != 0 {
		t.Attrs = append(t.Attrs, basic(v2AttrAuth, v1Auth[e.suite.integ]))
	}
	if e.group != 0 {
		t.Attrs = append(t.Attrs, basic(v2AttrGroup, e.group))
	}
	return t
}

// v1QuickSA is a quick mode SA payload offering ts with our inbound SPI.
func v1QuickSA(ts []v1ESP, spi uint32, life time.Duration) *wire1.SA {
	p := wire1.Proposal{Num: 1, Protocol: wire1.ProtoESP, SPI: binary.BigEndian.AppendUint32(nil, spi)}
	for i, t := range ts {
		if i == 255 {
			break
		}
		p.Transforms = append(p.Transforms, t.transform(uint8(i+1), life))
	}
	return &wire1.SA{DOI: wire1.DOIIPsec, Situation: wire1.SitIdentityOnly, Proposals: []wire1.Proposal{p}}
}

// parseV1ESP reads a phase 2 ESP transform; ok is false for one cgwd
// cannot use (transport mode, an unknown algorithm).
func parseV1ESP(t wire1.Transform) (e v1ESP, life time.Duration, ok bool) {
	switch t.ID {
	case espAESCBC:
		e.suite.encr = EncrAESCBC
	case espAESGCM16:
		e.suite.encr = EncrAESGCM16
	default:
		return e, 0, false
	}
	var encap uint64
	lifeType := uint64(v1LifeSecs)
	for _, a := range t.Attrs {
		v, fits := a.Uint()
		if !fits {
			return e, 0, false
		}
		switch a.Type {
		case v2AttrLifeType:
			lifeType = v
		case v2AttrLifeDur:
			if lifeType == v1LifeSecs && v < 1<<31 {
				life = time.Duration(v) * time.Second
			}
		case v2AttrGroup:
			e.group = uint16(v)
		case v2AttrEncap:
			encap = v
		case v2AttrAuth:
			for id, x := range v1Auth {
				if uint64(x) == v {
					e.suite.integ = id
				}
			}
			if e.suite.integ == 0 {
				return e, 0, false
			}
		case v2AttrKeyLength:
			e.suite.encrKeyBits = uint16(v)
		}
	}
	if encap != encapUDPTunnel && encap != encapUDPTunnelDraft {
		return e, 0, false
	}
	if e.suite.check(false) != nil {
		return e, 0, false
	}
	return e, life, true
}

// espSPI is a 4-byte ESP SPI from a proposal.
func espSPI(b []byte) (uint32, bool) {
	if len(b) != 4 {
		return 0, false
	}
	v := binary.BigEndian.Uint32(b)
	return v, v >= 256
}

// v1PeerPhase1 names the peer's phase 1 transforms for a log line.
func v1PeerPhase1(ts []wire1.Transform) string {
	var out []string
	for _, t := range ts {
		if s, _, ok := parseV1Transform(t); ok {
			out = append(out, s.String()+" auth "+v1AuthName(s.auth))
		} else {
			out = append(out, fmt.Sprintf("transform %d (not AES-CBC with a pre-shared key, RSA or ECDSA signatures)", t.Num))
		}
	}
	return strings.Join(out, ", ")
}

// v1PeerESP names the peer's quick mode transforms for a log line.
func v1PeerESP(sap *wire1.SA, pfs bool) string {
	var out []string
	for _, p := range sap.Proposals {
		for _, t := range p.Transforms {
			if e, _, ok := parseV1ESP(t); ok {
				s := e.suite.String()
				if e.group != 0 {
					s += "-" + proposal.GroupName(e.group)
				}
				out = append(out, s)
			} else {
				out = append(out, fmt.Sprintf("transform %d (unsupported)", t.Num))
			}
		}
	}
	return strings.Join(out, ", ")
}
