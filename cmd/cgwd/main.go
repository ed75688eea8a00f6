// Command cgwd is the customer-gateway daemon and its command-line client.
//
// Subcommands use the standard flag package, one FlagSet each, like the go
// command itself: cgwd has a handful of subcommands with a few flags, which
// does not justify cobra's dependency tree in a daemon that runs as root.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/cgwd/cgwd/pkg/config"
	"github.com/cgwd/cgwd/pkg/daemon"
	"github.com/cgwd/cgwd/pkg/fib"
	"github.com/cgwd/cgwd/pkg/version"
)

const defaultConfig = "/etc/cgwd/cgwd.yaml"

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2 // bad flags or an invalid config
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(args, stderr)
	case "check-config":
		return cmdCheckConfig(args, stdout, stderr)
	case "config":
		return cmdConfig(args, stdout, stderr)
	case "status":
		return cmdStatus(args, stdout, stderr)
	case "reload":
		return cmdReload(args, stdout, stderr)
	case "tunnel", "bgp", "path":
		return cmdAction(cmd, args, stdout, stderr)
	case "drain", "undrain":
		return cmdDrain(cmd, args, stdout, stderr)
	case "completion":
		return cmdCompletion(args, stdout, stderr)
	case "man":
		return cmdMan(args, stdout, stderr)
	case "import-aws":
		return cmdImportAWS(args, stdout, stderr)
	case "cleanup":
		return cmdCleanup(args, stdout, stderr)
	case "version", "--version", "-version":
		if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(stdout, "usage: cgwd version")
			return exitOK
		}
		if len(args) > 0 {
			fmt.Fprintf(stderr, "cgwd version: takes no arguments, got %q\n", args)
			return exitUsage
		}
		fmt.Fprintln(stdout, "cgwd", version.String())
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "cgwd: unknown command %q\n%s", cmd, usage)
		return exitUsage
	}
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("cgwd "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseArgs parses flags before and after the positional arguments, of
// which it allows at most maxPos. ok is false when the command must end
// with code: usage errors, or -h (which is not an error).
func parseArgs(fs *flag.FlagSet, args []string, maxPos int) (pos []string, code int, ok bool) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK, false
			}
			return nil, exitUsage, false
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) > maxPos {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), pos[maxPos])
		fs.Usage()
		return nil, exitUsage, false
	}
	return pos, exitOK, true
}

// configFlag adds -c FILE to fs; the file may also be the one positional
// argument. The returned function gives the path once fs is parsed.
func configFlag(fs *flag.FlagSet) func(pos []string) (string, bool) {
	path := fs.String("c", defaultConfig, "config file (or give it as the argument)")
	return func(pos []string) (string, bool) {
		if len(pos) == 0 {
			return *path, true
		}
		set := false
		fs.Visit(func(f *flag.Flag) { set = set || f.Name == "c" })
		if set && *path != pos[0] {
			fmt.Fprintf(fs.Output(), "%s: two config files given (-c %s and %s)\n", fs.Name(), *path, pos[0])
			return "", false
		}
		return pos[0], true
	}
}

// parseConfigArgs adds -c to fs, parses args and returns the config file:
// -c FILE or the one argument.
func parseConfigArgs(fs *flag.FlagSet, args []string) (path string, code int, ok bool) {
	configPath := configFlag(fs)
	pos, code, ok := parseArgs(fs, args, 1)
	if !ok {
		return "", code, false
	}
	if path, ok = configPath(pos); !ok {
		return "", exitUsage, false
	}
	return path, exitOK, true
}

func cmdRun(args []string, stderr io.Writer) int {
	fs := newFlagSet("run", stderr)
	drained := fs.Bool("drained", false, "start drained, as drain.start_drained does: the box attracts no traffic until `cgwd undrain`")
	path, code, ok := parseConfigArgs(fs, args)
	if !ok {
		return code
	}
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintf(stderr, "cgwd: %s:\n%v\n", path, err)
		return exitUsage
	}
	log := newLogger(cfg.Log, stderr)
	logWarnings(log, cfg)
	d, err := daemon.New(cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitFailure
	}
	d.ConfigFile = path
	d.StartDrained = *drained
	if abs, err := filepath.Abs(path); err == nil {
		d.ConfigFile = abs // what `cgwd reload` loads, whatever the directory
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// SIGHUP reloads the config on the daemon's own loop, which runs one
	// reload at a time and none once stopping has begun.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	d.ReloadSignal = hup
	d.LoadConfig = func() (*config.Config, error) {
		log.Info("SIGHUP: reloading", "config", path)
		cfg, err := config.Load(path)
		if err == nil {
			logWarnings(log, cfg)
		}
		return cfg, err
	}
	rs, unwatch := watchRestart(ctx, d, stop, log)
	stopNotify := notifySystemd(ctx, d, rs.restarting, log)
	err = d.Run(ctx)
	stopNotify()
	unwatch()
	if err != nil {
		log.Error("cgwd failed", "err", err)
		return exitFailure
	}
	if rs.restarting() {
		log.Info("cgwd stopped for a restart")
		return rs.exec(log)
	}
	log.Info("cgwd stopped")
	return exitOK
}

// logWarnings logs what check-config warns about: listeners more exposed
// than the defaults, settings AWS will not honour as written.
func logWarnings(log *slog.Logger, cfg *config.Config) {
	for _, w := range cfg.Warnings() {
		log.Warn("config: warning", "field", w.Field, "warning", w.Msg)
	}
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.Level.Slog()}
	if c.Format == config.LogJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// loadConfig loads and validates the file at path, listing every problem
// on stderr when it is invalid.
func loadConfig(path string, skipSecrets bool, stderr io.Writer) (cfg *config.Config, code int, ok bool) {
	load := config.Load
	if skipSecrets {
		load = config.LoadSkipSecrets
	}
	cfg, err := load(path)
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid:\n", path)
		var probs config.Problems
		if errors.As(err, &probs) {
			for _, p := range probs {
				fmt.Fprintf(stderr, "  %s\n", p)
			}
		} else {
			fmt.Fprintf(stderr, "  %v\n", err)
		}
		return nil, exitUsage, false
	}
	return cfg, exitOK, true
}

// forwardingOff reports whether this host forwards no IPv4 (a variable
// for tests).
var forwardingOff = fib.ForwardingOff

func cmdCheckConfig(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("check-config", stderr)
	skipSecrets := fs.Bool("skip-secrets", false, "do not check that secret files exist and are private (for checking a config away from the gateway)")
	path, code, ok := parseConfigArgs(fs, args)
	if !ok {
		return code
	}
	cfg, code, ok := loadConfig(path, *skipSecrets, stderr)
	if !ok {
		return code
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(stderr, "%s: warning: %s\n", path, w)
	}
	if !cfg.ManageForwardingOn() && forwardingOff() {
		fmt.Fprintf(stderr, "%s: warning: manage_forwarding: false, and net.ipv4.ip_forward is 0 on this host: "+
			"tunnels and BGP will come up and nothing will be forwarded\n", path)
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return exitOK
}

// cmdCleanup removes everything cgwd owns in the kernel once it is stopped:
// a clean stop leaves the fail-closed routes on purpose, a crash leaves more.
// It needs only the route table and protocol (and the control socket) from
// the config, so it works with missing secret files.
func cmdCleanup(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("cleanup", stderr)
	path, code, ok := parseConfigArgs(fs, args)
	if !ok {
		return code
	}
	cfg, err := config.ParseFile(path)
	if err != nil {
		fmt.Fprintf(stderr, "cgwd: %v\n", err)
		return exitUsage
	}
	var probs config.Problems
	for _, p := range cfg.Validate() {
		if strings.HasPrefix(p.Field, "bgp.route_") || p.Field == "control_socket" {
			probs = append(probs, p)
		}
	}
	if len(probs) > 0 {
		fmt.Fprintf(stderr, "cgwd: %s:\n%v\n", path, probs)
		return exitUsage
	}
	done, err := daemon.Cleanup(context.Background(), cfg)
	if err != nil {
		fmt.Fprintf(stderr, "cgwd: cleanup: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(stdout, "cgwd cleanup: %s (table %d, protocol %d)\n", done, cfg.BGP.RouteTable, cfg.BGP.RouteProtocol)
	return exitOK
}
