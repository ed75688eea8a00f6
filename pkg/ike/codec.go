package ike

import (
	"github.com/cgwd/cgwd/pkg/ike/wire"
	"github.com/cgwd/cgwd/pkg/proposal"
)

// Proposal and Transform are an SA payload's proposal and transform (see
// package proposal).
type (
	Proposal  = proposal.Proposal
	Transform = proposal.Transform
)

// parseErr and errInvalidSyntax are the codec's error classes under the
// names the SK cipher (crypto.go) reports them with.
type parseErr = wire.ParseError

var errInvalidSyntax = wire.ErrInvalidSyntax

// SealedLen, Seal and Open make *skCipher a wire.Cipher.
func (c *skCipher) SealedLen(plainLen int) int               { return c.sealedLen(plainLen) }
func (c *skCipher) Seal(head, plain []byte) []byte           { return c.seal(head, plain) }
func (c *skCipher) Open(msg []byte, off int) ([]byte, error) { return c.open(msg, off) }

// wireCipher is sk as a wire.Cipher, nil when sk is.
func wireCipher(sk *skCipher) wire.Cipher {
	if sk == nil {
		return nil
	}
	return sk
}

// marshal encodes m, sealed with sk when m.Encrypted.
func marshal(m *wire.Message, sk *skCipher) ([]byte, error) { return m.Marshal(wireCipher(sk)) }

// parse decodes the datagram b, opening its SK payload with sk (may be nil).
func parse(b []byte, sk *skCipher) (*wire.Message, error) { return wire.Parse(b, wireCipher(sk)) }
