package esp

// Window sizes allowed for the anti-replay window, in packets.
const (
	MinWindow     = 64
	MaxWindow     = 2048
	DefaultWindow = 1024
)

// replayWindow is a sliding anti-replay bitmap (RFC 4303 section 3.4.3),
// kept as a ring of 64-bit words with one spare word so that sliding the
// window clears whole words (the scheme of RFC 6479). Not safe for
// concurrent use.
type replayWindow struct {
	top  uint64 // highest sequence number accepted so far
	size uint64 // packets covered: [top-size+1, top]
	bits []uint64
}

func newReplayWindow(size int) replayWindow {
	return replayWindow{size: uint64(size), bits: make([]uint64, size/64+1)}
}

// check reports whether seq may be accepted: it is new and not too old.
func (w *replayWindow) check(seq uint64) bool {
	if seq == 0 {
		return false
	}
	if seq > w.top {
		return true
	}
	if w.top-seq >= w.size {
		return false
	}
	n := uint64(len(w.bits))
	return w.bits[(seq/64)%n]&(1<<(seq%64)) == 0
}

// update marks seq as seen. Call it only after check and authentication.
func (w *replayWindow) update(seq uint64) {
	n := uint64(len(w.bits))
	if seq > w.top {
		oldWord, newWord := w.top/64, seq/64
		d := newWord - oldWord
		if d > n {
			d = n
		}
		for i := uint64(1); i <= d; i++ {
			w.bits[(oldWord+i)%n] = 0
		}
		w.top = seq
	}
	w.bits[(seq/64)%n] |= 1 << (seq % 64)
}
