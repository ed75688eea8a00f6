package ike

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"net/netip"
	"time"
)

// cookieRotate is how often the cookie secret changes; a cookie made with
// the previous secret is still accepted until the next rotation, so a
// peer's retry never straddles more than one change.
const cookieRotate = 2 * time.Minute

// cookieJar makes and checks RFC 7296 2.6 stateless cookies: a version
// byte naming the secret, then HMAC-SHA256(secret, Ni | IPi | SPIi)
// truncated to 16 bytes. The secret rotates every cookieRotate.
type cookieJar struct {
	cur, prev [32]byte
	ver       uint8 // version byte of cur; prev's is ver-1
	hasPrev   bool
	rotated   time.Time
	// macCur and macPrev are HMACs keyed with cur and prev, reused so that
	// answering a flood allocates nothing; out holds the last cookie made
	// and want the one checked against. Not safe for concurrent use.
	macCur, macPrev hash.Hash
	out, want       [17]byte
}

func newCookieJar(now time.Time) (*cookieJar, error) {
	j := &cookieJar{rotated: now}
	if _, err := rand.Read(j.cur[:]); err != nil {
		return nil, fmt.Errorf("cookie secret: %w", err)
	}
	j.macCur = hmac.New(sha256.New, j.cur[:])
	return j, nil
}

// rotate replaces the secret when it is older than cookieRotate.
func (j *cookieJar) rotate(now time.Time) {
	age := now.Sub(j.rotated)
	if age < cookieRotate {
		return
	}
	var next [32]byte
	if _, err := rand.Read(next[:]); err != nil {
		return // keep the current secret rather than use a weak one
	}
	// After more than one idle period the old secret is too old to keep.
	j.prev, j.cur, j.hasPrev = j.cur, next, age < 2*cookieRotate
	j.macPrev, j.macCur = j.macCur, hmac.New(sha256.New, j.cur[:])
	j.ver++
	j.rotated = now
}

// cookieMAC writes the cookie of version ver made with mac into out.
func cookieMAC(out *[17]byte, mac hash.Hash, ver uint8, ni []byte, peer netip.Addr, spiI uint64) {
	mac.Reset()
	mac.Write(ni)
	a16 := peer.As16()
	if peer.Is4() {
		mac.Write(a16[12:])
	} else {
		mac.Write(a16[:])
	}
	var spi [8]byte
	binary.BigEndian.PutUint64(spi[:], spiI)
	mac.Write(spi[:])
	var sum [sha256.Size]byte
	mac.Sum(sum[:0])
	out[0] = ver
	copy(out[1:], sum[:16])
}

// make is the cookie for an IKE_SA_INIT from peer with nonce ni and SPIi.
// It is valid until the next call.
func (j *cookieJar) make(now time.Time, ni []byte, peer netip.Addr, spiI uint64) []byte {
	j.rotate(now)
	cookieMAC(&j.out, j.macCur, j.ver, ni, peer, spiI)
	return j.out[:]
}

// valid reports whether c is a cookie this jar made, with the current or
// the previous secret, for these values. It compares in constant time.
func (j *cookieJar) valid(now time.Time, c, ni []byte, peer netip.Addr, spiI uint64) bool {
	j.rotate(now)
	if len(c) != 17 {
		return false
	}
	switch {
	case c[0] == j.ver:
		cookieMAC(&j.want, j.macCur, j.ver, ni, peer, spiI)
	case j.hasPrev && c[0] == j.ver-1:
		cookieMAC(&j.want, j.macPrev, j.ver-1, ni, peer, spiI)
	default:
		return false
	}
	return hmac.Equal(c, j.want[:])
}
