package control

import (
	"context"
	"net/http"

	"github.com/cgwd/cgwd/pkg/drain"
)

// DrainActions take the box out of service for maintenance and put it back.
type DrainActions interface {
	// Drain makes the box unattractive to AWS and the LAN and starts the
	// wait until its paths are quiet; it returns at once.
	Drain(ctx context.Context) (drain.Status, error)
	// Undrain puts the box back in service.
	Undrain(ctx context.Context) (drain.Status, error)
	// DrainStatus is the drain state and the wait's per-path figures.
	DrainStatus() drain.Status
}

// drainAnswer is the daemon's answer to a drain request.
type drainAnswer struct {
	drain.Status
	Error string `json:"error,omitempty"`
}

// SetDrainActions serves a's drain actions on the socket; call it before Serve.
func (s *Server) SetDrainActions(a DrainActions) {
	s.mux.HandleFunc("GET /v1/drain", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, drainAnswer{Status: a.DrainStatus()})
	})
	for path, act := range map[string]func(context.Context) (drain.Status, error){"/v1/drain": a.Drain, "/v1/undrain": a.Undrain} {
		s.mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
			st, err := act(r.Context())
			if err != nil {
				writeJSON(w, http.StatusInternalServerError, drainAnswer{Status: st, Error: err.Error()})
				return
			}
			writeJSON(w, http.StatusOK, drainAnswer{Status: st})
		})
	}
}

// Drain asks the daemon behind the socket at path to drain the box; it
// returns once the box is unattractive, with the wait for quiet begun.
func Drain(ctx context.Context, path string) (*drain.Status, error) {
	return drainCall(ctx, path, http.MethodPost, "/v1/drain")
}

// Undrain asks the daemon to put the box back in service.
func Undrain(ctx context.Context, path string) (*drain.Status, error) {
	return drainCall(ctx, path, http.MethodPost, "/v1/undrain")
}

// DrainStatus fetches the drain state and the wait's per-path figures.
func DrainStatus(ctx context.Context, path string) (*drain.Status, error) {
	return drainCall(ctx, path, http.MethodGet, "/v1/drain")
}

func drainCall(ctx context.Context, path, method, url string) (*drain.Status, error) {
	var a drainAnswer // a refusal comes back as call's error
	if err := call(ctx, path, method, url, &a); err != nil {
		return nil, err
	}
	return &a.Status, nil
}
