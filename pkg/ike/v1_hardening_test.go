package ike

import (
	"context"
	"crypto/rand"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/ike/wire1"
)

// errorCounter is a slog handler that counts records at level Error.
type errorCounter struct{ n *atomic.Int64 }

func (h errorCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h errorCounter) Handle(context.Context, slog.Record) error    { h.n.Add(1); return nil }
func (h errorCounter) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h errorCounter) WithGroup(string) slog.Handler                { return h }

// holdNATT passes the messages sent on port 500 and keeps those for port
// 4500 (main mode messages 5 and 6) until released.
type holdNATT struct {
	mu      sync.Mutex
	peer    interface{ Deliver([]byte, bool) }
	held    []byte
	release bool
}

func (h *holdNATT) Deliver(b []byte, natt bool) {
	h.mu.Lock()
	pass := !natt || h.release
	if !pass {
		h.held = append(h.held[:0], b...)
	}
	h.mu.Unlock()
	if pass {
		h.peer.Deliver(b, natt)
	}
}

// TestV1ForgedMain5IsNotLoggedEach: the responder waits for main mode
// message 5; an on-path sender who saw the cookies floods it with
// messages that do not decrypt to a verified HASH_I. Each is counted as
// a drop, but only the first is logged and recorded as the last error;
// the ISAKMP SA is untouched and comes up when the initiator's own
// message 5 arrives.
func TestV1ForgedMain5IsNotLoggedEach(t *testing.T) {
	var errs atomic.Int64
	ci := cfg("192.0.2.1", "192.0.2.2", "k", "aes256-sha256-modp2048", "aes256gcm16", true)
	cr := cfg("192.0.2.2", "192.0.2.1", "k", "aes256-sha256-modp2048", "aes256gcm16", false)
	ci.DPDTimeout = 30 * time.Second // the initiator retransmits message 5 meanwhile
	cr.Logger = slog.New(errorCounter{&errs})
	a, b := v1pair(t, ci, cr)
	hold := &holdNATT{peer: b.s}
	a.link.mu.Lock()
	a.link.peer = hold
	a.link.mu.Unlock()
	var msg5 []byte
	waitFor(t, 10*time.Second, "the initiator's main mode message 5", func() bool {
		hold.mu.Lock()
		defer hold.mu.Unlock()
		msg5 = append([]byte(nil), hold.held...)
		return len(msg5) > wire1.HeaderLen
	})
	dropped := func() uint64 {
		d := b.s.Status().Dropped
		return d[DropMalformed.String()] + d[DropBadICV.String()]
	}
	before := dropped()
	const n = 50
	for i := range n {
		forged := append([]byte(nil), msg5[:wire1.HeaderLen]...)
		body := make([]byte, len(msg5)-wire1.HeaderLen)
		rand.Read(body)
		b.s.Deliver(append(forged, body...), true)
		waitFor(t, 5*time.Second, "the forged message 5 dropped", func() bool { return dropped() == before+uint64(i+1) })
	}
	if got := errs.Load(); got != 1 {
		t.Errorf("%d forged message 5s logged %d errors, want 1", n, got)
	}
	if e := b.s.Status().LastError; !strings.Contains(e, "main mode message 5") {
		t.Errorf("last error %q does not name message 5", e)
	}
	hold.mu.Lock()
	hold.release = true
	hold.mu.Unlock()
	waitFor(t, 10*time.Second, "up with the initiator's own message 5", func() bool { return v1up(a, b) })
}
