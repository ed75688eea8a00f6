// Command cgwd is the customer-gateway daemon and its command-line client.
//
// Subcommands use the standard flag package, one FlagSet each, like the go
// command itself: cgwd has a handful of subcommands with a few flags, which
// does not justify cobra's dependency tree in a daemon that runs as root.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/cgwd/cgwd/pkg/config"
	"github.com/cgwd/cgwd/pkg/control"
	"github.com/cgwd/cgwd/pkg/daemon"
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

const usage = `usage: cgwd <command> [flags]

commands:
  run           run the daemon in the foreground (-c FILE or FILE; default /etc/cgwd/cgwd.yaml)
  check-config  validate a config file and list every problem (-c FILE or FILE)
  status        show the running daemon's tunnels
  import-aws    turn AWS's VPN configuration (XML, Terraform outputs) into a cgwd config
  cleanup       remove what a stopped cgwd left in the kernel (fail-closed routes included)
  version       print the version
`

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
	case "status":
		return cmdStatus(args, stdout, stderr)
	case "import-aws":
		return cmdImportAWS(args, stdout, stderr)
	case "cleanup":
		return cmdCleanup(args, stdout, stderr)
	case "version", "--version", "-version":
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
	defer notifySystemd(ctx, d, log)()
	if err := d.Run(ctx); err != nil {
		log.Error("cgwd failed", "err", err)
		return exitFailure
	}
	log.Info("cgwd stopped")
	return exitOK
}

// logWarnings logs what check-config warns about: listeners more exposed than the defaults.
func logWarnings(log *slog.Logger, cfg *config.Config) {
	for _, w := range cfg.Warnings() {
		log.Warn("config: exposed more than the defaults", "field", w.Field, "warning", w.Msg)
	}
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.Level.Slog()}
	if c.Format == config.LogJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func cmdCheckConfig(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("check-config", stderr)
	skipSecrets := fs.Bool("skip-secrets", false, "do not check that secret files exist and are private (for checking a config away from the gateway)")
	path, code, ok := parseConfigArgs(fs, args)
	if !ok {
		return code
	}
	load := config.Load
	if *skipSecrets {
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
		return exitUsage
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(stderr, "%s: warning: %s\n", path, w)
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

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("status", stderr)
	sock := fs.String("s", config.DefaultControlSocket, "control socket")
	path := fs.String("c", "", "config file to read the control socket path from")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, code, ok := parseArgs(fs, args, 0); !ok {
		return code
	}
	if *path != "" {
		cfg, err := config.ParseFile(*path)
		if err != nil {
			fmt.Fprintf(stderr, "cgwd: %v\n", err)
			return exitUsage
		}
		*sock = cfg.ControlSocket
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := control.Query(ctx, *sock)
	if err != nil {
		fmt.Fprintf(stderr, "cgwd: %v\n", err)
		return exitFailure
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(st)
		return exitOK
	}
	printStatus(stdout, st, time.Now())
	return exitOK
}

func printStatus(w io.Writer, st *control.Status, now time.Time) {
	fmt.Fprintf(w, "cgwd %s, up %s\n\n", st.Version, now.Sub(st.Started).Round(time.Second))
	vpnOf := map[string]string{}
	for _, v := range st.VPN {
		for _, t := range v.Tunnels {
			vpnOf[t] = v.Name
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VPN\tTUNNEL\tKIND\tSTATE\tOUTSIDE\tINSIDE\tPEER\tHANDSHAKE\tRX\tTX")
	for _, t := range st.Tunnels {
		hs := "never"
		if !t.LastHandshake.IsZero() {
			hs = now.Sub(t.LastHandshake).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s -> %s\t%s\t%s\t%s\t%s\t%s\n",
			vpnOf[t.Name], t.Name, t.Kind, t.State, t.LocalOutside, t.RemoteOutside,
			t.Inside, t.PeerInside, hs, bytesIEC(t.RxBytes), bytesIEC(t.TxBytes))
	}
	tw.Flush()
	printIPsec(w, st, now)
	if len(st.BGP) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BGP PEER\tADDRESS\tASN\tSTATE\tUPTIME\tRECEIVED\tACCEPTED\tADVERTISED\tIN KERNEL")
	for _, p := range st.BGP {
		up := "-"
		if p.Up && !p.Since.IsZero() {
			up = now.Sub(p.Since).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%d\t%d\t%d\n",
			p.Name, p.Address, p.PeerASN, p.State, up, p.Received, p.Accepted, p.Advertised, p.Installed)
	}
	tw.Flush()
	if len(st.Paths) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PATH\tKIND\tHEALTH\tBGP\tUSABLE\tACTIVE\tSINCE")
		for _, p := range st.Paths {
			usable := fmt.Sprint(p.Usable)
			if !p.Usable && !p.HoldUntil.IsZero() {
				usable = "hold-down " + p.HoldUntil.Sub(now).Round(time.Second).String()
			}
			since := "-"
			if !p.Since.IsZero() {
				since = now.Sub(p.Since).Round(time.Second).String() + " ago"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%v\t%s\n", p.Name, p.Kind, p.Health, p.BGPUp, usable, p.Active, since)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\nkernel route operations: %d, errors: %d; fail-closed routes: %d\n", st.RoutesProgrammed, st.RouteErrors, st.FailClosedRoutes)
}

// printIPsec shows the SAs of ipsec tunnels: SPIs, suites, age, rekey due.
func printIPsec(w io.Writer, st *control.Status, now time.Time) {
	ago := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return now.Sub(t).Round(time.Second).String()
	}
	in := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Sub(now).Round(time.Second).String()
	}
	header := false
	for _, t := range st.Tunnels {
		ip := t.IPsec
		if ip == nil {
			continue
		}
		if !header {
			fmt.Fprintln(w)
			header = true
		}
		fmt.Fprintf(w, "%s  IKE %s  spi %s  %s  age %s  rekey in %s  (rekeys %d)\n",
			t.Name, ip.IKEState, ip.IKESPIs, ip.IKESuite, ago(ip.IKEEstablished), in(ip.IKERekeyDue), ip.IKERekeys)
		fmt.Fprintf(w, "%s  Child spi %s  %s  age %s  rekey in %s  (rekeys %d)\n",
			t.Name, ip.ChildSPIs, ip.ChildSuite, ago(ip.ChildEstablished), in(ip.ChildRekeyDue), ip.ChildRekeys)
		if d := nonZero(ip.ESPDropped); d != "" {
			fmt.Fprintf(w, "%s  ESP dropped: %s\n", t.Name, d)
		}
		if d := nonZero(ip.IKEDropped); d != "" {
			fmt.Fprintf(w, "%s  IKE dropped unread: %s\n", t.Name, d)
		}
		if ip.LastError != "" {
			fmt.Fprintf(w, "%s  last error: %s\n", t.Name, ip.LastError)
		}
	}
}

// nonZero is "reason=count" for each non-zero counter, sorted by reason.
func nonZero(m map[string]uint64) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if m[k] != 0 {
			out = append(out, fmt.Sprintf("%s=%d", k, m[k]))
		}
	}
	return strings.Join(out, " ")
}

func bytesIEC(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
