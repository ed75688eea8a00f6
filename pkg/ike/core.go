package ike

import (
	"bytes"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// core is what the sessions of both IKE versions share: the log, the
// receive queue, the status snapshot, the drop and fragment counters.
type core struct {
	log    *slog.Logger
	in     chan packet
	mu     sync.Mutex
	status Status
	drops  dropCounters
	frags  fragCounters
	// any links the session to its ike_version any tunnel; nil otherwise.
	any *anyInner
	// now is the session's clock: time.Now, or a test's (set before Run).
	now func() time.Time
}

func newCore(log *slog.Logger) core { return core{log: log, in: make(chan packet, 64), now: time.Now} }

// Deliver hands the session an IKE message received from the peer (natt:
// on port 4500, marker removed). It never blocks; when the session is
// busy the message is dropped and the peer retransmits.
func (s *core) Deliver(b []byte, natt bool) {
	p := packet{natt: natt}
	if len(b) <= pktPoolSize {
		p.buf = pktPool.Get().(*[]byte)
		*p.buf = append((*p.buf)[:0], b...)
		p.b = *p.buf
	} else {
		p.b = bytes.Clone(b)
	}
	select {
	case s.in <- p:
	default:
		s.drops.add(DropRate)
		p.release()
	}
}

// Status returns a snapshot of the session.
func (s *core) Status() Status {
	s.mu.Lock()
	st := s.status
	s.mu.Unlock()
	st.Dropped = s.drops.snapshot()
	st.Fragments = s.frags.snapshot()
	return st
}

// fail records and logs an error an operator should see.
func (s *core) fail(msg string, args ...any) {
	s.log.Error(msg, args...)
	text := msg
	for i := 0; i+1 < len(args); i += 2 {
		text += fmt.Sprintf(" %v=%v", args[i], args[i+1])
	}
	s.setStatus(func(st *Status) { st.LastError, st.LastErrorAt = text, s.now() })
}

func (s *core) setStatus(fn func(*Status)) {
	s.mu.Lock()
	fn(&s.status)
	s.mu.Unlock()
}
