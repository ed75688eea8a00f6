package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cgwd/cgwd/pkg/control"
)

// cmdReload asks the daemon to load its config file again and apply it
// (or, with --dry-run, to say what applying it would do), and prints what
// happened per part. Exit 0: applied (would apply); 1: rejected or not
// every change applied.
func cmdReload(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("reload", stderr)
	socket := socketFlag(fs)
	dryRun := fs.Bool("dry-run", false, "only say what applying the file would do")
	asJSON := fs.Bool("json", false, "print JSON")
	sock, code, ok := parseSocketArgs(fs, socket, args, stderr)
	if !ok {
		return code
	}
	// Re-establishing sessions and tunnels takes a while; BGP's own bound is 30s.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := control.Reload(ctx, sock, *dryRun)
	if err != nil {
		fmt.Fprintf(stderr, "cgwd: %v\n", err)
		return exitFailure
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		printReload(stdout, rep)
	}
	if !rep.Applied {
		return exitFailure
	}
	return exitOK
}

// parseSocketArgs parses the flags of a command that takes no argument and
// returns the control socket (socketFlag's).
func parseSocketArgs(fs *flag.FlagSet, socket func() (string, error), args []string, stderr io.Writer) (sock string, code int, ok bool) {
	if _, code, ok := parseArgs(fs, args, 0); !ok {
		return "", code, false
	}
	sock, err := socket()
	if err != nil {
		fmt.Fprintf(stderr, "cgwd: %v\n", err)
		return "", exitUsage, false
	}
	return sock, exitOK, true
}

// printReload says what the reload did or would do, part by part.
func printReload(w io.Writer, rep *control.ReloadReport) {
	switch {
	case len(rep.Rejected) > 0:
		fmt.Fprintf(w, "%s: rejected, the running state is kept:\n", rep.Config)
		for _, r := range rep.Rejected {
			fmt.Fprintf(w, "  %s\n", r)
		}
		return
	case rep.DryRun && len(rep.Changes) == 0:
		fmt.Fprintf(w, "%s: would apply (dry run): nothing changes\n", rep.Config)
		return
	case rep.DryRun:
		fmt.Fprintf(w, "%s: would apply (dry run):\n", rep.Config)
	case len(rep.Changes) == 0 && rep.Applied:
		fmt.Fprintf(w, "%s: applied: nothing changed\n", rep.Config)
		return
	case rep.Applied:
		fmt.Fprintf(w, "%s: applied:\n", rep.Config)
	default:
		fmt.Fprintf(w, "%s: applied in part:\n", rep.Config)
	}
	tw := newTable(w)
	for _, c := range rep.Changes {
		name := c.Name
		if name == "" {
			name = "-"
		}
		action := pastTense(c.Action)
		if rep.DryRun {
			action = "would " + c.Action
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.Part, name, action, c.Why)
	}
	tw.Flush()
	for _, e := range rep.Errors {
		fmt.Fprintf(w, "  failed: %s\n", e)
	}
}

// pastTense is what a reload did: "re-establish" becomes "re-established".
func pastTense(action string) string {
	switch {
	case strings.HasSuffix(action, "e"):
		return action + "d"
	case action == "stop":
		return "stopped"
	}
	return action + "ed"
}

// actions are the subcommands that act on one named part of the daemon.
var actions = map[string]map[string]func(ctx context.Context, sock, name string) error{
	"tunnel": {"restart": control.RestartTunnel},
	"bgp":    {"reset": control.ResetBGP},
	"path": {
		"down": func(ctx context.Context, sock, name string) error { return control.SetPathAdmin(ctx, sock, name, true) },
		"up": func(ctx context.Context, sock, name string) error {
			return control.SetPathAdmin(ctx, sock, name, false)
		},
	},
}

// actionDone says what each action did, for its one line of output.
var actionDone = map[string]string{
	"tunnel restart": "tunnel %s restarted",
	"bgp reset":      "BGP session %s soft-reset",
	"path down":      "path %s taken out of service",
	"path up":        "path %s back in service",
}

// cmdAction runs `cgwd tunnel restart NAME`, `cgwd bgp reset NAME` and
// `cgwd path down|up NAME` over the control socket.
func cmdAction(noun string, args []string, stdout, stderr io.Writer) int {
	verbs := actions[noun]
	usage := fmt.Sprintf("usage: cgwd %s %s NAME [-s SOCKET | -c FILE]\n", noun, strings.Join(slices.Sorted(maps.Keys(verbs)), "|"))
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	verb, act := args[0], verbs[args[0]]
	if act == nil {
		fmt.Fprintf(stderr, "cgwd %s: unknown action %q\n%s", noun, verb, usage)
		return exitUsage
	}
	fs := newFlagSet(noun+" "+verb, stderr)
	socket := socketFlag(fs)
	pos, code, ok := parseArgs(fs, args[1:], 1)
	if !ok {
		return code
	}
	if len(pos) == 0 {
		fmt.Fprintf(stderr, "cgwd %s %s: which one? give its NAME\n%s", noun, verb, usage)
		return exitUsage
	}
	sock, err := socket()
	if err != nil {
		fmt.Fprintf(stderr, "cgwd: %v\n", err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := act(ctx, sock, pos[0]); err != nil {
		fmt.Fprintf(stderr, "cgwd %s %s: %v\n", noun, verb, err)
		return exitFailure
	}
	fmt.Fprintf(stdout, actionDone[noun+" "+verb]+"\n", pos[0])
	return exitOK
}
