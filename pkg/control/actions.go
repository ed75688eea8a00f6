package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// NotFoundError is an action's error for a tunnel, peer or path the daemon
// does not have; the client gets it back as such.
type NotFoundError struct{ Msg string }

func (e *NotFoundError) Error() string { return e.Msg }

// Actions are what an operator asks of the running daemon over the socket.
// Each one is logged by the daemon.
type Actions interface {
	// Reload loads the config file from disk and applies it, or with dryRun
	// only says what applying it would do.
	ReloadFile(ctx context.Context, dryRun bool) ReloadReport
	// RestartTunnel re-establishes one tunnel (its keys read again).
	RestartTunnel(ctx context.Context, name string) error
	// ResetBGP soft-resets one BGP session: routes are re-sent and
	// re-evaluated in both directions, the session stays up.
	ResetBGP(ctx context.Context, name string) error
	// SetPathAdmin takes a path out of service (down) or back.
	SetPathAdmin(ctx context.Context, name string, down bool) error
}

// ReloadReport is what a reload did, or would do, part by part.
type ReloadReport struct {
	Config string `json:"config"`
	DryRun bool   `json:"dry_run"`
	// Applied is whether the whole config was applied (for a dry run:
	// whether it would be).
	Applied bool `json:"applied"`
	// Rejected says why nothing was applied: every problem of an invalid
	// file, or the changes only a restart applies.
	Rejected []string `json:"rejected,omitempty"`
	// Changes are the parts touched, in the order they are applied.
	Changes []Change `json:"changes"`
	// Errors are the changes that failed while applying.
	Errors []string `json:"errors,omitempty"`
}

// Change is one part of the running state that a reload touches.
type Change struct {
	// Part is tunnel, bgp, prefix, fail-closed or firewall.
	Part string `json:"part"`
	// Name is the tunnel, peer or prefix; empty for a part that is one thing.
	Name string `json:"name,omitempty"`
	// Action is what happens to it: re-establish, start, stop, soft-reset,
	// advertise, withdraw, install, rebuild, remove, update.
	Action string `json:"action"`
	// Why says what changed, when the action alone does not.
	Why string `json:"why,omitempty"`
}

// SetActions serves a's actions on the socket; call it before Serve.
func (s *Server) SetActions(a Actions) {
	s.mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.ReloadFile(r.Context(), r.URL.Query().Get("dry_run") == "1"))
	})
	named := func(pattern string, act func(ctx context.Context, name string) error) {
		s.mux.HandleFunc("POST "+pattern, func(w http.ResponseWriter, r *http.Request) {
			err := act(r.Context(), r.PathValue("name"))
			switch {
			case err == nil:
				writeJSON(w, http.StatusOK, actionResult{})
			case errors.As(err, new(*NotFoundError)):
				writeJSON(w, http.StatusNotFound, actionResult{Error: err.Error()})
			default:
				writeJSON(w, http.StatusInternalServerError, actionResult{Error: err.Error()})
			}
		})
	}
	named("/v1/tunnels/{name}/restart", a.RestartTunnel)
	named("/v1/bgp/{name}/reset", a.ResetBGP)
	named("/v1/paths/{name}/down", func(ctx context.Context, name string) error { return a.SetPathAdmin(ctx, name, true) })
	named("/v1/paths/{name}/up", func(ctx context.Context, name string) error { return a.SetPathAdmin(ctx, name, false) })
}

type actionResult struct {
	Error string `json:"error,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Reload asks the daemon behind the socket at path to reload its config file.
func Reload(ctx context.Context, path string, dryRun bool) (*ReloadReport, error) {
	url := "/v1/reload"
	if dryRun {
		url += "?dry_run=1"
	}
	var rep ReloadReport
	if err := call(ctx, path, http.MethodPost, url, &rep); err != nil {
		return nil, err
	}
	return &rep, nil
}

// RestartTunnel asks the daemon to re-establish the tunnel name.
func RestartTunnel(ctx context.Context, path, name string) error {
	return act(ctx, path, "tunnels", name, "restart")
}

// ResetBGP asks the daemon to soft-reset the BGP session name.
func ResetBGP(ctx context.Context, path, name string) error {
	return act(ctx, path, "bgp", name, "reset")
}

// SetPathAdmin asks the daemon to take the path name out of service (down)
// or back.
func SetPathAdmin(ctx context.Context, path, name string, down bool) error {
	verb := "up"
	if down {
		verb = "down"
	}
	return act(ctx, path, "paths", name, verb)
}

// act asks for verb on the named part of the daemon.
func act(ctx context.Context, path, part, name, verb string) error {
	if name == "" || strings.ContainsAny(name, "/?#% ") {
		return fmt.Errorf("%q is not a name", name)
	}
	var res actionResult
	return call(ctx, path, http.MethodPost, "/v1/"+part+"/"+name+"/"+verb, &res)
}

// answerError is the daemon's refusal: its own words, a NotFoundError kept.
func answerError(code int, body io.Reader) error {
	var res actionResult
	b, _ := io.ReadAll(io.LimitReader(body, 4096))
	if json.Unmarshal(b, &res) != nil || res.Error == "" {
		return fmt.Errorf("%s: %s", http.StatusText(code), strings.TrimSpace(string(b)))
	}
	if code == http.StatusNotFound {
		return &NotFoundError{res.Error}
	}
	return errors.New(res.Error)
}
