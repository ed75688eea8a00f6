package ike

import (
	"crypto/rand"
	"log/slog"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/ike/wire"
	"github.com/cgwd/cgwd/pkg/proposal"
)

// TestEveryMODPGroupEstablishesWithPFS: two sessions agree on each MODP
// group for the IKE SA and again for PFS when the Child SA is rekeyed;
// weak groups work when written out and are logged as weak on both ends.
func TestEveryMODPGroupEstablishesWithPFS(t *testing.T) {
	for _, g := range []uint16{2, 5, 17, 18, 22, 23, 24} {
		name := proposal.GroupName(g)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := "aes128-sha256-" + name
			ci := cfg("198.51.100.2", "203.0.113.10", "k", p, p, true)
			cr := cfg("203.0.113.10", "198.51.100.2", "k", p, p, false)
			ci.ChildLifetime, ci.RekeyMargin = 3*time.Second, time.Second
			var la, lb syncBuf
			ci.Logger, cr.Logger = slog.New(slog.NewTextHandler(&la, nil)), slog.New(slog.NewTextHandler(&lb, nil))
			a, b := pairUp(t, ci, cr)
			waitFor(t, 20*time.Second, "child SAs", func() bool { return up(a, b) })
			waitFor(t, 20*time.Second, "a Child SA rekey with PFS", func() bool {
				return a.s.Status().ChildRekeys >= 1 && b.s.Status().ChildRekeys >= 1 && up(a, b)
			})
			for _, l := range []string{la.String(), lb.String()} {
				if weak := strings.Contains(l, "weak Diffie-Hellman group negotiated"); weak != proposal.WeakGroup(g) {
					t.Errorf("weak warning %v for group %d:\n%s", weak, g, l)
				}
				if !strings.Contains(l, "sa=\"ESP PFS\" group="+strconv.Itoa(int(g))) && (proposal.WeakGroup(g) || g >= 23) {
					t.Errorf("no PFS warning for group %d:\n%s", g, l)
				}
			}
		})
	}
}

// TestInitWithValueOutsideSubgroupIsRefused: an IKE_SA_INIT whose group 24
// KE value lies in 2..p-2 but outside the prime-order subgroup (p-g, of
// order 2q) is answered INVALID_SYNTAX, logged with the named error, and
// leaves no half-open SA.
func TestInitWithValueOutsideSubgroupIsRefused(t *testing.T) {
	const p = "aes128-sha256-modp2048s256"
	cr := cfg("203.0.113.10", "198.51.100.2", "k", p, p, false)
	var logs syncBuf
	cr.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	_, b := pairUp(t, cfg("198.51.100.2", "203.0.113.10", "k", p, p, false), cr)
	prop, err := ParseProposal(p, true)
	if err != nil {
		t.Fatal(err)
	}
	prop.Num = 1
	m := modpParams()[24]
	bad := new(big.Int).Sub(m.p, m.g).FillBytes(make([]byte, 256))
	ni := make([]byte, 32)
	rand.Read(ni)
	b.s.Deliver(cleartext(t, wire.Header{SPIi: randSPI(), Exchange: wire.IKESAInit, Flags: wire.FlagInitiator},
		&wire.SA{Proposals: []Proposal{prop}}, &wire.KE{Group: 24, Data: bad}, &wire.Nonce{Data: ni}), false)
	waitFor(t, 5*time.Second, "the refusal in the log", func() bool {
		return strings.Contains(logs.String(), "invalid Diffie-Hellman public value: group 24: not in the prime-order subgroup")
	})
	b.link.mu.Lock()
	sent := b.link.sent
	b.link.mu.Unlock()
	if len(sent) == 0 {
		t.Fatal("no answer")
	}
	answer, err := parse(sent[len(sent)-1], nil)
	if err != nil || answer.Notify(wire.NInvalidSyntax) == nil {
		t.Fatalf("answer %+v (%v), want INVALID_SYNTAX", answer, err)
	}
	if h := halfOpen(t, b.s); h != 0 {
		t.Fatalf("%d half-open SAs after a value outside the subgroup", h)
	}
}
