package lifecycle

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// part is a component that records, in order, when its goroutine has
// returned after its context ended.
type part struct {
	name string
	fail bool
	log  *[]string
	mu   *sync.Mutex
	done chan struct{}
}

func (p *part) Start(ctx context.Context) error {
	if p.fail {
		return errors.New(p.name + " cannot start")
	}
	go func() {
		<-ctx.Done()
		p.mu.Lock()
		*p.log = append(*p.log, p.name)
		p.mu.Unlock()
		close(p.done)
	}()
	return nil
}

func (p *part) Done() <-chan struct{} { return p.done }

func TestStackUnwindsInReverseWaitingForEach(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var log []string
	var mu sync.Mutex
	mk := func(name string, fail bool) *part {
		return &part{name: name, fail: fail, log: &log, mu: &mu, done: make(chan struct{})}
	}
	var s Stack
	for _, name := range []string{"servers", "tunnels", "fib"} {
		if err := s.Start(name, mk(name, false)); err != nil {
			t.Fatal(err)
		}
	}
	s.Defer("firewall", func() {
		mu.Lock()
		log = append(log, "firewall")
		mu.Unlock()
	})
	if err := s.Start("bgp", mk("bgp", true)); err == nil {
		t.Fatal("a failed Start reported no error")
	}
	s.Unwind()
	// Each stop waited for the part's Done, so the log is in stop order;
	// the part that failed to start was not pushed.
	if want := []string{"firewall", "fib", "tunnels", "servers"}; !slices.Equal(log, want) {
		t.Errorf("stopped %v, want %v", log, want)
	}
}

// A request in flight when the context ends is answered, and Done is
// closed only once its handler has returned and OnStop has run.
func TestHTTPServerDrainsAndJoins(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	h := NewHTTPServer(&http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "late")
	})}, ln)
	stopped := false
	h.OnStop = func() { stopped = true }
	ctx, cancel := context.WithCancel(context.Background())
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	got := make(chan string, 1)
	go func() {
		r, err := (&http.Client{Transport: tr}).Get("http://" + ln.Addr().String())
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		got <- string(b)
	}()
	<-entered
	cancel()
	select {
	case <-h.Done():
		t.Fatal("Done closed with a request in flight")
	default:
	}
	close(release)
	<-h.Done()
	if !stopped {
		t.Error("OnStop had not run when Done was closed")
	}
	if b := <-got; b != "late" {
		t.Errorf("request in flight at shutdown got %q, want its answer", b)
	}
}
