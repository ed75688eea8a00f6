package ipsec

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/esp"
)

var (
	gcm256 = esp.Suite{Cipher: esp.AESGCM16, KeyLen: 32}
	cbc128 = esp.Suite{Cipher: esp.AESCBC, KeyLen: 16, Integ: esp.HMACSHA256_128}
	quiet  = slog.New(slog.NewTextHandler(io.Discard, nil))
	any4   = []esp.Selector{esp.AnyIPv4}
)

func keymat(s esp.Suite) []byte {
	k := make([]byte, s.KeyMatLen())
	for i := range k {
		k[i] = byte(3*i + 1)
	}
	return k
}

func saPair(t testing.TB, s esp.Suite, remote []esp.Selector) (*esp.Outbound, *esp.Inbound) {
	t.Helper()
	o, err := esp.NewOutbound(0x1234, s, keymat(s))
	if err != nil {
		t.Fatal(err)
	}
	in, err := esp.NewInbound(0x1234, s, keymat(s), esp.DefaultWindow, any4, remote)
	if err != nil {
		t.Fatal(err)
	}
	return o, in
}

// packet builds an n-byte IPv4 packet from src whose payload names id.
func packet(id uint32, n int, src string) []byte {
	p := make([]byte, n)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(n))
	p[9] = 17
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr("169.254.77.1").As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	binary.BigEndian.PutUint32(p[20:], id)
	for i := 24; i < n; i++ {
		p[i] = byte(id) + byte(i)
	}
	return p
}

// fakeTUN hands the outbound pipeline reads of prepared packets, then
// os.ErrClosed once its context ends.
type fakeTUN struct {
	ctx   context.Context
	reads chan [][]byte
}

func (f *fakeTUN) read(bufs [][]byte, sizes []int, off int) (int, error) {
	select {
	case r := <-f.reads:
		for i, p := range r {
			sizes[i] = copy(bufs[i][off:], p)
		}
		return len(r), nil
	case <-f.ctx.Done():
		return 0, os.ErrClosed
	}
}

// wire collects what the outbound pipeline sends, split into datagrams.
type wire struct {
	mu   sync.Mutex
	pkts [][]byte
	sent chan int // number of datagrams, after each send
	keep bool
}

func (w *wire) send(run []byte, seg int) {
	w.mu.Lock()
	n := 0
	for off := 0; off < len(run); off += seg {
		if w.keep {
			w.pkts = append(w.pkts, append([]byte(nil), run[off:min(off+seg, len(run))]...))
		}
		n++
	}
	w.mu.Unlock()
	w.sent <- n
}

// TestOutboundSequenceOnWire runs many packets through the parallel
// outbound path and checks that every sequence number is used exactly once,
// in order on the wire, that the GCM IV is the sequence number, and that
// each packet decrypts to what was read from the TUN, in the same order.
func TestOutboundSequenceOnWire(t *testing.T) {
	for _, s := range []esp.Suite{gcm256, cbc128} {
		for _, workers := range []int{1, 2, runtime.NumCPU(), 8} {
			t.Run(fmt.Sprintf("%s/workers=%d", s, workers), func(t *testing.T) {
				o, in := saPair(t, s, any4)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				tn := &fakeTUN{ctx: ctx, reads: make(chan [][]byte, 16)}
				w := &wire{sent: make(chan int, 1<<16), keep: true}
				p := newOutbound(quiet, workers, 128, 1400, tn.read, func() *esp.Outbound { return o }, w.send)
				var wg sync.WaitGroup
				p.start(ctx, &wg)

				var want [][]byte
				id := uint32(0)
				for r := 0; r < 300; r++ {
					var read [][]byte
					for i := 0; i < 1+r%64; i++ {
						n := 1400 // runs of equal sizes (GSO), broken by shorter ones
						if i%17 == 16 {
							n = 100 + r
						}
						pkt := packet(id, n, "169.254.77.2")
						id++
						read = append(read, pkt)
						want = append(want, pkt)
						if i%29 == 5 { // not IPv4: skipped, takes no sequence number
							read = append(read, []byte{0x60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
						}
					}
					tn.reads <- read
				}
				deadline := time.After(30 * time.Second)
				for got := 0; got < len(want); {
					select {
					case n := <-w.sent:
						got += n
					case <-deadline:
						t.Fatalf("%d of %d packets sent after 30s", got, len(want))
					}
				}
				cancel()
				wg.Wait()
				if len(w.pkts) != len(want) {
					t.Fatalf("%d packets on the wire, want %d", len(w.pkts), len(want))
				}
				for i, pkt := range w.pkts {
					seq := binary.BigEndian.Uint32(pkt[4:])
					if seq != uint32(i+1) {
						t.Fatalf("packet %d on the wire has sequence number %d", i, seq)
					}
					if s.Cipher == esp.AESGCM16 && binary.BigEndian.Uint64(pkt[8:]) != uint64(seq) {
						t.Fatalf("packet %d: GCM IV %x is not its sequence number", i, pkt[8:16])
					}
					inner, err := in.Open(pkt)
					if err != nil {
						t.Fatalf("packet %d: %v", i, err)
					}
					if !bytes.Equal(inner, want[i]) {
						t.Fatalf("packet %d carries packet %d", i, binary.BigEndian.Uint32(inner[20:]))
					}
				}
				if o.Seq() != uint64(len(want)) || o.Counters.Packets.Load() != uint64(len(want)) {
					t.Fatalf("seq %d, counted %d, want %d", o.Seq(), o.Counters.Packets.Load(), len(want))
				}
			})
		}
	}
}

// tunSink collects what the inbound pipeline writes to the TUN.
type tunSink struct {
	mu      sync.Mutex
	pkts    [][]byte
	written chan int
	keep    bool
}

func (s *tunSink) write(bufs [][]byte, off int) (int, error) {
	s.mu.Lock()
	if s.keep {
		for _, b := range bufs {
			s.pkts = append(s.pkts, append([]byte(nil), b[off:]...))
		}
	}
	s.mu.Unlock()
	s.written <- len(bufs)
	return len(bufs), nil
}

// feed is what the UDP reader does with ESP packets: pre-check, push, and
// flush after each read of up to per packets.
func feed(ctx context.Context, p *inbound, sa *esp.Inbound, pkts [][]byte, per int) {
	for i, pkt := range pkts {
		if sa.Precheck(pkt) == nil {
			p.push(ctx, sa, pkt)
		}
		if i%per == per-1 {
			p.flush()
		}
	}
	p.flush()
}

// TestInboundOrderAndDrops runs a stream with replays, forgeries,
// malformed packets and packets outside the selectors through the parallel
// inbound path: the TUN gets exactly what one Open after another gives, in
// the same order, and every drop is counted under the same reason.
func TestInboundOrderAndDrops(t *testing.T) {
	narrow := []esp.Selector{{First: netip.MustParseAddr("169.254.77.0"), Last: netip.MustParseAddr("169.254.77.3")}}
	for _, s := range []esp.Suite{gcm256, cbc128} {
		o, _ := saPair(t, s, narrow)
		var stream [][]byte
		var held []byte
		seal := func(inner []byte) []byte {
			pkt, err := o.Seal(make([]byte, len(inner)+s.Overhead()), inner)
			if err != nil {
				t.Fatal(err)
			}
			return pkt
		}
		for i := 0; i < 3000; i++ {
			pkt := seal(packet(uint32(i), 60+i%1300, "169.254.77.2"))
			switch i % 10 {
			case 1: // a forgery of a number not seen yet, then the genuine packet
				bad := append([]byte(nil), pkt...)
				bad[len(bad)-1] ^= 1
				stream = append(stream, bad, pkt)
			case 2: // duplicated on the wire
				stream = append(stream, pkt, append([]byte(nil), pkt...))
			case 3: // source outside the selectors
				stream = append(stream, seal(packet(uint32(i), 80, "10.9.9.9")))
			case 4: // authenticates, but carries no IPv4 packet
				inner := packet(uint32(i), 80, "169.254.77.2")
				inner[0] = 0x65
				stream = append(stream, seal(inner))
			case 5: // too short to be ESP; an old packet replayed
				stream = append(stream, pkt[:12])
				if i > 2000 {
					stream = append(stream, append([]byte(nil), stream[i/10]...))
				}
				stream = append(stream, pkt)
			case 6: // overtaken by the next one
				held = pkt
			case 7:
				stream = append(stream, pkt, held)
			default:
				stream = append(stream, pkt)
			}
		}
		copyAll := func() [][]byte {
			c := make([][]byte, len(stream))
			for i := range stream {
				c[i] = append([]byte(nil), stream[i]...)
			}
			return c
		}

		_, ref := saPair(t, s, narrow)
		var want [][]byte
		for _, pkt := range copyAll() {
			if inner, err := ref.Open(pkt); err == nil && inner != nil {
				want = append(want, append([]byte(nil), inner...))
			}
		}
		for _, r := range esp.DropReasons {
			if ref.Counters.Drops[r].Load() == 0 {
				t.Fatalf("%s: the stream has no %s drops", s, r)
			}
		}

		for _, workers := range []int{1, 2, runtime.NumCPU(), 8} {
			t.Run(fmt.Sprintf("%s/workers=%d", s, workers), func(t *testing.T) {
				_, sa := saPair(t, s, narrow)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				sink := &tunSink{written: make(chan int, 1<<16), keep: true}
				var last atomic.Int64
				p := newInbound(quiet, workers, 128, sink.write, &last)
				var wg sync.WaitGroup
				p.start(&wg)
				feed(ctx, p, sa, copyAll(), 37)
				p.close()
				wg.Wait()
				if len(sink.pkts) != len(want) {
					t.Fatalf("%d packets written to the TUN, want %d", len(sink.pkts), len(want))
				}
				for i := range want {
					if !bytes.Equal(sink.pkts[i], want[i]) {
						t.Fatalf("packet %d differs", i)
					}
				}
				for _, r := range esp.DropReasons {
					if g, w := sa.Counters.Drops[r].Load(), ref.Counters.Drops[r].Load(); g != w {
						t.Errorf("%s drops: %d, want %d", r, g, w)
					}
				}
				if g, w := sa.Counters.Packets.Load(), ref.Counters.Packets.Load(); g != w {
					t.Errorf("packets: %d, want %d", g, w)
				}
				if last.Load() == 0 {
					t.Error("last inbound time not set")
				}
			})
		}
	}
}

// TestPipelinesStop checks that every goroutine of both pipelines ends when
// the context ends and the UDP reader stops, with batches in flight, for one
// worker and for many.
func TestPipelinesStop(t *testing.T) {
	base := runtime.NumGoroutine()
	for _, workers := range []int{1, runtime.NumCPU(), 8} {
		o, in := saPair(t, gcm256, any4)
		ctx, cancel := context.WithCancel(context.Background())
		tn := &fakeTUN{ctx: ctx, reads: make(chan [][]byte, 64)}
		w := &wire{sent: make(chan int, 1<<16)}
		sink := &tunSink{written: make(chan int, 1<<16)}
		var last atomic.Int64
		var wg sync.WaitGroup
		out := newOutbound(quiet, workers, 64, 1400, tn.read, func() *esp.Outbound { return o }, w.send)
		out.start(ctx, &wg)
		inp := newInbound(quiet, workers, 64, sink.write, &last)
		inp.start(&wg)
		for range 64 {
			tn.reads <- [][]byte{packet(1, 1000, "169.254.77.2"), packet(2, 1000, "169.254.77.2")}
		}
		var pkts [][]byte
		for i := range 500 {
			pkts = append(pkts, packet(uint32(i), 500, "169.254.77.2"))
		}
		// A second sender on the same SA, so the inbound side gets real ESP.
		o2, _ := saPair(t, gcm256, any4)
		for i := range pkts {
			pkts[i], _ = o2.Seal(make([]byte, 600), pkts[i])
		}
		feed(ctx, inp, in, pkts, 50)
		cancel()
		inp.close() // the UDP reader's exit
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			buf := make([]byte, 1<<20)
			t.Fatalf("workers=%d: pipelines still running 10s after cancel:\n%s", workers, buf[:runtime.Stack(buf, true)])
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
}

// TestReaderStopsOnReadError checks that a failing TUN read stops the
// outbound pipeline even while the context lives on.
func TestReaderStopsOnReadError(t *testing.T) {
	o, _ := saPair(t, gcm256, any4)
	var wg sync.WaitGroup
	read := func([][]byte, []int, int) (int, error) { return 0, errors.New("boom") }
	p := newOutbound(quiet, 2, 8, 1400, read, func() *esp.Outbound { return o }, func([]byte, int) {})
	p.start(context.Background(), &wg)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("pipeline still running after the TUN read failed")
	}
}

// pipes is both pipelines on one SA, driven one batch at a time, for the
// allocation test and the benchmark.
type pipes struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ctx    context.Context
	tn     *fakeTUN
	w      *wire
	sink   *tunSink
	out    *esp.Outbound
	sa     *esp.Inbound
	in     *inbound
	read   [][]byte // one TUN read
	sealed [][]byte // scratch for ESP packets to receive
}

func newPipes(t testing.TB, workers, batch, size int) *pipes {
	o, in := saPair(t, gcm256, any4)
	ctx, cancel := context.WithCancel(context.Background())
	p := &pipes{cancel: cancel, ctx: ctx, out: o, sa: in}
	p.tn = &fakeTUN{ctx: ctx, reads: make(chan [][]byte, 1024)}
	p.w = &wire{sent: make(chan int, 1<<16)}
	p.sink = &tunSink{written: make(chan int, 1<<16)}
	ob := newOutbound(quiet, workers, batch, 1500, p.tn.read, func() *esp.Outbound { return o }, p.w.send)
	ob.start(ctx, &p.wg)
	var last atomic.Int64
	p.in = newInbound(quiet, workers, batch, p.sink.write, &last)
	p.in.start(&p.wg)
	for i := range batch {
		p.read = append(p.read, packet(uint32(i), size, "169.254.77.2"))
		p.sealed = append(p.sealed, make([]byte, size+gcm256.Overhead()))
	}
	t.Cleanup(func() { p.cancel(); p.in.close(); p.wg.Wait() })
	return p
}

// send pushes k TUN reads through the outbound pipeline and waits until
// they are on the wire.
func (p *pipes) send(k int) {
	for range k {
		p.tn.reads <- p.read
	}
	for got := 0; got < k*len(p.read); {
		got += <-p.w.sent
	}
}

// receive pushes k batches of fresh ESP packets through the inbound
// pipeline and waits until they are written to the TUN.
func (p *pipes) receive(k int) {
	for range k {
		for i, inner := range p.read {
			pkt, _ := p.out.Seal(p.sealed[i], inner)
			p.in.push(p.ctx, p.sa, pkt)
		}
		p.in.flush()
	}
	for got := 0; got < k*len(p.read); {
		got += <-p.sink.written
	}
}

// TestPipelineZeroAllocs checks that both pipelines allocate nothing per
// packet in the steady state (the counting covers every goroutine).
func TestPipelineZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	for _, workers := range []int{1, runtime.NumCPU()} {
		p := newPipes(t, workers, 64, 1400)
		p.send(20) // warm up: every batch used once
		p.receive(20)
		if n := testing.AllocsPerRun(50, func() { p.send(4) }); n != 0 {
			t.Errorf("workers=%d: outbound: %v allocations per 256 packets", workers, n)
		}
		if n := testing.AllocsPerRun(50, func() { p.receive(4) }); n != 0 {
			t.Errorf("workers=%d: inbound: %v allocations per 256 packets", workers, n)
		}
	}
}

// BenchmarkPipelineWorkers compares, in one run, one crypto worker with
// runtime.NumCPU() workers on the same traffic (1400-byte packets in
// batches of 64, AES-GCM-256), for each direction; speedup is the ratio of
// their times. Packets come from memory and go nowhere, so this measures the
// pipeline and the crypto, not the sockets. The inbound side replays
// packets sealed beforehand to a fresh SA each round (its allocations are
// those of the SA, not per packet).
func BenchmarkPipelineWorkers(b *testing.B) {
	const batches = 32
	for _, dir := range []string{"outbound", "inbound"} {
		b.Run(dir, func(b *testing.B) {
			one, all := newPipes(b, 1, 64, 1400), newPipes(b, runtime.NumCPU(), 64, 1400)
			var esps [][]byte
			for range batches {
				for _, inner := range one.read {
					pkt, _ := one.out.Seal(make([]byte, len(inner)+gcm256.Overhead()), inner)
					esps = append(esps, pkt)
				}
			}
			run := func(p *pipes) time.Duration {
				start := time.Now()
				if dir == "outbound" {
					p.send(batches)
					return time.Since(start)
				}
				_, sa := saPair(b, gcm256, any4)
				start = time.Now()
				for i, pkt := range esps {
					p.in.push(p.ctx, sa, pkt)
					if i%64 == 63 {
						p.in.flush()
					}
				}
				p.in.flush()
				for got := 0; got < len(esps); {
					got += <-p.sink.written
				}
				return time.Since(start)
			}
			run(one)
			run(all)
			var t1, tn time.Duration
			b.SetBytes(2 * batches * 64 * 1400) // both runs
			b.ReportAllocs()
			for b.Loop() {
				t1 += run(one)
				tn += run(all)
			}
			pkts := float64(b.N * batches * 64)
			b.ReportMetric(float64(t1.Nanoseconds())/pkts, "ns/pkt-1-worker")
			b.ReportMetric(float64(tn.Nanoseconds())/pkts, fmt.Sprintf("ns/pkt-%d-workers", runtime.NumCPU()))
			b.ReportMetric(float64(t1)/float64(tn), "speedup")
		})
	}
}
