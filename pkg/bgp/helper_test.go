package bgp

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// helperSpeaker is a speaker, not started, whose peer dx1 announced
// prefixes, with gobgp's word on graceful restart given by gr and the
// callbacks recorded.
type helperSpeaker struct {
	*Speaker
	mu        sync.Mutex
	withdrawn []netip.Prefix
	downs     int
}

func newHelperSpeaker(t *testing.T, gr peerGR, prefixes ...string) *helperSpeaker {
	t.Helper()
	h := &helperSpeaker{Speaker: New(Config{Peers: []PeerConfig{{Name: "dx1", Address: netip.MustParseAddr("169.254.255.1")}}})}
	h.grQuery = func(context.Context, string) peerGR { return gr }
	h.onRoute = func(ev RouteEvent) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if ev.Withdraw {
			h.withdrawn = append(h.withdrawn, ev.Prefix)
		}
	}
	h.onPeer = func(_ string, up bool) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if !up {
			h.downs++
		}
	}
	set := map[netip.Prefix]struct{}{}
	for _, p := range prefixes {
		set[netip.MustParsePrefix(p)] = struct{}{}
	}
	h.received["dx1"] = set
	return h
}

func (h *helperSpeaker) down(ctx context.Context) bool {
	h.deliver.Lock()
	defer h.deliver.Unlock()
	return h.helping(ctx, "dx1", "169.254.255.1")
}

func (h *helperSpeaker) seen() ([]netip.Prefix, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.withdrawn), h.downs
}

// A restarting peer's routes stay; what it announces again stays, and its
// End-of-RIB withdraws the rest.
func TestHelperKeepsRestartingPeersRoutesUntilEndOfRIB(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	h := newHelperSpeaker(t, peerGR{restarting: true, restartTime: time.Hour}, "10.200.0.0/16", "10.201.0.0/16")
	defer func() { cancel(); h.wg.Wait() }()
	for range 2 { // the session's idle, active... events
		if !h.down(ctx) {
			t.Fatal("a gracefully restarting peer was taken for a session down")
		}
	}
	if w, downs := h.seen(); len(w) != 0 || downs != 0 {
		t.Fatalf("withdrawn %v, %d downs while the peer restarts", w, downs)
	}
	h.routes.Lock()
	h.refreshed(RouteEvent{Peer: "dx1", Prefix: netip.MustParsePrefix("10.200.0.0/16"), Nexthop: netip.MustParseAddr("169.254.255.1")})
	h.restartDone("dx1")
	h.routes.Unlock()
	if w, downs := h.seen(); !slices.Equal(w, []netip.Prefix{netip.MustParsePrefix("10.201.0.0/16")}) || downs != 0 {
		t.Fatalf("at End-of-RIB withdrawn %v (%d downs), want only 10.201.0.0/16", w, downs)
	}
}

// A peer not back within its restart time loses its routes and its
// session is reported down.
func TestHelperGivesUpAfterRestartTime(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	h := newHelperSpeaker(t, peerGR{restarting: true, restartTime: 20 * time.Millisecond}, "10.200.0.0/16")
	defer func() { cancel(); h.wg.Wait() }()
	if !h.down(ctx) {
		t.Fatal("a gracefully restarting peer was taken for a session down")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		w, downs := h.seen()
		if len(w) == 1 && downs == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the restart time: withdrawn %v, %d downs; want the route and the session gone", w, downs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A session lost without graceful restart is a session down, as before.
func TestHelperLeavesPlainSessionDownAlone(t *testing.T) {
	h := newHelperSpeaker(t, peerGR{}, "10.200.0.0/16")
	if h.down(context.Background()) {
		t.Fatal("a plain session down was taken for a graceful restart")
	}
}
