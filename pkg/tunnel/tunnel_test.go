package tunnel

import (
	"context"
	"sync"
	"testing"
	"time"
)

// fakeTunnel is a Tunnel whose state the test sets.
type fakeTunnel struct {
	mu    sync.Mutex
	state State
}

func (f *fakeTunnel) Name() string                { return "fake0" }
func (f *fakeTunnel) Kind() Kind                  { return KindWireGuard }
func (f *fakeTunnel) Start(context.Context) error { return nil }
func (f *fakeTunnel) Close() error                { return nil }
func (f *fakeTunnel) Done() <-chan struct{}       { return nil }
func (f *fakeTunnel) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Status{Name: "fake0", Kind: KindWireGuard, State: f.state}
}
func (f *fakeTunnel) set(s State) {
	f.mu.Lock()
	f.state = s
	f.mu.Unlock()
}

func TestWatchReportsEachChangeOnceInOrder(t *testing.T) {
	ft := &fakeTunnel{state: StateDown}
	events := make(chan Event, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Watch(ctx, ft, time.Millisecond, func(e Event) { events <- e })
	}()
	next := func() Event {
		t.Helper()
		select {
		case e := <-events:
			return e
		case <-time.After(5 * time.Second):
			t.Fatal("no event")
			return Event{}
		}
	}
	ft.set(StateConnecting)
	if e := next(); e.From != StateDown || e.To != StateConnecting || e.Tunnel != "fake0" {
		t.Fatalf("event %+v", e)
	}
	ft.set(StateUp)
	if e := next(); e.From != StateConnecting || e.To != StateUp {
		t.Fatalf("event %+v", e)
	}
	ft.set(StateDown)
	if e := next(); e.From != StateUp || e.To != StateDown {
		t.Fatalf("event %+v", e)
	}
	cancel()
	<-done // Watch returns when its context ends
	select {
	case e := <-events:
		t.Fatalf("unexpected extra event %+v", e)
	default:
	}
}
