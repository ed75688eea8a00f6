package ike

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
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
}

func newCookieJar(now time.Time) (*cookieJar, error) {
	j := &cookieJar{rotated: now}
	if _, err := rand.Read(j.cur[:]); err != nil {
		return nil, fmt.Errorf("cookie secret: %w", err)
	}
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
	j.ver++
	j.rotated = now
}

func cookieMAC(secret *[32]byte, ver uint8, ni []byte, peer netip.Addr, spiI uint64) []byte {
	mac := hmac.New(sha256.New, secret[:])
	mac.Write(ni)
	mac.Write(peer.AsSlice())
	mac.Write(binary.BigEndian.AppendUint64(nil, spiI))
	return append([]byte{ver}, mac.Sum(nil)[:16]...)
}

// make is the cookie for an IKE_SA_INIT from peer with nonce ni and SPIi.
func (j *cookieJar) make(now time.Time, ni []byte, peer netip.Addr, spiI uint64) []byte {
	j.rotate(now)
	return cookieMAC(&j.cur, j.ver, ni, peer, spiI)
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
		return hmac.Equal(c, cookieMAC(&j.cur, j.ver, ni, peer, spiI))
	case j.hasPrev && c[0] == j.ver-1:
		return hmac.Equal(c, cookieMAC(&j.prev, j.ver-1, ni, peer, spiI))
	}
	return false
}
