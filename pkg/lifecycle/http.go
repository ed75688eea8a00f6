package lifecycle

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// HTTPServer is a Component serving an http.Server on a listener. When its
// context ends, the server shuts down, giving requests in flight up to
// Grace, and the listener is closed; OnStop then runs and Done is closed.
type HTTPServer struct {
	// Grace bounds how long requests in flight may take at shutdown.
	Grace time.Duration
	// OnError, if set, gets the error that ended serving early (an accept
	// that failed), never the shutdown itself.
	OnError func(error)
	// OnStop, if set, runs once the server has stopped, before Done is
	// closed (the control socket removes its file there).
	OnStop func()

	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// NewHTTPServer returns a server for srv on ln, with a 2 s grace.
func NewHTTPServer(srv *http.Server, ln net.Listener) *HTTPServer {
	return &HTTPServer{Grace: 2 * time.Second, srv: srv, ln: ln, done: make(chan struct{})}
}

// Start serves in the background until ctx ends. It may be called once.
func (h *HTTPServer) Start(ctx context.Context) error {
	go func() {
		defer close(h.done)
		served := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-ctx.Done():
			case <-served:
			}
			sctx, cancel := context.WithTimeout(context.Background(), h.Grace)
			defer cancel()
			_ = h.srv.Shutdown(sctx) // closes ln, waits for requests in flight
		}()
		err := h.srv.Serve(h.ln)
		close(served)
		wg.Wait()
		if !errors.Is(err, http.ErrServerClosed) && h.OnError != nil {
			h.OnError(err)
		}
		if h.OnStop != nil {
			h.OnStop()
		}
	}()
	return nil
}

// Done is closed once the server has stopped.
func (h *HTTPServer) Done() <-chan struct{} { return h.done }
