// Package proposal holds IKEv2 SA proposals as data: the transform and
// protocol numbers (RFC 7296 section 3.3), and the strongSwan-style text
// syntax ("aes256gcm16-prfsha384-ecp384") that config files use. It is a
// leaf: the config loader and the IKE engine both import it, and it
// imports neither.
package proposal

import (
	"fmt"
	"strings"
)

// Protocol IDs in proposals, notifies and deletes.
const (
	ProtoIKE = 1
	ProtoAH  = 2
	ProtoESP = 3
)

// Transform types (RFC 7296 section 3.3.2).
const (
	TransformEncr  = 1
	TransformPRF   = 2
	TransformInteg = 3
	TransformDH    = 4
	TransformESN   = 5
)

// Transform IDs cgwd supports.
const (
	EncrAESCBC   = 12
	EncrAESGCM16 = 20

	PRFHMACSHA1   = 2
	PRFHMACSHA256 = 5
	PRFHMACSHA384 = 6
	PRFHMACSHA512 = 7

	IntegNone          = 0
	IntegHMACSHA1_96   = 2
	IntegHMACSHA256128 = 12
	IntegHMACSHA384192 = 13
	IntegHMACSHA512256 = 14

	ESNNone = 0
)

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

// Default proposals: AES-GCM-16-256, PRF HMAC-SHA2-384, DH group 20 (and
// group 20 for PFS when the Child SA is rekeyed).
const (
	DefaultIKE = "aes256gcm16-prfsha384-ecp384"
	DefaultESP = "aes256gcm16-ecp384"
)

// DH group names as strongSwan writes them: every group AWS offers.
var dhNames = map[string]uint16{
	"modp1024": 2, "modp1536": 5, "modp2048": 14, "modp3072": 15, "modp4096": 16, "modp6144": 17, "modp8192": 18,
	"ecp256": 19, "ecp384": 20, "ecp521": 21,
	"modp1024s160": 22, "modp2048s224": 23, "modp2048s256": 24,
}

// GroupName is strongSwan's name for DH group g, or "" if cgwd does not
// speak it.
func GroupName(g uint16) string {
	for n, id := range dhNames {
		if id == g {
			return n
		}
	}
	return ""
}

// WeakGroup reports whether DH group g gives less than 112 bits of
// security: the 1024- and 1536-bit MODP groups (1, 2, 5) and group 22 (a
// 1024-bit prime). cgwd never offers one by default; a proposal that
// names one is accepted and logged as weak.
func WeakGroup(g uint16) bool {
	switch g {
	case 1, 2, 5, 22:
		return true
	}
	return false
}

var encrNames = map[string]Transform{
	"aes128":      {TransformEncr, EncrAESCBC, 128},
	"aes256":      {TransformEncr, EncrAESCBC, 256},
	"aes128gcm16": {TransformEncr, EncrAESGCM16, 128},
	"aes256gcm16": {TransformEncr, EncrAESGCM16, 256},
}

var integNames = map[string]uint16{
	"sha1": IntegHMACSHA1_96, "sha256": IntegHMACSHA256128, "sha384": IntegHMACSHA384192, "sha512": IntegHMACSHA512256,
}

var prfNames = map[string]uint16{
	"prfsha1": PRFHMACSHA1, "prfsha256": PRFHMACSHA256, "prfsha384": PRFHMACSHA384, "prfsha512": PRFHMACSHA512,
}

// integToPRF is the PRF strongSwan implies from an integrity algorithm.
var integToPRF = map[uint16]uint16{
	IntegHMACSHA1_96: PRFHMACSHA1, IntegHMACSHA256128: PRFHMACSHA256, IntegHMACSHA384192: PRFHMACSHA384, IntegHMACSHA512256: PRFHMACSHA512,
}

// Parse parses a proposal in strongSwan's notation, e.g.
// "aes256gcm16-prfsha384-ecp384" (IKE) or "aes128-sha256-modp2048" (ESP).
// Every algorithm listed is offered; for IKE with AES-CBC and no prf, the
// PRF follows the integrity algorithms. The DH groups of an ESP proposal
// are used for PFS when the Child SA is rekeyed.
func Parse(s string, ike bool) (Proposal, error) {
	p := Proposal{Protocol: ProtoESP}
	if ike {
		p.Protocol = ProtoIKE
	}
	var encr, integ, prfs, dh []Transform
	var aead, cbc bool
	for _, tok := range strings.Split(strings.ToLower(strings.TrimSpace(s)), "-") {
		if t, ok := encrNames[tok]; ok {
			encr = append(encr, t)
			if t.ID == EncrAESGCM16 {
				aead = true
			} else {
				cbc = true
			}
		} else if id, ok := integNames[tok]; ok {
			integ = append(integ, Transform{TransformInteg, id, 0})
		} else if id, ok := prfNames[tok]; ok && ike {
			prfs = append(prfs, Transform{TransformPRF, id, 0})
		} else if id, ok := dhNames[tok]; ok {
			dh = append(dh, Transform{TransformDH, id, 0})
		} else {
			return p, fmt.Errorf("proposal %q: unknown algorithm %q", s, tok)
		}
	}
	switch {
	case len(encr) == 0:
		return p, fmt.Errorf("proposal %q: no encryption algorithm", s)
	case aead && cbc:
		return p, fmt.Errorf("proposal %q: mixes AEAD (gcm) and non-AEAD ciphers; use two proposals", s)
	case aead && len(integ) > 0:
		return p, fmt.Errorf("proposal %q: AES-GCM takes no integrity algorithm", s)
	case cbc && len(integ) == 0:
		return p, fmt.Errorf("proposal %q: AES-CBC needs an integrity algorithm", s)
	case ike && len(dh) == 0:
		return p, fmt.Errorf("proposal %q: IKE needs a DH group", s)
	}
	if ike && len(prfs) == 0 {
		if aead {
			return p, fmt.Errorf("proposal %q: AES-GCM needs a prf (e.g. prfsha384)", s)
		}
		for _, i := range integ {
			prfs = append(prfs, Transform{TransformPRF, integToPRF[i.ID], 0})
		}
	}
	p.Transforms = append(p.Transforms, encr...)
	p.Transforms = append(p.Transforms, prfs...)
	p.Transforms = append(p.Transforms, integ...)
	p.Transforms = append(p.Transforms, dh...)
	if !ike {
		p.Transforms = append(p.Transforms, Transform{TransformESN, ESNNone, 0})
	}
	return p, nil
}

// WeakDH reports whether the proposal offers a weak DH group (see
// WeakGroup).
func (p Proposal) WeakDH() bool {
	for _, x := range p.Transforms {
		if x.Type == TransformDH && WeakGroup(x.ID) {
			return true
		}
	}
	return false
}

// String writes a proposal in strongSwan's notation.
func (p Proposal) String() string {
	var parts []string
	for _, t := range p.Transforms {
		parts = append(parts, t.String())
	}
	return strings.Join(parts, "-")
}

func (t Transform) String() string {
	switch t.Type {
	case TransformEncr:
		for n, x := range encrNames {
			if x == t {
				return n
			}
		}
	case TransformInteg:
		for n, x := range integNames {
			if x == t.ID {
				return n
			}
		}
	case TransformPRF:
		for n, x := range prfNames {
			if x == t.ID {
				return n
			}
		}
	case TransformDH:
		for n, x := range dhNames {
			if x == t.ID {
				return n
			}
		}
	case TransformESN:
		if t.ID == 0 {
			return "noesn"
		}
		return "esn"
	}
	return fmt.Sprintf("t%d:%d/%d", t.Type, t.ID, t.KeyLen)
}
