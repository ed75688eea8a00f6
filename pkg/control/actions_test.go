package control

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeActions records the actions asked of it; names other than "t1" and
// "dx1" are unknown, "broken" fails.
type fakeActions struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeActions) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeActions) ReloadFile(_ context.Context, dryRun bool) ReloadReport {
	f.record("reload dry=" + map[bool]string{true: "1", false: "0"}[dryRun])
	return ReloadReport{Config: "/etc/cgwd/cgwd.yaml", DryRun: dryRun, Applied: true,
		Changes: []Change{{Part: "tunnel", Name: "t1", Action: "re-establish", Why: "settings changed"}}}
}

func (f *fakeActions) named(verb, name string) error {
	switch name {
	case "t1", "dx1":
		f.record(verb + " " + name)
		return nil
	case "broken":
		return errors.New("tunnel broken: key file unreadable")
	}
	return &NotFoundError{Msg: "no such thing " + name}
}

func (f *fakeActions) RestartTunnel(_ context.Context, name string) error {
	return f.named("restart", name)
}
func (f *fakeActions) ResetBGP(_ context.Context, name string) error { return f.named("reset", name) }
func (f *fakeActions) SetPathAdmin(_ context.Context, name string, down bool) error {
	return f.named(map[bool]string{true: "down", false: "up"}[down], name)
}

func serveActions(t *testing.T) (string, *fakeActions) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "cgwd.sock")
	srv, err := Listen(sock, func() Status { return Status{} })
	if err != nil {
		t.Fatal(err)
	}
	fa := &fakeActions{}
	srv.SetActions(fa)
	ctx, cancel := context.WithCancel(context.Background())
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-srv.Done() })
	return sock, fa
}

// TestActionsOverTheSocket: each action reaches the daemon with its name,
// a reload report comes back whole, an unknown name is a NotFoundError with
// the daemon's words, and a failure carries the daemon's message.
func TestActionsOverTheSocket(t *testing.T) {
	sock, fa := serveActions(t)
	ctx := context.Background()
	rep, err := Reload(ctx, sock, true)
	if err != nil || !rep.DryRun || !rep.Applied || len(rep.Changes) != 1 || rep.Changes[0].Name != "t1" {
		t.Fatalf("reload: %+v, %v", rep, err)
	}
	if _, err := Reload(ctx, sock, false); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{RestartTunnel(ctx, sock, "t1"), ResetBGP(ctx, sock, "t1"),
		SetPathAdmin(ctx, sock, "dx1", true), SetPathAdmin(ctx, sock, "dx1", false)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := "reload dry=1, reload dry=0, restart t1, reset t1, down dx1, up dx1"
	if got := strings.Join(fa.calls, ", "); got != want {
		t.Errorf("calls: %s, want %s", got, want)
	}

	err = RestartTunnel(ctx, sock, "t7")
	var nf *NotFoundError
	if !errors.As(err, &nf) || err.Error() != "no such thing t7" {
		t.Errorf("unknown tunnel: %v", err)
	}
	if err := ResetBGP(ctx, sock, "broken"); err == nil || err.Error() != "tunnel broken: key file unreadable" || errors.As(err, &nf) {
		t.Errorf("failing action: %v", err)
	}
	for _, bad := range []string{"", "a/b", "x?y=1"} {
		if err := SetPathAdmin(ctx, sock, bad, true); err == nil || !strings.Contains(err.Error(), "is not a name") {
			t.Errorf("name %q: %v", bad, err)
		}
	}
}
