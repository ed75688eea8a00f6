package esp

import "sync/atomic"

// Window sizes allowed for the anti-replay window, in packets.
const (
	MinWindow     = 64
	MaxWindow     = 2048
	DefaultWindow = 1024
)

// replayWindow is a sliding anti-replay bitmap (RFC 4303 section 3.4.3),
// kept as a ring of 64-bit words with one spare word so that sliding the
// window clears whole words (the scheme of RFC 6479).
//
// One goroutine calls update (after check); check may also run in other
// goroutines at the same time, as a pre-check before decryption. Such a
// concurrent check may let through a number that the final check refuses,
// but never refuses one the final check would accept: update clears the
// words it slides into before it raises top, and top only grows.
type replayWindow struct {
	top  atomic.Uint64 // highest sequence number accepted so far
	size uint64        // packets covered: [top-size+1, top]
	bits []atomic.Uint64
}

func newReplayWindow(size int) *replayWindow {
	return &replayWindow{size: uint64(size), bits: make([]atomic.Uint64, size/64+1)}
}

// check reports whether seq may be accepted: it is new and not too old.
func (w *replayWindow) check(seq uint64) bool {
	if seq == 0 {
		return false
	}
	top := w.top.Load()
	if seq > top {
		return true
	}
	if top-seq >= w.size {
		return false
	}
	n := uint64(len(w.bits))
	return w.bits[(seq/64)%n].Load()&(1<<(seq%64)) == 0
}

// update marks seq as seen. Call it only after check and authentication,
// and from one goroutine.
func (w *replayWindow) update(seq uint64) {
	n := uint64(len(w.bits))
	if top := w.top.Load(); seq > top {
		oldWord, newWord := top/64, seq/64
		d := newWord - oldWord
		if d > n {
			d = n
		}
		for i := uint64(1); i <= d; i++ {
			w.bits[(oldWord+i)%n].Store(0)
		}
		w.top.Store(seq)
	}
	word := &w.bits[(seq/64)%n]
	word.Store(word.Load() | 1<<(seq%64))
}
