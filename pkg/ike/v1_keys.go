package ike

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"slices"

	"github.com/cgwd/cgwd/pkg/ike/wire1"
)

// IKEv1 (RFC 2409) key derivation and the CBC encryption of its messages.

// v1Suite is a negotiated IKEv1 phase 1 transform: AES-CBC, a hash (named
// by the IKEv2 PRF ID of its HMAC), a DH group and the authentication
// method (v1AuthPSK, v1AuthRSASig or an ECDSA method).
type v1Suite struct {
	keyBits uint16
	prf     uint16
	group   uint16
	auth    uint16
}

func (s v1Suite) String() string {
	return suite{encr: EncrAESCBC, encrKeyBits: s.keyBits, prf: s.prf, dh: s.group}.String()
}

// v1Keys are the keys of an ISAKMP SA.
type v1Keys struct {
	prf                 prf
	authPRF             prf // HASH_I and HASH_R's: prf, or the ECDSA method's hash (RFC 4754)
	skeyid, d, a, e     []byte
	block               cipher.Block
	hashF               func() hash.Hash
	ivPhase1            []byte // the last CBC block of main mode, which quick mode IVs derive from
	gxi, gxr            []byte
	ci, cr              uint64
	saiB                []byte
	blockSize, hashSize int
}

func cookies(ci, cr uint64) []byte {
	b := binary.BigEndian.AppendUint64(nil, ci)
	return binary.BigEndian.AppendUint64(b, cr)
}

// deriveV1Keys computes SKEYID = prf(PSK, Ni_b | Nr_b), or for signatures
// prf(Ni_b | Nr_b, g^xy), and SKEYID_d, _a and _e from it (RFC 2409 5),
// the AES key from SKEYID_e (Appendix B) and the first main mode IV,
// hash(g^xi | g^xr).
func deriveV1Keys(s v1Suite, psk, ni, nr, gxy, gxi, gxr []byte, ci, cr uint64) (*v1Keys, error) {
	h := prfHash(s.prf)
	if h == nil {
		return nil, fmt.Errorf("unsupported hash %d", s.prf)
	}
	p := prf{h}
	k := &v1Keys{prf: p, authPRF: v1AuthPRF(s.auth, p), hashF: h, gxi: gxi, gxr: gxr, ci: ci, cr: cr, blockSize: aes.BlockSize, hashSize: h().Size()}
	if s.auth == v1AuthPSK {
		k.skeyid = p.sum(psk, ni, nr)
	} else {
		k.skeyid = p.sum(slices.Concat(ni, nr), gxy)
	}
	c := cookies(ci, cr)
	k.d = p.sum(k.skeyid, gxy, c, []byte{0})
	k.a = p.sum(k.skeyid, k.d, gxy, c, []byte{1})
	k.e = p.sum(k.skeyid, k.a, gxy, c, []byte{2})
	n := int(s.keyBits) / 8
	key := k.e
	if len(key) < n {
		// Ka = K1 | K2 | ..., K1 = prf(SKEYID_e, 0), Ki = prf(SKEYID_e, Ki-1).
		key = nil
		prev := []byte{0}
		for len(key) < n {
			prev = p.sum(k.e, prev)
			key = append(key, prev...)
		}
	}
	b, err := aes.NewCipher(key[:n])
	if err != nil {
		return nil, err
	}
	k.block = b
	k.ivPhase1 = k.hash(gxi, gxr)[:aes.BlockSize]
	return k, nil
}

func (k *v1Keys) hash(data ...[]byte) []byte {
	h := k.hashF()
	for _, d := range data {
		h.Write(d)
	}
	return h.Sum(nil)
}

// hashI is HASH_I, the initiator's proof of the PSK, over its ID payload
// body; hashR is HASH_R (RFC 2409 5).
func (k *v1Keys) hashI(idiB []byte) []byte {
	return k.authPRF.sum(k.skeyid, k.gxi, k.gxr, cookies(k.ci, k.cr), k.saiB, idiB)
}

func (k *v1Keys) hashR(idrB []byte) []byte {
	return k.authPRF.sum(k.skeyid, k.gxr, k.gxi, cookies(k.cr, k.ci), k.saiB, idrB)
}

// msgIV is the first IV of a quick mode or informational exchange:
// hash(last phase 1 CBC block | M-ID) (RFC 2409 Appendix B).
func (k *v1Keys) msgIV(id uint32) []byte {
	return k.hash(k.ivPhase1, binary.BigEndian.AppendUint32(nil, id))[:k.blockSize]
}

// keymat is n bytes of KEYMAT for the ESP SA spi: prf(SKEYID_d, [g^xy |]
// protocol | SPI | Ni_b | Nr_b), extended as K1 | K2 | ... (RFC 2409 5.5).
func (k *v1Keys) keymat(gqm []byte, spi uint32, ni, nr []byte, n int) []byte {
	seed := append(append([]byte(nil), gqm...), wire1.ProtoESP)
	seed = binary.BigEndian.AppendUint32(seed, spi)
	seed = append(append(seed, ni...), nr...)
	var out, prev []byte
	for len(out) < n {
		prev = k.prf.sum(k.d, prev, seed)
		out = append(out, prev...)
	}
	return out[:n]
}

// seal encrypts the chain of ps after header h with iv and returns the
// message and the IV that follows it (its last ciphertext block).
func (k *v1Keys) seal(h wire1.Header, ps []wire1.Payload, iv []byte) (msg, next []byte) {
	first, chain := wire1.EncodeChain(ps)
	if pad := len(chain) % k.blockSize; pad != 0 {
		chain = append(chain, make([]byte, k.blockSize-pad)...)
	}
	h.Flags |= wire1.FlagEncrypted
	msg = wire1.AppendHeader(make([]byte, 0, wire1.HeaderLen+len(chain)), h, first, wire1.HeaderLen+len(chain))
	ct := make([]byte, len(chain))
	cipher.NewCBCEncrypter(k.block, iv).CryptBlocks(ct, chain)
	return append(msg, ct...), ct[len(ct)-k.blockSize:]
}

var errV1Cipher = errors.New("encrypted IKEv1 message is not whole blocks")

// open decrypts message b (its header already checked) with iv and
// returns the payload chain, padding included, and the next IV.
func (k *v1Keys) open(b, iv []byte) (plain, next []byte, err error) {
	ct := b[wire1.HeaderLen:]
	if len(ct) == 0 || len(ct)%k.blockSize != 0 {
		return nil, nil, errV1Cipher
	}
	plain = make([]byte, len(ct))
	cipher.NewCBCDecrypter(k.block, iv).CryptBlocks(plain, ct)
	return plain, append([]byte(nil), ct[len(ct)-k.blockSize:]...), nil
}

// checkHash compares a received hash with the expected one in constant time.
func checkHash(got *wire1.Hash, want []byte) bool {
	return got != nil && hmac.Equal(got.Data, want)
}

func (k *v1Keys) wipe() {
	if k == nil {
		return
	}
	for _, b := range [][]byte{k.skeyid, k.d, k.a, k.e} {
		clear(b)
	}
}

// natd is a NAT-D hash (RFC 3947 3.2): HASH(CKY-I | CKY-R | IP | Port).
func natd(h func() hash.Hash, ci, cr uint64, a netip.Addr, port uint16) []byte {
	x := h()
	x.Write(cookies(ci, cr))
	ip := a.As4()
	x.Write(ip[:])
	x.Write([]byte{byte(port >> 8), byte(port)})
	return x.Sum(nil)
}

// Vendor IDs cgwd sends and looks for: RFC 3947 NAT-T and RFC 3706 DPD.
var (
	vidNATT = md5Sum("RFC 3947")
	vidDPD  = []byte{0xaf, 0xca, 0xd7, 0x13, 0x68, 0xa1, 0xf1, 0xc9, 0x6b, 0x86, 0x96, 0xfc, 0x77, 0x57, 0x01, 0x00}
)

func md5Sum(s string) []byte { h := md5.Sum([]byte(s)); return h[:] }
