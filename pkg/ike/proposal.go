package ike

import (
	"fmt"
	"strings"

	"github.com/cgwd/cgwd/pkg/esp"
	"github.com/cgwd/cgwd/pkg/proposal"
)

// Default proposals, as proposal.DefaultIKE and proposal.DefaultESP.
const (
	DefaultIKEProposal = proposal.DefaultIKE
	DefaultESPProposal = proposal.DefaultESP
)

// ParseProposal parses a proposal in strongSwan's notation; see proposal.Parse.
func ParseProposal(s string, ike bool) (Proposal, error) { return proposal.Parse(s, ike) }

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
	p.Transforms = append(p.Transforms, Transform{Type: TransformEncr, ID: s.encr, KeyLen: s.encrKeyBits})
	if s.prf != 0 {
		p.Transforms = append(p.Transforms, Transform{Type: TransformPRF, ID: s.prf})
	}
	if s.integ != 0 {
		p.Transforms = append(p.Transforms, Transform{Type: TransformInteg, ID: s.integ})
	}
	if s.dh != 0 {
		p.Transforms = append(p.Transforms, Transform{Type: TransformDH, ID: s.dh})
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
