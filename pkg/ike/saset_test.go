package ike

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/ike/wire"
)

// TestMain checks the SA set's invariants after every event of every
// session the tests run, and fails the run if one broke.
func TestMain(m *testing.M) {
	var mu sync.Mutex
	var broken []error
	saCheck = func(err error) {
		mu.Lock()
		broken = append(broken, err)
		mu.Unlock()
	}
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if len(broken) > 0 {
		fmt.Fprintf(os.Stderr, "SA set invariants broken %d times, first: %v\n", len(broken), broken[0])
		code = 1
	}
	os.Exit(code)
}

func testChild(spi uint32) *child {
	return &child{sa: &ChildSA{InSPI: spi, OutSPI: spi + 1}, expireAt: time.Now().Add(time.Hour)}
}

func TestSASetChildRoles(t *testing.T) {
	var set saSet
	a, b, c := testChild(0x100), testChild(0x200), testChild(0x300)
	if set.promote(a) != nil {
		t.Fatal("first Child SA replaced something")
	}
	set.out = a
	// A rekey collision: the peer's new SA b waits as the rival of a.
	a.rekeying, a.rival, set.rival = true, b, b
	if err := set.check(); err != nil {
		t.Fatal(err)
	}
	if set.childByOutSPI(0x201) != b || !set.installed(b) {
		t.Fatal("rival not found by its outbound SPI")
	}
	// Ours (c) wins: the peer's is retired, ours replaces a.
	a.rekeying, a.rival = false, nil
	set.retire(b, time.Now().Add(time.Second))
	if set.rival != b {
		t.Fatal("retire must not clear the rival slot itself")
	}
	set.rival = nil
	if replaced := set.promote(c); replaced != a {
		t.Fatalf("promote replaced %v, want a", replaced)
	}
	set.retire(a, time.Now().Add(30*time.Second))
	if err := set.check(); err != nil {
		t.Fatal(err)
	}
	if got := set.children(); len(got) != 3 || got[0] != c {
		t.Fatalf("children %v, want c first of three", got)
	}
	if set.remove(a) != true || set.out != nil {
		t.Fatal("removing the outbound Child SA does not report it")
	}
	set.out = c
	if set.remove(b) || set.installed(b) {
		t.Fatal("removed Child SA still installed")
	}
	if cs := set.clearChildren(); len(cs) != 1 || set.child != nil || set.out != nil {
		t.Fatalf("clearChildren left %+v, returned %d", set, len(cs))
	}
}

func TestSASetIKERoles(t *testing.T) {
	defer func(n int64) { halfOpenTotal.Store(n) }(halfOpenTotal.Load())
	var set saSet
	cur := &ikeSA{spiI: 1, spiR: 2, state: stEstablished}
	half := &ikeSA{spiI: 3, spiR: 4, state: stRespInit}
	set.ike = cur
	before := halfOpenTotal.Load()
	set.addHalf(half)
	if set.find(wire.Header{SPIi: 3, SPIr: 4}) != half || halfOpenTotal.Load() != before+1 {
		t.Fatal("half-open SA not found or not counted")
	}
	// The peer authenticates the half-open SA: it replaces cur.
	set.replaceIKE(half)
	if set.ike != half || set.isHalf(half) || halfOpenTotal.Load() != before {
		t.Fatal("replaceIKE left the SA half-open")
	}
	// Our rekey collides with the peer's: rival, then promoted.
	next := &ikeSA{spiI: 5, spiR: 6, state: stEstablished}
	half.rekeying, half.rival, set.ikeRival = true, next, next
	if err := set.check(); err != nil {
		t.Fatal(err)
	}
	half.rekeying, half.rival = false, nil
	set.promoteIKE(half, next)
	if set.ike != next || set.old != half || set.ikeRival != nil {
		t.Fatalf("promoteIKE: %+v", set)
	}
	if err := set.check(); err != nil {
		t.Fatal(err)
	}
	if sas := set.clearIKE(); len(sas) != 2 || set.ike != nil || set.old != nil {
		t.Fatalf("clearIKE returned %d SAs", len(sas))
	}
}

// TestSASetCheck shows that check catches each broken invariant.
func TestSASetCheck(t *testing.T) {
	a, b := testChild(0x100), testChild(0x200)
	sa := &ikeSA{spiI: 1}
	for name, set := range map[string]*saSet{
		"IKE SA in two roles":           {ike: sa, old: sa},
		"half-open SA is also current":  {ike: sa, halves: []*ikeSA{sa}},
		"IKE rival without a rekey":     {ike: sa, ikeRival: &ikeSA{spiI: 2}},
		"spare not being deleted":       {ike: sa, spare: &ikeSA{spiI: 2, state: stEstablished}},
		"Child SA in two roles":         {child: a, retired: []*child{a}},
		"Child rival without a rekey":   {child: a, rival: b},
		"Child rival of another rekey":  {child: &child{sa: a.sa, rekeying: true, rival: a}, rival: b},
		"outbound SA not installed":     {child: a, out: b},
		"outbound SA with no Child SAs": {out: a},
	} {
		if set.check() == nil {
			t.Errorf("%s: check passes", name)
		}
	}
}
