package ike

import (
	"fmt"
	"strings"

	"github.com/cgwd/cgwd/pkg/esp"
)

// Default proposals: AES-GCM-16-256, PRF HMAC-SHA2-384, DH group 20 (and
// group 20 for PFS when the Child SA is rekeyed).
const (
	DefaultIKEProposal = "aes256gcm16-prfsha384-ecp384"
	DefaultESPProposal = "aes256gcm16-ecp384"
)

// DH group names as strongSwan writes them.
var dhNames = map[string]uint16{
	"modp1024": 2, "modp2048": 14, "modp3072": 15, "modp4096": 16,
	"ecp256": 19, "ecp384": 20, "ecp521": 21,
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

// ParseProposal parses a proposal in strongSwan's notation, e.g.
// "aes256gcm16-prfsha384-ecp384" (IKE) or "aes128-sha256-modp2048" (ESP).
// Every algorithm listed is offered; for IKE with AES-CBC and no prf, the
// PRF follows the integrity algorithms. The DH groups of an ESP proposal
// are used for PFS when the Child SA is rekeyed.
func ParseProposal(s string, ike bool) (Proposal, error) {
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

// WeakDH reports whether the proposal offers DH group 2 (MODP-1024), which
// is weak: cgwd offers it only when configured explicitly, with a warning.
func (p Proposal) WeakDH() bool {
	for _, x := range p.Transforms {
		if x.Type == TransformDH && x.ID == 2 {
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

func proposalsString(ps []Proposal) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return strings.Join(s, ", ")
}

// selectProposal picks, in the peer's order, the first proposal of theirs
// that has one transform of every type ours (in some proposal) accepts.
// withDH false ignores DH transforms (the first Child SA, created in
// IKE_AUTH, has no key exchange).
func selectProposal(ours, theirs []Proposal, withDH bool) (Proposal, bool) {
	for _, tp := range theirs {
		for _, op := range ours {
			if tp.Protocol != op.Protocol {
				continue
			}
			if c, ok := intersect(op, tp, withDH); ok {
				c.Num, c.SPI = tp.Num, tp.SPI
				return c, true
			}
		}
	}
	return Proposal{}, false
}

func intersect(ours, theirs Proposal, withDH bool) (Proposal, bool) {
	out := Proposal{Protocol: ours.Protocol}
	types := []uint8{TransformEncr, TransformPRF, TransformInteg, TransformDH, TransformESN}
	for _, typ := range types {
		if typ == TransformDH && !withDH {
			continue
		}
		var ot, tt []Transform
		for _, t := range ours.Transforms {
			if t.Type == typ {
				ot = append(ot, t)
			}
		}
		for _, t := range theirs.Transforms {
			if t.Type == typ {
				tt = append(tt, t)
			}
		}
		if len(ot) == 0 && len(tt) == 0 {
			continue
		}
		if typ == TransformESN && len(tt) == 0 {
			continue // no ESN transform: no ESN
		}
		if typ == TransformInteg && len(ot) == 0 && len(tt) == 1 && tt[0].ID == IntegNone {
			continue // AEAD proposal that lists integrity "none"
		}
		found := false
		for _, t := range tt {
			for _, o := range ot {
				if t == o {
					out.Transforms = append(out.Transforms, t)
					found = true
					break
				}
			}
			if found {
				break
			}
		}
		if !found {
			return out, false
		}
	}
	return out, true
}

// suite is a negotiated set of algorithms.
type suite struct {
	encr, encrKeyBits uint16
	prf, integ, dh    uint16
}

func suiteOf(p Proposal) suite {
	var s suite
	for _, t := range p.Transforms {
		switch t.Type {
		case TransformEncr:
			s.encr, s.encrKeyBits = t.ID, t.KeyLen
		case TransformPRF:
			s.prf = t.ID
		case TransformInteg:
			s.integ = t.ID
		case TransformDH:
			s.dh = t.ID
		}
	}
	return s
}

func (s suite) check(ike bool) error {
	if s.encr != EncrAESCBC && s.encr != EncrAESGCM16 || s.encrKeyBits != 128 && s.encrKeyBits != 256 {
		return fmt.Errorf("unsupported encryption %d/%d", s.encr, s.encrKeyBits)
	}
	if s.encr == EncrAESCBC {
		if h, _, _ := integParams(s.integ); h == nil {
			return fmt.Errorf("unsupported integrity %d", s.integ)
		}
	}
	if ike && prfHash(s.prf) == nil {
		return fmt.Errorf("unsupported prf %d", s.prf)
	}
	return nil
}

// encKeyLen is the SK_e / ESP cipher key length in bytes, with the GCM salt.
func (s suite) encKeyLen() int {
	n := int(s.encrKeyBits) / 8
	if s.encr == EncrAESGCM16 {
		n += 4
	}
	return n
}

func (s suite) integKeyLen() int {
	if s.encr == EncrAESGCM16 {
		return 0
	}
	_, k, _ := integParams(s.integ)
	return k
}

// espSuite converts a negotiated ESP suite for the data path.
func (s suite) espSuite() esp.Suite {
	es := esp.Suite{KeyLen: int(s.encrKeyBits) / 8}
	if s.encr == EncrAESGCM16 {
		es.Cipher = esp.AESGCM16
		return es
	}
	es.Cipher = esp.AESCBC
	es.Integ = map[uint16]esp.Integ{
		IntegHMACSHA1_96: esp.HMACSHA1_96, IntegHMACSHA256128: esp.HMACSHA256_128,
		IntegHMACSHA384192: esp.HMACSHA384_192, IntegHMACSHA512256: esp.HMACSHA512_256,
	}[s.integ]
	return es
}

func (s suite) String() string {
	p := Proposal{}
	p.Transforms = append(p.Transforms, Transform{TransformEncr, s.encr, s.encrKeyBits})
	if s.prf != 0 {
		p.Transforms = append(p.Transforms, Transform{TransformPRF, s.prf, 0})
	}
	if s.integ != 0 {
		p.Transforms = append(p.Transforms, Transform{TransformInteg, s.integ, 0})
	}
	if s.dh != 0 {
		p.Transforms = append(p.Transforms, Transform{TransformDH, s.dh, 0})
	}
	return p.String()
}

// minNonce is the shortest nonce RFC 7296 2.10 allows with a PRF: 128
// bits and at least half the PRF's key size (its output size for HMAC).
func minNonce(prfID uint16) int {
	n := 16
	if h := prfHash(prfID); h != nil {
		n = max(n, h().Size()/2)
	}
	return n
}

// weakGroup reports whether a DH group is too weak for new SAs: MODP
// groups below 2048 bits (1, 2, 5) and the MODP groups with small
// subgroups (22, 23, 24).
func weakGroup(g uint16) bool {
	switch g {
	case 1, 2, 5, 22, 23, 24:
		return true
	}
	return false
}
