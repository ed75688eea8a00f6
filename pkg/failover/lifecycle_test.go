package failover

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Once the manager has stopped, events sent to it (a BGP session going down
// during shutdown, a late health verdict) are dropped instead of blocking
// the sender forever on the full event queue.
func TestSendAfterStopDoesNotBlock(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	m := New(Config{Paths: []PathConfig{{Name: "dx1", Kind: "dx"}}})
	ctx, cancel := context.WithCancel(context.Background())
	if err := m.Start(ctx, &fakeFIB{order: []string{"dx1"}, usable: map[string]bool{}}, &fakeBGP{}); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-m.Done()
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := 0; i < 2*cap(m.ev); i++ {
			m.BGPState("dx1", i%2 == 0)
		}
	}()
	select {
	case <-sent:
	case <-time.After(10 * time.Second):
		t.Fatalf("BGPState blocks once the manager has stopped (queue of %d full)", cap(m.ev))
	}
}
