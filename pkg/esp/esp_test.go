package esp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
)

var suites = []Suite{
	{AESGCM16, 16, IntegNone},
	{AESGCM16, 32, IntegNone},
	{AESCBC, 16, HMACSHA1_96},
	{AESCBC, 32, HMACSHA256_128},
	{AESCBC, 16, HMACSHA384_192},
	{AESCBC, 32, HMACSHA512_256},
}

func keymat(s Suite, seed byte) []byte {
	k := make([]byte, s.KeyMatLen())
	for i := range k {
		k[i] = seed + byte(i)
	}
	return k
}

// ipv4 builds a minimal IPv4 packet of n bytes from src to dst.
func ipv4(src, dst string, n int) []byte {
	p := make([]byte, n)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(n))
	p[9] = 1
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	for i := 20; i < n; i++ {
		p[i] = byte(i)
	}
	return p
}

func pair(t testing.TB, s Suite) (*Outbound, *Inbound) {
	t.Helper()
	o, err := NewOutbound(0xc0ffee01, s, keymat(s, 7))
	if err != nil {
		t.Fatal(err)
	}
	in, err := NewInbound(0xc0ffee01, s, keymat(s, 7), DefaultWindow, []Selector{AnyIPv4}, []Selector{AnyIPv4})
	if err != nil {
		t.Fatal(err)
	}
	return o, in
}

func TestRoundTripEverySuite(t *testing.T) {
	for _, s := range suites {
		t.Run(s.String(), func(t *testing.T) {
			o, in := pair(t, s)
			for _, n := range []int{20, 21, 64, 1400} {
				inner := ipv4("169.254.10.2", "169.254.10.1", n)
				buf := make([]byte, n+s.Overhead())
				pkt, err := o.Seal(buf, inner)
				if err != nil {
					t.Fatal(err)
				}
				if n > 40 && bytes.Contains(pkt, inner[20:]) {
					t.Fatal("payload in clear")
				}
				got, err := in.Open(pkt)
				if err != nil {
					t.Fatalf("n=%d: %v", n, err)
				}
				if !bytes.Equal(got, inner) {
					t.Fatalf("n=%d: inner differs", n)
				}
			}
			if in.Counters.Packets.Load() != 4 || o.Counters.Packets.Load() != 4 {
				t.Fatal("packet counters wrong")
			}
		})
	}
}

func TestGCMExplicitIVIsSequence(t *testing.T) {
	s := suites[1]
	o, _ := pair(t, s)
	buf := make([]byte, 2048)
	for want := uint64(1); want <= 3; want++ {
		pkt, _ := o.Seal(buf, ipv4("1.1.1.1", "2.2.2.2", 40))
		if binary.BigEndian.Uint32(pkt[4:]) != uint32(want) || binary.BigEndian.Uint64(pkt[8:]) != want {
			t.Fatalf("seq/IV %x", pkt[4:16])
		}
	}
}

func TestTamperIsAuthDrop(t *testing.T) {
	for _, s := range suites {
		o, in := pair(t, s)
		buf := make([]byte, 2048)
		for _, off := range []int{4, 9, 30, -1} {
			pkt, _ := o.Seal(buf, ipv4("1.1.1.1", "2.2.2.2", 60))
			if off < 0 {
				off = len(pkt) - 1
			}
			pkt[off] ^= 1
			if _, err := in.Open(pkt); !errors.Is(err, ErrAuth) && !errors.Is(err, ErrReplay) {
				t.Fatalf("%s: flip at %d: %v", s, off, err)
			}
		}
		if in.Counters.Drops[DropAuth].Load() == 0 {
			t.Fatalf("%s: no auth drops counted", s)
		}
	}
}

func TestReplayIsDropped(t *testing.T) {
	o, in := pair(t, suites[0])
	buf := make([]byte, 2048)
	pkt, _ := o.Seal(buf, ipv4("1.1.1.1", "2.2.2.2", 60))
	saved := append([]byte(nil), pkt...)
	if _, err := in.Open(pkt); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Open(saved); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	if in.Counters.Drops[DropReplay].Load() != 1 {
		t.Fatal("replay not counted")
	}
}

func TestWindowOrderAndAge(t *testing.T) {
	w := newReplayWindow(64)
	for _, seq := range []uint64{5, 3, 4, 1, 2} {
		if !w.check(seq) {
			t.Fatalf("%d refused", seq)
		}
		w.update(seq)
	}
	for _, seq := range []uint64{0, 1, 5} {
		if w.check(seq) {
			t.Fatalf("%d accepted twice", seq)
		}
	}
	w.update(1000)
	if w.check(1000-64) || !w.check(1000-63) || w.check(1000) {
		t.Fatal("window edges wrong")
	}
	w.update(1000 + 64*5 + 3) // slide by several words: old bits cleared
	for s := uint64(1000 + 64*4 + 4); s < 1000+64*5+3; s++ {
		if !w.check(s) {
			t.Fatalf("%d refused after slide", s)
		}
	}
}

func TestWindowSizeLimits(t *testing.T) {
	s := suites[0]
	for _, w := range []int{0, 32, 100, 4096} {
		if _, err := NewInbound(1, s, keymat(s, 1), w, []Selector{AnyIPv4}, []Selector{AnyIPv4}); err == nil {
			t.Errorf("window %d accepted", w)
		}
	}
}

func TestSelectorsEnforced(t *testing.T) {
	s := suites[0]
	o, _ := pair(t, s)
	narrow := Selector{netip.MustParseAddr("10.0.0.0"), netip.MustParseAddr("10.0.0.255")}
	in, err := NewInbound(o.SPI, s, keymat(s, 7), 64, []Selector{narrow}, []Selector{AnyIPv4})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	pkt, _ := o.Seal(buf, ipv4("1.1.1.1", "10.0.0.9", 40))
	if _, err := in.Open(pkt); err != nil {
		t.Fatalf("inside selector: %v", err)
	}
	pkt, _ = o.Seal(buf, ipv4("1.1.1.1", "10.0.1.9", 40))
	if _, err := in.Open(pkt); !errors.Is(err, ErrSelector) {
		t.Fatalf("outside selector: %v", err)
	}
	if in.Counters.Drops[DropTS].Load() != 1 {
		t.Fatal("ts drop not counted")
	}
}

func TestSeqExhaustion(t *testing.T) {
	o, _ := pair(t, suites[0])
	o.seq.Store(maxSeq - 1)
	buf := make([]byte, 2048)
	if _, err := o.Seal(buf, ipv4("1.1.1.1", "2.2.2.2", 40)); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Seal(buf, ipv4("1.1.1.1", "2.2.2.2", 40)); !errors.Is(err, ErrSeqExhausted) {
		t.Fatalf("got %v", err)
	}
}

func TestClassifyUDP(t *testing.T) {
	cases := map[int][]byte{
		UDPKeepalive: {0xff},
		UDPIKE:       {0, 0, 0, 0, 1, 2},
		UDPESP:       {0, 0, 0, 1, 0, 0, 0, 1},
		UDPInvalid:   {1, 2},
	}
	for want, p := range cases {
		if got := ClassifyUDP(p); got != want {
			t.Errorf("%x: %d, want %d", p, got, want)
		}
	}
}

func TestZeroAllocs(t *testing.T) {
	for _, s := range suites {
		o, in := pair(t, s)
		inner := ipv4("1.1.1.1", "2.2.2.2", 1400)
		buf := make([]byte, 2048)
		n := testing.AllocsPerRun(100, func() {
			pkt, err := o.Seal(buf, inner)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := in.Open(pkt); err != nil {
				t.Fatal(err)
			}
		})
		if n != 0 {
			t.Errorf("%s: %v allocations per packet", s, n)
		}
	}
}

func FuzzOpen(f *testing.F) {
	for _, s := range suites[:3] {
		o, _ := pair(f, s)
		buf := make([]byte, 2048)
		pkt, _ := o.Seal(buf, ipv4("1.1.1.1", "2.2.2.2", 41))
		f.Add(uint8(s.Cipher), append([]byte(nil), pkt...))
	}
	f.Add(uint8(1), []byte{0xc0, 0xff, 0xee, 0x01, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, c uint8, pkt []byte) {
		s := suites[int(c)%3]
		_, in := pair(t, s)
		inner, err := in.Open(pkt)
		if err == nil && inner != nil && (len(inner) < 20 || len(inner) > len(pkt)) {
			t.Fatalf("bad inner length %d", len(inner))
		}
	})
}

func BenchmarkSealOpen(b *testing.B) {
	for _, s := range []Suite{suites[1], suites[3]} {
		b.Run(s.String(), func(b *testing.B) {
			o, in := pair(b, s)
			inner := ipv4("1.1.1.1", "2.2.2.2", 1400)
			buf := make([]byte, 2048)
			b.SetBytes(int64(len(inner)))
			b.ReportAllocs()
			for b.Loop() {
				pkt, _ := o.Seal(buf, inner)
				if _, err := in.Open(pkt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestParallelSealDecrypt seals and decrypts with one SA from many
// goroutines at once (run it with -race): every sequence number is used
// once, and every packet is accepted once, in order.
func TestParallelSealDecrypt(t *testing.T) {
	const n, workers = 4000, 8
	for _, s := range suites {
		t.Run(s.String(), func(t *testing.T) {
			o, in := pair(t, s)
			pkts := make([][]byte, n)
			var wg sync.WaitGroup
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var sc Scratch
					defer sc.Release()
					for {
						seq, err := o.NextSeq()
						if err != nil {
							t.Error(err)
							return
						}
						if seq > n {
							return
						}
						inner := ipv4("1.1.1.1", "2.2.2.2", 40+int(seq%1000))
						binary.BigEndian.PutUint64(inner[20:], seq)
						pkt, err := o.SealSeq(&sc, make([]byte, len(inner)+s.Overhead()), inner, seq)
						if err != nil {
							t.Error(err)
							return
						}
						if pkts[seq-1] != nil {
							t.Errorf("sequence number %d used twice", seq)
						}
						pkts[seq-1] = pkt
					}
				}()
			}
			wg.Wait()
			ds := make([]Decrypted, n)
			next := atomic.Int64{}
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var sc Scratch
					defer sc.Release()
					for i := next.Add(1) - 1; i < n; i = next.Add(1) - 1 {
						in.Decrypt(&sc, pkts[i], &ds[i])
					}
				}()
			}
			wg.Wait()
			for i := range ds {
				inner, err := in.Accept(&ds[i])
				if err != nil || binary.BigEndian.Uint64(inner[20:]) != uint64(i+1) {
					t.Fatalf("packet %d: %v", i+1, err)
				}
				if binary.BigEndian.Uint32(pkts[i][4:]) != uint32(i+1) {
					t.Fatalf("packet %d has sequence number %d", i+1, binary.BigEndian.Uint32(pkts[i][4:]))
				}
			}
			if in.Counters.Packets.Load() != n {
				t.Fatalf("accepted %d", in.Counters.Packets.Load())
			}
		})
	}
}

// TestPrecheckWhileAccepting pre-checks packets on one goroutine while
// another accepts earlier ones (as the UDP reader and the ordered stage
// do): the pre-check never refuses a packet that is new, and every drop is
// counted once under the right reason.
func TestPrecheckWhileAccepting(t *testing.T) {
	s := suites[1]
	o, in := pair(t, s)
	var stream [][]byte
	var fresh, dups int
	for i := 0; i < 20000; i++ {
		jump := i%500 == 0
		if jump { // a jump of more than the window
			o.seq.Add(3 * DefaultWindow)
		}
		pkt, _ := o.Seal(make([]byte, 200), ipv4("1.1.1.1", "2.2.2.2", 100))
		fresh++
		switch {
		case i%7 == 3 && !jump && i%11 != 6: // overtakes its predecessor
			stream = append(stream[:len(stream)-1], pkt, stream[len(stream)-1])
		case i%11 == 5: // duplicated
			stream = append(stream, pkt, append([]byte(nil), pkt...))
			dups++
		default:
			stream = append(stream, pkt)
		}
	}
	ch := make(chan []byte, 256)
	go func() {
		defer close(ch)
		for _, pkt := range stream {
			if in.Precheck(pkt) == nil {
				ch <- pkt
			}
		}
	}()
	var sc Scratch
	var d Decrypted
	accepted := 0
	for pkt := range ch {
		in.Decrypt(&sc, pkt, &d)
		if inner, err := in.Accept(&d); err == nil && inner != nil {
			accepted++
		}
	}
	if accepted != fresh || in.Counters.Drops[DropReplay].Load() != uint64(dups) {
		t.Fatalf("accepted %d of %d, %d replays counted, want %d", accepted, fresh, in.Counters.Drops[DropReplay].Load(), dups)
	}
}

func TestSealedLen(t *testing.T) {
	for _, s := range suites {
		o, _ := pair(t, s)
		for n := 20; n < 100; n++ {
			pkt, err := o.Seal(make([]byte, 2048), ipv4("1.1.1.1", "2.2.2.2", n))
			if err != nil || len(pkt) != o.SealedLen(n) || len(pkt) > n+s.Overhead() {
				t.Fatalf("%s: n=%d: sealed %d, SealedLen %d, %v", s, n, len(pkt), o.SealedLen(n), err)
			}
		}
	}
}

// TestZeroAllocsSplit is TestZeroAllocs for the parallel path's calls.
func TestZeroAllocsSplit(t *testing.T) {
	for _, s := range suites {
		o, in := pair(t, s)
		inner := ipv4("1.1.1.1", "2.2.2.2", 1400)
		buf := make([]byte, 2048)
		var sc Scratch
		var d Decrypted
		n := testing.AllocsPerRun(100, func() {
			seq, _ := o.NextSeq()
			pkt, err := o.SealSeq(&sc, buf, inner, seq)
			if err != nil {
				t.Fatal(err)
			}
			if err := in.Precheck(pkt); err != nil {
				t.Fatal(err)
			}
			in.Decrypt(&sc, pkt, &d)
			if _, err := in.Accept(&d); err != nil {
				t.Fatal(err)
			}
		})
		if n != 0 {
			t.Errorf("%s: %v allocations per packet", s, n)
		}
	}
}
