package probe

import (
	"context"
	"net/netip"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Done is closed once the prober's socket is closed and its goroutines have
// returned.
func TestDoneJoinsTheProber(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (raw ICMP socket)")
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p, err := New(Config{Local: netip.MustParseAddr("127.0.0.1"), Peer: netip.MustParseAddr("127.0.0.1"), ID: 4242,
		Interval: 10 * time.Millisecond, LossThreshold: 3, Recovery: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.Stats().Received < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("no echo answered on loopback: %+v", p.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed 10s after the context ended")
	}
	if _, _, err := p.conn.ReadFrom(make([]byte, 64)); err == nil {
		t.Error("the socket is still open after Done")
	}
}
