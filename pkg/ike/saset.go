package ike

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cgwd/cgwd/pkg/ike/wire"
)

// saSet is every IKE and Child SA a session holds, by role. It keeps the
// books only: the Session installs into and removes from the data path and
// sends what the changes call for. Its invariants, which check verifies:
//
//   - No SA holds two roles: ike, old, ikeRival, spare and each of halves
//     are distinct IKE SAs; child, rival and each of retired are distinct
//     Child SAs.
//   - ikeRival (the peer's new IKE SA of a collision with our rekey of ike,
//     RFC 7296 2.8.2) is set only while ike is rekeying, as ike.rival.
//   - rival (the peer's new Child SA of a collision with our rekey of
//     child, RFC 7296 2.8.1) is set only while child is rekeying, as
//     child.rival.
//   - spare (the redundant new IKE SA of a collision, until its creator's
//     delete completes) is being deleted.
//   - halves are peer-initiated IKE SAs between IKE_SA_INIT and IKE_AUTH,
//     each counted once in halfOpenTotal.
//   - out, the Child SA whose outbound SA the data path sends with, is nil
//     or installed: child, rival or retired.
type saSet struct {
	ike      *ikeSA   // established, or being established by us
	halves   []*ikeSA // peer-initiated SAs between IKE_SA_INIT and IKE_AUTH
	old      *ikeSA   // replaced by an IKE rekey, kept to answer or send its delete
	ikeRival *ikeSA   // the peer's new IKE SA of a rekey collision
	spare    *ikeSA   // the redundant new IKE SA of a rekey collision

	child   *child   // the current Child SA
	rival   *child   // the peer's new Child SA of a rekey collision
	retired []*child // replaced or redundant, installed until deleted or expired
	out     *child   // whose outbound SA the data path sends with
}

// ikeSAs lists the IKE SAs of every role, the current one first.
func (set *saSet) ikeSAs() []*ikeSA {
	var sas []*ikeSA
	for _, sa := range []*ikeSA{set.ike, set.old, set.ikeRival, set.spare} {
		if sa != nil {
			sas = append(sas, sa)
		}
	}
	return append(sas, set.halves...)
}

// find returns the IKE SA a message with header h belongs to, or nil.
func (set *saSet) find(h wire.Header) *ikeSA {
	for _, sa := range set.ikeSAs() {
		if sa.spiI == h.SPIi && (sa.spiR == h.SPIr || (sa.state == stInitSent && h.Exchange == wire.IKESAInit)) {
			return sa
		}
	}
	return nil
}

// clearIKE forgets every IKE SA and returns them, for their keys to be wiped.
func (set *saSet) clearIKE() []*ikeSA {
	sas := set.ikeSAs()
	set.clearHalves()
	set.ike, set.old, set.ikeRival, set.spare = nil, nil, nil, nil
	return sas
}

// replaceIKE makes sa, just authenticated as responder, the current IKE SA;
// the SAs of the one it replaces are forgotten (the peer started over).
func (set *saSet) replaceIKE(sa *ikeSA) {
	set.removeHalf(sa)
	set.ike, set.old, set.ikeRival, set.spare = sa, nil, nil, nil
}

// promoteIKE makes next, the new IKE SA of a rekey of old, the current
// one, and keeps old until its delete completes.
func (set *saSet) promoteIKE(old, next *ikeSA) {
	set.old, set.ike = old, next
	if set.ikeRival == next {
		set.ikeRival = nil
	}
}

// halfBySPIi finds a half-open SA by the initiator's SPI.
func (set *saSet) halfBySPIi(spiI uint64) *ikeSA {
	for _, sa := range set.halves {
		if sa.spiI == spiI {
			return sa
		}
	}
	return nil
}

func (set *saSet) isHalf(sa *ikeSA) bool { return slices.Contains(set.halves, sa) }

func (set *saSet) addHalf(sa *ikeSA) {
	set.halves = append(set.halves, sa)
	halfOpenTotal.Add(1)
}

func (set *saSet) removeHalf(sa *ikeSA) {
	if i := slices.Index(set.halves, sa); i >= 0 {
		set.halves = slices.Delete(set.halves, i, i+1)
		halfOpenTotal.Add(-1)
	}
}

func (set *saSet) clearHalves() {
	halfOpenTotal.Add(-int64(len(set.halves)))
	set.halves = nil
}

// children lists the installed Child SAs, the current one first.
func (set *saSet) children() []*child {
	var cs []*child
	for _, c := range []*child{set.child, set.rival} {
		if c != nil {
			cs = append(cs, c)
		}
	}
	return append(cs, set.retired...)
}

// installed reports whether c is still in the data path.
func (set *saSet) installed(c *child) bool { return slices.Contains(set.children(), c) }

// childByOutSPI finds an installed Child SA by the SPI the peer receives
// it on, which is how the peer names it in REKEY_SA and Delete payloads.
func (set *saSet) childByOutSPI(spi uint32) *child {
	for _, c := range set.children() {
		if c.sa.OutSPI == spi {
			return c
		}
	}
	return nil
}

// promote makes the installed c the current Child SA and returns the one
// it replaces (nil if none), which the caller retires.
func (set *saSet) promote(c *child) (replaced *child) {
	replaced = set.child
	set.child = c
	if set.rival == c {
		set.rival = nil
	}
	set.retired = slices.DeleteFunc(set.retired, func(x *child) bool { return x == c })
	return replaced
}

// retire keeps c installed until it is deleted, at the latest until.
func (set *saSet) retire(c *child, until time.Time) {
	if until.Before(c.expireAt) {
		c.expireAt = until
	}
	if !slices.Contains(set.retired, c) {
		set.retired = append(set.retired, c)
	}
}

// remove forgets c and reports whether outbound traffic used it; out is
// then nil until the caller moves the traffic to another Child SA.
func (set *saSet) remove(c *child) (wasOut bool) {
	if set.child == c {
		set.child = nil
	}
	if set.rival == c {
		set.rival = nil
	}
	set.retired = slices.DeleteFunc(set.retired, func(x *child) bool { return x == c })
	if set.out == c {
		set.out = nil
		return true
	}
	return false
}

// clearChildren forgets every Child SA and returns them.
func (set *saSet) clearChildren() []*child {
	cs := set.children()
	set.child, set.rival, set.retired, set.out = nil, nil, nil, nil
	return cs
}

// check reports the first broken invariant of the doc comment, or nil.
func (set *saSet) check() error {
	ikes := set.ikeSAs()
	for i, sa := range ikes {
		if slices.Contains(ikes[i+1:], sa) {
			return fmt.Errorf("IKE SA %016x holds two roles", sa.spiI)
		}
	}
	if r := set.ikeRival; r != nil && (set.ike == nil || !set.ike.rekeying || set.ike.rival != r) {
		return errors.New("IKE rekey rival set while the current IKE SA is not rekeying against it")
	}
	if set.spare != nil && set.spare.state != stDeleting {
		return errors.New("spare IKE SA is not being deleted")
	}
	cs := set.children()
	for i, c := range cs {
		if slices.Contains(cs[i+1:], c) {
			return fmt.Errorf("child SA %08x holds two roles", c.sa.InSPI)
		}
	}
	if r := set.rival; r != nil && (set.child == nil || !set.child.rekeying || set.child.rival != r) {
		return errors.New("child rekey rival set while the current Child SA is not rekeying against it")
	}
	if set.out != nil && !slices.Contains(cs, set.out) {
		return fmt.Errorf("outbound Child SA %08x is not installed", set.out.sa.InSPI)
	}
	return nil
}
