package ipsec

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/tun"

	"github.com/cgwd/cgwd/pkg/esp"
)

// The ESP fast path spreads the crypto over the cores the way wireguard-go's
// device package does. Packets travel in batches; each direction has
//
//   - one reader, which takes packets in order: the TUN reader gives each
//     outbound packet its sequence number (and so its GCM nonce), the UDP
//     reader picks each inbound packet's SA and pre-checks its sequence
//     number;
//   - a shared "parallel" queue served by crypto workers, which seal or
//     decrypt a whole batch and then unlock it;
//   - an ordered "sequential" queue holding the same batches in reading
//     order, served by one goroutine that waits for each batch's lock: the
//     sender writes ESP to UDP in sequence order, the TUN writer moves the
//     anti-replay window (after authentication) and writes the inner packets
//     in arrival order.
//
// Batches come from a fixed free list, so that the steady state allocates
// nothing and a slow stage holds the reader back instead of growing queues.

// defaultWorkers is the number of crypto workers per direction.
func defaultWorkers() int { return max(1, runtime.NumCPU()) }

// batchesInFlight is how many batches one direction has: enough for the
// reader, each worker and the ordered stage to have one and the next ready.
func batchesInFlight(workers int) int { return max(8, 4*workers) }

// tunOffset is the headroom the TUN device needs before each packet it writes.
const tunOffset = 16

// maxGSOSegments is the most segments the kernel takes in one UDP GSO send.
const maxGSOSegments = 64

// outPkt is one packet of an outbound batch.
type outPkt struct {
	inner  []byte
	seq    uint64
	off, n int // where its ESP packet goes in the batch's sealed; n is 0 if sealing failed
}

// outBatch is one TUN read on its way out as ESP.
type outBatch struct {
	sealed sync.Mutex // locked by the reader, unlocked by the worker once every packet is sealed
	sa     *esp.Outbound
	bufs   [][]byte // TUN read buffers
	sizes  []int
	pkts   []outPkt
	out    []byte // the ESP packets, back to back
}

// outbound is the TUN-to-UDP half of the fast path.
type outbound struct {
	log     *slog.Logger
	read    func(bufs [][]byte, sizes []int, offset int) (int, error) // the TUN's Read
	sa      func() *esp.Outbound                                      // the SA to send with, or nil
	send    func(run []byte, seg int)                                 // sends equal-sized ESP packets
	workers int
	inMax   int            // largest inner packet a read buffer holds
	slot    int            // room for one ESP packet
	mss     *atomic.Uint32 // TCP SYNs are clamped to it when set and not 0

	free, queue, crypt chan *outBatch
}

// newOutbound makes the outbound pipeline for a TUN that returns up to
// batch packets per read on an mtu-byte netdev.
func newOutbound(log *slog.Logger, workers, batch, mtu int, read func([][]byte, []int, int) (int, error), sa func() *esp.Outbound, send func([]byte, int)) *outbound {
	mtu = max(mtu, 1280)
	p := &outbound{log: log, read: read, sa: sa, send: send, workers: workers, slot: mtu + 256}
	inSlot := (tunOffset + mtu + 63) &^ 63
	p.inMax = inSlot - tunOffset
	n := batchesInFlight(workers)
	p.free, p.queue, p.crypt = make(chan *outBatch, n), make(chan *outBatch, n), make(chan *outBatch, n)
	for range n {
		b := &outBatch{bufs: make([][]byte, batch), sizes: make([]int, batch), pkts: make([]outPkt, 0, batch), out: make([]byte, batch*p.slot)}
		// Each read buffer reaches to the end of the arena, and the arena
		// has 64 KiB to spare: a packet bigger than the netdev's MTU (say
		// the MTU was raised by hand) spills over the next buffer instead
		// of failing the read. Such packets are dropped by their size.
		arena := make([]byte, batch*inSlot+65536)
		for i := range b.bufs {
			b.bufs[i] = arena[i*inSlot:]
		}
		p.free <- b
	}
	return p
}

// start runs the reader, the workers and the sender until the read fails
// (the TUN is closed) or ctx ends.
func (p *outbound) start(ctx context.Context, wg *sync.WaitGroup) {
	wg.Add(2 + p.workers)
	go func() { defer wg.Done(); p.reader(ctx) }()
	for range p.workers {
		go func() { defer wg.Done(); p.worker() }()
	}
	go func() { defer wg.Done(); p.sender() }()
}

// reader reads the TUN, numbers the packets and queues them for sealing.
func (p *outbound) reader(ctx context.Context) {
	defer func() { close(p.crypt); close(p.queue) }()
	for {
		var b *outBatch
		select {
		case b = <-p.free:
		case <-ctx.Done():
			return
		}
		n, err := p.read(b.bufs, b.sizes, tunOffset)
		if err != nil {
			p.free <- b
			if errors.Is(err, tun.ErrTooManySegments) {
				continue
			}
			if ctx.Err() == nil && !errors.Is(err, os.ErrClosed) && !errors.Is(err, net.ErrClosed) {
				p.log.Error("TUN read failed; the tunnel no longer sends", "err", err)
			}
			return
		}
		sa := p.sa()
		if sa == nil { // no Child SA: drop
			p.free <- b
			continue
		}
		b.sa, b.pkts = sa, b.pkts[:0]
		off := 0
		for i := 0; i < n; i++ {
			if b.sizes[i] > p.inMax {
				continue // spilt over the next buffer (see newOutbound)
			}
			inner := b.bufs[i][tunOffset : tunOffset+b.sizes[i]]
			if len(inner) < 20 || inner[0]>>4 != 4 {
				continue // IPv4 only
			}
			if p.mss != nil {
				if mss := p.mss.Load(); mss != 0 {
					clampMSS(inner, uint16(mss))
				}
			}
			l := sa.SealedLen(len(inner))
			if l > p.slot {
				continue // too big
			}
			seq, err := sa.NextSeq()
			if err != nil {
				break // sequence numbers exhausted: the session rekeys
			}
			b.pkts = append(b.pkts, outPkt{inner: inner, seq: seq, off: off, n: l})
			off += l
		}
		if len(b.pkts) == 0 {
			p.free <- b
			continue
		}
		b.sealed.Lock()
		p.queue <- b // never blocks: each queue has room for every batch
		p.crypt <- b
	}
}

// worker seals batches from the parallel queue.
func (p *outbound) worker() {
	var sc esp.Scratch
	defer sc.Release()
	for b := range p.crypt {
		for i := range b.pkts {
			pk := &b.pkts[i]
			if _, err := b.sa.SealSeq(&sc, b.out[pk.off:pk.off:pk.off+pk.n], pk.inner, pk.seq); err != nil {
				pk.n = 0
			}
		}
		b.sealed.Unlock()
	}
}

// sender sends the batches in reading order, so in sequence-number order.
// Runs of equal-sized ESP packets (the segments of one TSO packet) go out
// together (one UDP GSO send where the kernel has it).
func (p *outbound) sender() {
	for b := range p.queue {
		b.sealed.Lock()
		var packets, bytes uint64 // counted before they leave, as Seal does
		for _, pk := range b.pkts {
			if pk.n != 0 {
				packets++
				bytes += uint64(len(pk.inner))
			}
		}
		b.sa.Counters.Packets.Add(packets)
		b.sa.Counters.Bytes.Add(bytes)
		runStart, runLen, runN, end := 0, 0, 0, 0
		for _, pk := range b.pkts {
			if pk.n == 0 { // not sealed: the run ends before it
				if runN > 0 {
					p.send(b.out[runStart:end], runLen)
					runN = 0
				}
				continue
			}
			if runN > 0 && (pk.n > runLen || runN == maxGSOSegments || end-runStart+pk.n > 65000) {
				p.send(b.out[runStart:end], runLen)
				runN = 0
			}
			if runN == 0 {
				runStart, runLen = pk.off, pk.n
			}
			end = pk.off + pk.n
			runN++
			if pk.n < runLen { // a shorter packet ends the run (GSO allows that once)
				p.send(b.out[runStart:end], runLen)
				runN = 0
			}
		}
		if runN > 0 {
			p.send(b.out[runStart:end], runLen)
		}
		b.sealed.Unlock()
		b.sa, b.pkts = nil, b.pkts[:0]
		p.free <- b
	}
}

// inPkt is one ESP packet of an inbound batch.
type inPkt struct {
	sa  *esp.Inbound
	pkt []byte // in the batch's arena
	d   esp.Decrypted
}

// inBatch is a run of received ESP packets on their way to the TUN.
type inBatch struct {
	opened sync.Mutex // locked by the reader, unlocked by the worker once every packet is decrypted
	arena  []byte
	used   int
	pkts   []inPkt
}

// inArena is the room for ESP packets in one inbound batch: any datagram
// fits in an empty one.
const inArena = 256 << 10

// inbound is the UDP-to-TUN half of the fast path. The UDP reader calls
// push for each ESP packet, flush after each read and close when it stops.
type inbound struct {
	log     *slog.Logger
	write   func(bufs [][]byte, offset int) (int, error) // the TUN's Write
	last    *atomic.Int64                                // set to the time of the last authenticated packet
	mss     *atomic.Uint32                               // TCP SYNs are clamped to it when set and not 0
	workers int
	batch   int

	free, queue, crypt chan *inBatch
	cur                *inBatch // the reader's

	outBufs, outs [][]byte // the TUN writer's
}

// newInbound makes the inbound pipeline writing up to batch packets at a
// time to the TUN.
func newInbound(log *slog.Logger, workers, batch int, write func([][]byte, int) (int, error), last *atomic.Int64) *inbound {
	batch = max(batch, 1)
	p := &inbound{log: log, write: write, last: last, workers: workers, batch: max(batch, 64)}
	n := batchesInFlight(workers)
	p.free, p.queue, p.crypt = make(chan *inBatch, n), make(chan *inBatch, n), make(chan *inBatch, n)
	for range n {
		p.free <- &inBatch{arena: make([]byte, inArena), pkts: make([]inPkt, 0, p.batch)}
	}
	p.outBufs = make([][]byte, batch)
	for i := range p.outBufs {
		p.outBufs[i] = make([]byte, tunOffset+65536)
	}
	p.outs = make([][]byte, 0, batch)
	return p
}

// start runs the workers and the TUN writer until close.
func (p *inbound) start(wg *sync.WaitGroup) {
	wg.Add(1 + p.workers)
	for range p.workers {
		go func() { defer wg.Done(); p.worker() }()
	}
	go func() { defer wg.Done(); p.writer() }()
}

// push copies the ESP packet pkt for sa into the current batch; false if
// ctx ended while waiting for a free batch.
func (p *inbound) push(ctx context.Context, sa *esp.Inbound, pkt []byte) bool {
	if len(pkt) > inArena {
		return true // cannot be: a UDP payload is smaller
	}
	if b := p.cur; b != nil && (len(b.pkts) == cap(b.pkts) || b.used+len(pkt) > len(b.arena)) {
		p.flush()
	}
	if p.cur == nil {
		select {
		case p.cur = <-p.free:
		case <-ctx.Done():
			return false
		}
	}
	b := p.cur
	q := b.arena[b.used : b.used+copy(b.arena[b.used:], pkt)]
	b.used = (b.used + len(pkt) + 63) &^ 63
	b.pkts = append(b.pkts, inPkt{sa: sa, pkt: q})
	return true
}

// flush queues the current batch for decryption.
func (p *inbound) flush() {
	b := p.cur
	if b == nil {
		return
	}
	p.cur = nil
	b.opened.Lock()
	p.queue <- b // never blocks: each queue has room for every batch
	p.crypt <- b
}

// close ends the pipeline once the queued batches are through.
func (p *inbound) close() {
	p.flush()
	close(p.crypt)
	close(p.queue)
}

// worker decrypts batches from the parallel queue.
func (p *inbound) worker() {
	var sc esp.Scratch
	defer sc.Release()
	for b := range p.crypt {
		for i := range b.pkts {
			pk := &b.pkts[i]
			pk.sa.Decrypt(&sc, pk.pkt, &pk.d)
		}
		b.opened.Unlock()
	}
}

// writer accepts the packets in arrival order (anti-replay window, counters)
// and writes them to the TUN, several batches in one write when they are
// queued back to back (so the TUN can coalesce TCP segments again).
func (p *inbound) writer() {
	for b := range p.queue {
		b.opened.Lock()
		accepted := false
		for i := range b.pkts {
			pk := &b.pkts[i]
			inner, err := pk.sa.Accept(&pk.d)
			if err != nil || inner == nil {
				continue
			}
			accepted = true
			if len(p.outs) == len(p.outBufs) {
				p.flushTUN()
			}
			o := p.outBufs[len(p.outs)]
			o = o[:tunOffset+copy(o[tunOffset:], inner)]
			if p.mss != nil {
				if mss := p.mss.Load(); mss != 0 {
					clampMSS(o[tunOffset:], uint16(mss))
				}
			}
			p.outs = append(p.outs, o)
		}
		if accepted {
			p.last.Store(time.Now().UnixNano())
		}
		b.opened.Unlock()
		clear(b.pkts) // drop the SA pointers
		b.pkts, b.used = b.pkts[:0], 0
		p.free <- b
		if len(p.queue) == 0 {
			p.flushTUN()
		}
	}
	p.flushTUN()
}

func (p *inbound) flushTUN() {
	if len(p.outs) == 0 {
		return
	}
	if _, err := p.write(p.outs, tunOffset); err != nil && !errors.Is(err, os.ErrClosed) {
		p.log.Debug("TUN write failed", "err", err)
	}
	p.outs = p.outs[:0]
}
