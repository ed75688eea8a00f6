package ike

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/cgwd/cgwd/pkg/ike/wire"
)

// fragmentsOf seals message m (header and payloads) as n SKF fragments with sk.
func fragmentsOf(t testing.TB, sk *skCipher, m *wire.Message, n int) [][]byte {
	t.Helper()
	plain, err := marshal(&wire.Message{Header: m.Header, Payloads: m.Payloads}, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, chain := wire.PayloadType(plain[16]), plain[wire.HeaderLen:]
	var out [][]byte
	size := (len(chain) + n - 1) / n
	for i := range n {
		part := chain[min(i*size, len(chain)):min((i+1)*size, len(chain))]
		out = append(out, wire.SealFragment(sk, m.Header, first, uint16(i+1), uint16(n), part))
	}
	return out
}

// TestFragmentedRequestIsReassembled: both ends announce RFC 7383; a
// request the peer sends in three fragments, out of order and one twice,
// is reassembled, verified and answered once, and the tunnel stays up.
func TestFragmentedRequestIsReassembled(t *testing.T) {
	a, b := established(t)
	var frags [][]byte
	onLoop(t, b.s, func() {
		sa := b.s.sas.ike
		if !sa.fragOK {
			t.Error("fragmentation not negotiated between two cgwd sessions")
		}
		m := &wire.Message{Header: b.s.reqHeader(sa, wire.Informational), Payloads: []wire.Payload{
			&wire.Raw{PType: wire.PayloadV, Body: bytes.Repeat([]byte("cgwd"), 300)}}}
		frags = fragmentsOf(t, sa.keys.encR, m, 3)
		sa.nextID++ // b never sent it itself
	})
	before := snap(t, a.s)
	for _, i := range []int{2, 0, 2, 1} {
		a.s.Deliver(frags[i], true)
	}
	waitFor(t, 5e9, "the reassembled request answered", func() bool { return snap(t, a.s).peerID == before.peerID+1 })
	if d := dropped(a.s, DropMalformed) + dropped(a.s, DropBadICV); d != 0 {
		t.Fatalf("%d fragments dropped as malformed or forged", d)
	}
	if !up(a, b) {
		t.Fatal("tunnel down after a fragmented request")
	}
	// Status counts every verified fragment (the duplicate too) and the one
	// message reassembled.
	if f := a.s.Status().Fragments; f.Received != 4 || f.Reassembled != 1 {
		t.Fatalf("fragment counters %+v, want 4 received and 1 reassembled", f)
	}
	// A forged fragment (bad ICV) is dropped before it is kept.
	bad := bytes.Clone(frags[0])
	bad[len(bad)-1] ^= 1
	n := dropped(a.s, DropBadICV)
	onLoop(t, a.s, func() { binary.BigEndian.PutUint32(bad[20:], a.s.sas.ike.peerID) })
	a.s.Deliver(bad, true)
	waitDropped(t, a.s, DropBadICV, n)
	if f := a.s.Status().Fragments; f.Received != 4 {
		t.Fatalf("a forged fragment counted as received: %+v", f)
	}
}

func TestReassemblyBounds(t *testing.T) {
	frag := func(num, total uint16, n int) wire.Fragment {
		return wire.Fragment{Num: num, Total: total, Plain: make([]byte, n)}
	}
	var r reassembly
	if inner, err := r.add(5, false, frag(2, 3, 10), nil); inner != nil || err != nil {
		t.Fatal(inner, err)
	}
	if _, err := r.add(5, false, frag(1, 4, 10), nil); !errors.Is(err, errReassembly) {
		t.Fatalf("a fragment with another total: %v", err)
	}
	if inner, err := r.add(5, false, frag(2, 3, 10), nil); inner != nil || err != nil || r.have != 1 {
		t.Fatalf("a duplicate counted: have %d, %v", r.have, err)
	}
	r.add(6, false, frag(1, 2, 10), nil) // another message starts over
	if r.id != 6 || r.have != 1 {
		t.Fatalf("another message did not start over: %+v", r)
	}
	if inner, _ := r.add(6, false, frag(2, 2, 7), nil); len(inner) != 17 {
		t.Fatalf("reassembled %d bytes, want 17", len(inner))
	}
	r = reassembly{}
	for i := range uint16(wire.MaxFragments) {
		_, err := r.add(7, true, frag(i+1, wire.MaxFragments, 4096), nil)
		if err != nil {
			if r.size != 0 || r.parts != nil {
				t.Fatal("an oversized message was kept")
			}
			return
		}
		if r.size > maxReassembled {
			t.Fatalf("%d bytes held", r.size)
		}
	}
	t.Fatal("32 fragments of 4096 bytes were accepted")
}

// clearCipher is a wire.Cipher that seals nothing, for fuzzing.
type clearCipher struct{}

func (clearCipher) SealedLen(n int) int                      { return n }
func (clearCipher) Seal(head, plain []byte) []byte           { return append(head, plain...) }
func (clearCipher) Open(msg []byte, off int) ([]byte, error) { return bytes.Clone(msg[off:]), nil }

// FuzzReassembly feeds datagrams (length-prefixed in the input) through
// ParseFragment and a reassembly: nothing panics, and what is held stays
// within MaxFragments and maxReassembled.
func FuzzReassembly(f *testing.F) {
	h := wire.Header{SPIi: 1, SPIr: 2, Exchange: wire.Informational, MsgID: 1}
	var seed []byte
	for i := range uint16(3) {
		d := wire.SealFragment(clearCipher{}, h, wire.PayloadV, i+1, 3, []byte("fragment"))
		seed = binary.BigEndian.AppendUint16(seed, uint16(len(d)))
		seed = append(seed, d...)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, in []byte) {
		var r reassembly
		for len(in) >= 2 {
			n := int(binary.BigEndian.Uint16(in))
			in = in[2:]
			if n > len(in) {
				return
			}
			d := in[:n]
			in = in[n:]
			fr, err := wire.ParseFragment(d, clearCipher{})
			if err != nil {
				continue
			}
			hd, _ := wire.ParseHeader(d)
			r.add(hd.MsgID, hd.IsResponse(), fr, d)
			if r.size > maxReassembled || len(r.parts) > wire.MaxFragments || r.have > len(r.parts) {
				t.Fatalf("reassembly holds %d bytes in %d parts (have %d)", r.size, len(r.parts), r.have)
			}
		}
	})
}

// TestReassemblyHashesFirstFragmentOnArrival: a datagram's buffer goes back
// to the pool once it is handled, so what stands for a fragmented request
// (fragment 1's hash) must be taken when fragment 1 arrives, not from its
// bytes when the last fragment does.
func TestReassemblyHashesFirstFragmentOnArrival(t *testing.T) {
	d := []byte("fragment 1 as received")
	want := sha256.Sum256(d)
	var r reassembly
	r.add(9, false, wire.Fragment{Num: 1, Total: 2, Next: wire.PayloadV, Plain: []byte("a")}, d)
	copy(d, "another packet reusing") // the pooled buffer, reused
	if inner, err := r.add(9, false, wire.Fragment{Num: 2, Total: 2, Plain: []byte("b")}, nil); inner == nil || err != nil {
		t.Fatal(inner, err)
	}
	if r.firstHash != want {
		t.Fatal("the request's hash is not fragment 1's as received")
	}
}
