package firewall

import (
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// privateNetns returns an fd of a new, empty network namespace; it lives
// until the fd is closed at the end of the test.
func privateNetns(t *testing.T) *os.File {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (a network namespace and nftables)")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs nft to read the table back")
	}
	type res struct {
		f   *os.File
		err error
	}
	ch := make(chan res)
	go func() {
		// The thread switches namespace and is never unlocked, so the
		// runtime discards it when the goroutine ends.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- res{err: err}
			return
		}
		f, err := os.Open("/proc/thread-self/ns/net")
		ch <- res{f, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Skipf("cannot create a network namespace: %v", r.err)
	}
	t.Cleanup(func() { r.f.Close() })
	return r.f
}

// nftIn runs nft inside the namespace ns.
func nftIn(t *testing.T, ns *os.File, args ...string) string {
	t.Helper()
	cmd := exec.Command("nsenter", append([]string{"--net=/proc/self/fd/3", "nft"}, args...)...)
	cmd.ExtraFiles = []*os.File{ns}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("nft %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

var counterRE = regexp.MustCompile(`counter packets \d+ bytes \d+`)

// listed returns the rules of each chain as nft prints them.
func listed(out string) map[string][]string {
	m := map[string][]string{}
	chain := ""
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "chain "):
			chain = strings.Fields(line)[1]
		case line == "" || line == "}" || strings.HasPrefix(line, "table ") || strings.HasPrefix(line, "type "):
		default:
			m[chain] = append(m[chain], counterRE.ReplaceAllString(line, "counter"))
		}
	}
	return m
}

// TestInstallRoundTrip installs the table in a private namespace and checks
// that nft decodes every rule's bytecode to what Rule.String says, that a
// second Install replaces a leftover table, and that Remove deletes it.
func TestInstallRoundTrip(t *testing.T) {
	ns := privateNetns(t)
	s := testSpec()
	// A leftover from a crashed run, with a rule Install must not keep.
	nftIn(t, ns, "add table inet cgwd; add chain inet cgwd stale; add rule inet cgwd stale drop")
	fw, err := Install(s, nftables.WithNetNSFd(int(ns.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	out := nftIn(t, ns, "list table inet cgwd")
	got := listed(out)
	if _, ok := got["stale"]; ok {
		t.Errorf("leftover chain kept:\n%s", out)
	}
	rs := Rules(s)
	for _, chain := range []string{ChainInput, ChainForward, ChainMSS} {
		if d := diff(got[chain], render(rs, chain)); d != "" {
			t.Errorf("chain %s as the kernel has it differs from the rules:\n%s", chain, d)
		}
	}
	for _, hook := range []string{
		"type filter hook input priority filter; policy accept;",
		"type filter hook forward priority filter; policy accept;",
		"type filter hook forward priority mangle; policy accept;",
	} {
		if !strings.Contains(out, hook) {
			t.Errorf("no chain with %q:\n%s", hook, out)
		}
	}
	if err := fw.Remove(); err != nil {
		t.Fatal(err)
	}
	if tables := nftIn(t, ns, "list tables"); strings.Contains(tables, "cgwd") {
		t.Errorf("table left after Remove: %s", tables)
	}
}

func TestInstallNeedsWAN(t *testing.T) {
	if _, err := Install(Spec{}); err == nil {
		t.Fatal("Install without a WAN interface succeeded")
	}
}

func TestRemoveTableLeftBehind(t *testing.T) {
	ns := privateNetns(t)
	opt := nftables.WithNetNSFd(int(ns.Fd()))
	nftIn(t, ns, "add table inet cgwd; add chain inet cgwd input { type filter hook input priority 0; }; add table inet other")
	if removed, err := RemoveTable(DefaultTable, opt); err != nil || !removed {
		t.Fatalf("RemoveTable = %v, %v; want true", removed, err)
	}
	if removed, err := RemoveTable(DefaultTable, opt); err != nil || removed {
		t.Fatalf("RemoveTable again = %v, %v; want false (idempotent)", removed, err)
	}
	if tables := nftIn(t, ns, "list tables"); strings.Contains(tables, "cgwd") || !strings.Contains(tables, "inet other") {
		t.Errorf("tables after RemoveTable: %s", tables)
	}
}
