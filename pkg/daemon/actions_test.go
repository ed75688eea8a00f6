package daemon

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/cgwd/cgwd/pkg/config"
	"github.com/cgwd/cgwd/pkg/control"
)

// TestPlanReloadNamesEveryPartTouched: the plan lists the tunnels
// re-established, started and stopped, fail-closed and the firewall, in
// the order Reload applies them; a change only a restart applies is refused.
func TestPlanReloadNamesEveryPartTouched(t *testing.T) {
	a := loadExample(t)
	d := &Daemon{cfg: a, log: slog.New(slog.DiscardHandler)}
	if ch, err := d.planReload(loadExample(t)); err != nil || len(ch) != 0 {
		t.Fatalf("the same config: %+v, %v", ch, err)
	}

	b := loadExample(t)
	b.VPN[0].Tunnels[1].MTU = 1380
	b.VPN[0].Tunnels[0].Name = "cgw-t9"
	b.AWSPrefixes = []config.Prefix{config.NewPrefix("10.200.0.0/16")}
	b.Firewall.Enabled = true
	ch, err := d.planReload(b)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range ch {
		got = append(got, c.Part+" "+c.Name+" "+c.Action)
	}
	want := []string{"tunnel cgw-t2 re-establish", "tunnel cgw-t9 start", "fail-closed  update", "tunnel cgw-t1 stop", "firewall  install"}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("plan:\n got %q\nwant %q", got, want)
	}

	b = loadExample(t)
	b.ControlSocket = "/run/other.sock"
	if _, err := d.planReload(b); !errors.Is(err, ErrRestartNeeded) || !strings.Contains(err.Error(), "control_socket") {
		t.Errorf("control socket changed: %v", err)
	}
}

// TestActionsOnUnknownNames: each action names what the daemon has.
func TestActionsOnUnknownNames(t *testing.T) {
	d := &Daemon{cfg: loadExample(t), log: slog.New(slog.DiscardHandler)}
	err := d.RestartTunnel(context.Background(), "nope")
	var nf *control.NotFoundError
	if !errors.As(err, &nf) || !strings.Contains(err.Error(), `no tunnel named "nope" (the daemon has: cgw-t1, cgw-t2)`) {
		t.Errorf("restart of an unknown tunnel: %v", err)
	}
	if err := d.ResetBGP(context.Background(), "nope"); !errors.As(err, &nf) {
		t.Errorf("reset of an unknown peer: %v", err)
	}
}

// TestReloadFileRejectsAnInvalidFile: the report lists every problem and
// nothing is applied.
func TestReloadFileRejectsAnInvalidFile(t *testing.T) {
	d := &Daemon{cfg: loadExample(t), log: slog.New(slog.DiscardHandler), ConfigFile: t.TempDir() + "/missing.yaml"}
	rep := d.ReloadFile(context.Background(), false)
	if rep.Applied || len(rep.Rejected) != 1 || !strings.Contains(rep.Rejected[0], "missing.yaml") {
		t.Errorf("missing file: %+v", rep)
	}
	d.ConfigFile = ""
	if rep := d.ReloadFile(context.Background(), true); rep.Applied || len(rep.Rejected) != 1 {
		t.Errorf("no file: %+v", rep)
	}
}
