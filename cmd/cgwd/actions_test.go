package main

import (
	"context"
	"strings"
	"testing"

	"github.com/cgwd/cgwd/pkg/control"
)

// cliActions answers the CLI's actions with a fixed reload report; the
// only names it knows are t1 and dx1.
type cliActions struct {
	rep  control.ReloadReport
	last string
}

func (a *cliActions) ReloadFile(_ context.Context, dryRun bool) control.ReloadReport {
	r := a.rep
	r.DryRun = dryRun
	return r
}

func (a *cliActions) named(what, name string) error {
	if name != "t1" && name != "dx1" {
		return &control.NotFoundError{Msg: "no " + what + " named " + `"` + name + `" (the daemon has: t1, dx1)`}
	}
	a.last = what + " " + name
	return nil
}

func (a *cliActions) RestartTunnel(_ context.Context, n string) error { return a.named("tunnel", n) }
func (a *cliActions) ResetBGP(_ context.Context, n string) error      { return a.named("BGP peer", n) }
func (a *cliActions) SetPathAdmin(_ context.Context, n string, down bool) error {
	return a.named(map[bool]string{true: "path-down", false: "path-up"}[down], n)
}

func serveActions(t *testing.T, a *cliActions) string {
	t.Helper()
	return serveControl(t, control.Status{}, a)
}

func TestReloadPrintsEachPart(t *testing.T) {
	a := &cliActions{rep: control.ReloadReport{Config: "/etc/cgwd/cgwd.yaml", Applied: true, Changes: []control.Change{
		{Part: "tunnel", Name: "cgw-t2", Action: "re-establish", Why: "settings changed"},
		{Part: "bgp", Name: "cgw-t1", Action: "soft-reset"},
		{Part: "prefix", Name: "10.30.0.0/16", Action: "advertise"},
		{Part: "tunnel", Name: "cgw-t3", Action: "stop", Why: "removed"},
		{Part: "firewall", Action: "remove"},
	}}}
	sock := serveActions(t, a)

	code, out, errOut := runCLI("reload", "-s", sock, "--dry-run")
	if code != exitOK || !strings.HasPrefix(out, "/etc/cgwd/cgwd.yaml: would apply (dry run):\n") ||
		!strings.Contains(out, "  tunnel    cgw-t2        would re-establish  settings changed\n") ||
		!strings.Contains(out, "  firewall  -             would remove") {
		t.Errorf("reload --dry-run: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI("reload", "-s", sock)
	for _, want := range []string{"/etc/cgwd/cgwd.yaml: applied:\n", "tunnel    cgw-t2        re-established  settings changed",
		"bgp       cgw-t1        soft-reset", "prefix    10.30.0.0/16  advertised", "tunnel    cgw-t3        stopped         removed", "firewall  -             removed"} {
		if code != exitOK || !strings.Contains(out, want) {
			t.Errorf("reload: exit %d, lacks %q:\n%s%s", code, want, out, errOut)
		}
	}

	a.rep = control.ReloadReport{Config: "/etc/cgwd/cgwd.yaml", Rejected: []string{"vpn[0].tunnels[1].inside: 169.254.1.0/30 is in a range AWS reserves"}}
	code, out, _ = runCLI("reload", "-s", sock)
	if code != exitFailure || !strings.Contains(out, "rejected, the running state is kept:\n  vpn[0].tunnels[1].inside") {
		t.Errorf("rejected reload: exit %d\n%s", code, out)
	}
	a.rep = control.ReloadReport{Config: "c.yaml", Changes: []control.Change{{Part: "bgp", Name: "dx1", Action: "start"}}, Errors: []string{"reload: bgp: peer dx1: add: boom"}}
	code, out, _ = runCLI("reload", "-s", sock)
	if code != exitFailure || !strings.Contains(out, "c.yaml: applied in part:\n") || !strings.Contains(out, "  failed: reload: bgp: peer dx1: add: boom\n") {
		t.Errorf("partly applied reload: exit %d\n%s", code, out)
	}
	if code, _, errOut := runCLI("reload", "-s", sock, "extra"); code != exitUsage || !strings.Contains(errOut, `unexpected argument "extra"`) {
		t.Errorf("reload with an argument: exit %d\n%s", code, errOut)
	}
}

func TestActionCommands(t *testing.T) {
	a := &cliActions{}
	sock := serveActions(t, a)
	for _, c := range []struct {
		args      []string
		code      int
		out, last string
	}{
		{[]string{"tunnel", "restart", "t1"}, exitOK, "tunnel t1 restarted\n", "tunnel t1"},
		{[]string{"bgp", "reset", "t1"}, exitOK, "BGP session t1 soft-reset\n", "BGP peer t1"},
		{[]string{"path", "down", "dx1"}, exitOK, "path dx1 taken out of service\n", "path-down dx1"},
		{[]string{"path", "up", "dx1"}, exitOK, "path dx1 back in service\n", "path-up dx1"},
	} {
		code, out, errOut := runCLI(append(c.args, "-s", sock)...)
		if code != c.code || out != c.out || a.last != c.last {
			t.Errorf("%q: exit %d, did %q\n%s%s", c.args, code, a.last, out, errOut)
		}
	}
	for _, c := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"tunnel", "restart", "t9"}, exitFailure, `cgwd tunnel restart: no tunnel named "t9" (the daemon has: t1, dx1)`},
		{[]string{"path", "sideways", "dx1"}, exitUsage, `unknown action "sideways"`},
		{[]string{"path", "down"}, exitUsage, "give its NAME"},
		{[]string{"bgp", "reset", "a", "b"}, exitUsage, `unexpected argument "b"`},
		{[]string{"bgp"}, exitUsage, "usage: cgwd bgp reset NAME"},
	} {
		code, out, errOut := runCLI(append(c.args, "-s", sock)...)
		if code != c.code || !strings.Contains(errOut, c.err) || out != "" {
			t.Errorf("%q: exit %d, want %d with %q\n%s%s", c.args, code, c.code, c.err, out, errOut)
		}
	}
	if code, out, _ := runCLI("path", "-h"); code != exitOK || !strings.Contains(out, "usage: cgwd path down|up NAME") {
		t.Errorf("path -h: exit %d\n%s", code, out)
	}
}
