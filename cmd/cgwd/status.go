package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/cgwd/cgwd/pkg/config"
	"github.com/cgwd/cgwd/pkg/control"
	"github.com/cgwd/cgwd/pkg/failover"
	"github.com/cgwd/cgwd/pkg/tunnel"
)

type (
	tunnelStatus = tunnel.Status
	pathStatus   = failover.PathStatus
)

// statusSections are the parts `cgwd status SECTION` shows alone.
var statusSections = []string{"tunnels", "ipsec", "bgp", "paths"}

// socketFlag adds -s SOCKET and -c FILE to fs; the returned function gives
// the control socket once fs is parsed: -s, else the config's
// control_socket, else the default.
func socketFlag(fs *flag.FlagSet) func() (string, error) {
	sock := fs.String("s", config.DefaultControlSocket, "control socket")
	path := fs.String("c", "", "config file to read the control socket path from")
	return func() (string, error) {
		if *path == "" {
			return *sock, nil
		}
		cfg, err := config.ParseFile(*path)
		if err != nil {
			return "", err
		}
		return cfg.ControlSocket, nil
	}
}

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("status", stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: cgwd status [%s [NAME]] [flags]\n", strings.Join(statusSections, "|"))
		fs.PrintDefaults()
	}
	socket := socketFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	watch := fs.Duration("watch", 0, "redraw every `INTERVAL` (e.g. 2s) until interrupted")
	pos, code, ok := parseArgs(fs, args, 2)
	if !ok {
		return code
	}
	var v view
	if len(pos) > 0 {
		v.section = pos[0]
		if !slices.Contains(statusSections, v.section) {
			fmt.Fprintf(stderr, "cgwd status: unknown section %q (one of %s)\n", v.section, strings.Join(statusSections, ", "))
			return exitUsage
		}
	}
	if len(pos) > 1 {
		v.name = pos[1]
	}
	if *watch < 0 || (*watch > 0 && *watch < 100*time.Millisecond) {
		fmt.Fprintf(stderr, "cgwd status: -watch %v: give an interval of at least 100ms\n", *watch)
		return exitUsage
	}
	sock, err := socket()
	if err != nil {
		fmt.Fprintf(stderr, "cgwd: %v\n", err)
		return exitUsage
	}
	draw := func(ctx context.Context) error {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		st, err := control.Query(qctx, sock)
		if err != nil {
			return err
		}
		return v.print(stdout, st, *asJSON, time.Now())
	}
	if *watch == 0 {
		if err := draw(context.Background()); err != nil {
			fmt.Fprintf(stderr, "cgwd: %v\n", err)
			return exitFailure
		}
		return exitOK
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := watchLoop(ctx, *watch, stdout, draw); err != nil {
		fmt.Fprintf(stderr, "cgwd: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// watchLoop draws, then redraws every interval until ctx ends: on a
// terminal over the previous picture, elsewhere below a time stamp. A
// failed draw ends it (the daemon went away).
func watchLoop(ctx context.Context, interval time.Duration, w io.Writer, draw func(context.Context) error) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	tty := isTerminal(w)
	for {
		if tty {
			fmt.Fprint(w, "\033[H\033[2J")
		} else {
			fmt.Fprintf(w, "--- %s\n", time.Now().Format(time.RFC3339))
		}
		if err := draw(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// view is what `cgwd status` shows: a section ("" for all) and, within
// it, one tunnel, peer or path by name ("" for all).
type view struct {
	section, name string
}

// errUnknownName says a NAME matched nothing, listing what exists.
func errUnknownName(what, name string, have []string) error {
	if len(have) == 0 {
		return fmt.Errorf("no %s named %q: the daemon has none", what, name)
	}
	return fmt.Errorf("no %s named %q (the daemon has: %s)", what, name, strings.Join(have, ", "))
}

// filter keeps the items named v.name (all when it is empty); an unknown
// name is an error.
func filter[T any](v view, what string, items []T, name func(T) string) ([]T, error) {
	if v.name == "" {
		return items, nil
	}
	var have []string
	for _, it := range items {
		if name(it) == v.name {
			return []T{it}, nil
		}
		have = append(have, name(it))
	}
	return nil, errUnknownName(what, v.name, have)
}

// print writes the view of st, as tables or as JSON.
func (v view) print(w io.Writer, st *control.Status, asJSON bool, now time.Time) error {
	var err error
	s := *st
	switch v.section {
	case "tunnels", "ipsec":
		what := "tunnel"
		if v.section == "ipsec" {
			what = "ipsec tunnel"
			s.Tunnels = slices.DeleteFunc(slices.Clone(s.Tunnels), func(t tunnelStatus) bool { return t.IPsec == nil })
		}
		s.Tunnels, err = filter(v, what, s.Tunnels, func(t tunnelStatus) string { return t.Name })
	case "bgp":
		s.BGP, err = filter(v, "BGP peer", s.BGP, func(p control.PeerStatus) string { return p.Name })
	case "paths":
		s.Paths, err = filter(v, "path", s.Paths, func(p pathStatus) string { return p.Name })
	}
	if err != nil {
		return err
	}
	if asJSON {
		return v.printJSON(w, &s)
	}
	switch v.section {
	case "":
		printStatus(w, &s, now)
	case "tunnels":
		printTunnels(w, &s, now)
	case "ipsec":
		printIPsec(w, &s, now)
	case "bgp":
		printBGP(w, &s, now)
	case "paths":
		printPaths(w, &s, now)
	}
	return nil
}

// printJSON writes the whole status, or only the section's list, with
// null for a time that has not happened.
func (v view) printJSON(w io.Writer, s *control.Status) error {
	var part any = s
	switch v.section {
	case "tunnels", "ipsec":
		part = s.Tunnels
	case "bgp":
		part = s.BGP
	case "paths":
		part = s.Paths
	}
	b, err := json.MarshalIndent(part, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", control.NullTimes(b))
	return err
}

func printStatus(w io.Writer, st *control.Status, now time.Time) {
	fmt.Fprintf(w, "cgwd %s, up %s\n", st.Version, duration(now.Sub(st.Started)))
	if l := drainLine(st.Drain, now); l != "" {
		fmt.Fprintln(w, l)
	}
	fmt.Fprintln(w)
	printTunnels(w, st, now)
	if slices.ContainsFunc(st.Tunnels, func(t tunnelStatus) bool { return t.IPsec != nil }) {
		fmt.Fprintln(w)
		printIPsec(w, st, now)
	}
	if len(st.BGP) == 0 {
		return
	}
	fmt.Fprintln(w)
	printBGP(w, st, now)
	if len(st.Paths) > 0 {
		fmt.Fprintln(w)
		printPaths(w, st, now)
	}
	fmt.Fprintf(w, "\nkernel route operations: %d, errors: %d; fail-closed routes: %d\n", st.RoutesProgrammed, st.RouteErrors, st.FailClosedRoutes)
	printAsymmetric(w, st, now)
}

// printAsymmetric names the paths AWS sends on and cgwd does not use.
func printAsymmetric(w io.Writer, st *control.Status, now time.Time) {
	names := make([]string, 0, len(st.Symmetry))
	for n, s := range st.Symmetry {
		if s.Asymmetric() {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(w, "asymmetric: AWS sends on %s (%.0f packets/s), which cgwd does not use, for %s (README \"Path selection and symmetry\")\n",
			n, st.Symmetry[n].RxPPS, duration(now.Sub(st.Symmetry[n].Since)))
	}
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

func printTunnels(w io.Writer, st *control.Status, now time.Time) {
	vpnOf := map[string]string{}
	for _, v := range st.VPN {
		for _, t := range v.Tunnels {
			vpnOf[t] = v.Name
		}
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "VPN\tTUNNEL\tKIND\tSTATE\tOUTSIDE\tINSIDE\tPEER\tHANDSHAKE\tRX\tTX")
	for _, t := range st.Tunnels {
		hs := "never"
		if !t.LastHandshake.IsZero() {
			hs = duration(now.Sub(t.LastHandshake)) + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s -> %s\t%s\t%s\t%s\t%s\t%s\n",
			dash(vpnOf[t.Name]), t.Name, t.Kind, t.State, addr(t.LocalOutside), addr(t.RemoteOutside),
			dash(t.Inside.String()), addr(t.PeerInside), hs, bytesIEC(t.RxBytes), bytesIEC(t.TxBytes))
	}
	tw.Flush()
}

func printBGP(w io.Writer, st *control.Status, now time.Time) {
	tw := newTable(w)
	fmt.Fprintln(tw, "BGP PEER\tADDRESS\tASN\tSTATE\tUPTIME\tRECEIVED\tACCEPTED\tADVERTISED\tIN KERNEL")
	for _, p := range st.BGP {
		up := "-"
		if p.Up && !p.Since.IsZero() {
			up = duration(now.Sub(p.Since))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%d\t%d\t%d\n",
			p.Name, p.Address, p.PeerASN, p.State, up, p.Received, p.Accepted, p.Advertised, p.Installed)
	}
	tw.Flush()
	for _, p := range st.BGP {
		if p.MD5 != "" {
			fmt.Fprintf(w, "%s: md5: %s\n", p.Name, p.MD5)
		}
	}
}

func printPaths(w io.Writer, st *control.Status, now time.Time) {
	tw := newTable(w)
	fmt.Fprintln(tw, "PATH\tKIND\tHEALTH\tBGP\tUSABLE\tACTIVE\tSINCE")
	for _, p := range st.Paths {
		usable := yesNo(p.Usable)
		switch {
		case p.AdminDown:
			usable = "admin-down"
		case !p.Usable && !p.HoldUntil.IsZero():
			usable = "hold-down " + duration(p.HoldUntil.Sub(now))
		}
		since := "-"
		if !p.Since.IsZero() {
			since = duration(now.Sub(p.Since)) + " ago"
		}
		session := upDown(p.BGPUp)
		if p.Routing == "static" { // no BGP session: the tunnel stands in for it
			session = "static, tunnel " + upDown(p.TunnelUp)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, p.Kind, p.Health, session, usable, yesNo(p.Active), since)
	}
	tw.Flush()
}

// printIPsec is a table of the IKE and Child SAs of ipsec tunnels (SPIs,
// suites, age, rekey due), then their non-zero drop counters and last errors.
func printIPsec(w io.Writer, st *control.Status, now time.Time) {
	ago := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return duration(now.Sub(t))
	}
	in := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return duration(t.Sub(now))
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "TUNNEL\tSA\tSTATE\tSPIS\tSUITE\tAGE\tREKEY IN\tREKEYS")
	for _, t := range st.Tunnels {
		ip := t.IPsec
		if ip == nil {
			continue
		}
		sa := "IKE"
		switch ip.IKEVersion {
		case "ikev1":
			sa = "IKEv1"
		case "ikev2":
			sa = "IKEv2"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n",
			t.Name, sa, dash(ip.IKEState), dash(ip.IKESPIs), dash(ip.IKESuite), ago(ip.IKEEstablished), in(ip.IKERekeyDue), ip.IKERekeys)
		childState := "-"
		if ip.ChildSPIs != "" {
			childState = "installed"
		}
		fmt.Fprintf(tw, "%s\tChild\t%s\t%s\t%s\t%s\t%s\t%d\n",
			t.Name, childState, dash(ip.ChildSPIs), dash(ip.ChildSuite), ago(ip.ChildEstablished), in(ip.ChildRekeyDue), ip.ChildRekeys)
	}
	tw.Flush()
	for _, t := range st.Tunnels {
		ip := t.IPsec
		if ip == nil {
			continue
		}
		if d := nonZero(ip.ESPDropped); d != "" {
			fmt.Fprintf(w, "%s  ESP dropped: %s\n", t.Name, d)
		}
		if d := nonZero(ip.IKEDropped); d != "" {
			fmt.Fprintf(w, "%s  IKE dropped unread: %s\n", t.Name, d)
		}
		if ip.LastError != "" {
			fmt.Fprintf(w, "%s  last error: %s\n", t.Name, ip.LastError)
		}
		if ip.IKEVersionSwitch != "" {
			fmt.Fprintf(w, "%s  last IKE version switch: %s\n", t.Name, ip.IKEVersionSwitch)
		}
	}
}

// duration is the one format status uses for every span: the two largest
// units, e.g. 45s, 3m07s, 2h05m, 3d04h; a span already past is 0s.
func duration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64((d + time.Second/2) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd%02dh", s/86400, s%86400/3600)
}

// dash is s, or - when it is empty or not valid.
func dash(s string) string {
	if s == "" || strings.HasPrefix(s, "invalid ") {
		return "-"
	}
	return s
}

func addr(a netip.Addr) string { return dash(a.String()) }

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func upDown(b bool) string {
	if b {
		return "up"
	}
	return "down"
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
