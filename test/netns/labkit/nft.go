package labkit

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Nft runs nft with args in namespace ns and fails the test when it fails.
func Nft(t testing.TB, ns string, args ...string) string {
	t.Helper()
	return MustInNS(t, ns, append([]string{"nft"}, args...)...)
}

// NftScript loads an nft script (nft -f -) in namespace ns.
func NftScript(t testing.TB, ns, script string) {
	t.Helper()
	cmd := Command(ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f - in %s: %v\n%s\n%s", ns, err, out, script)
	}
}

var counterRE = regexp.MustCompile(`counter packets (\d+) bytes`)

// NftCounter returns the packets counted by the rule of inet table in ns
// whose text contains match; the test fails when there is none.
func NftCounter(t testing.TB, ns, table, match string) int {
	t.Helper()
	return NftCounted(t, Nft(t, ns, "list", "table", "inet", table), match)
}

// CgwdCounter is NftCounter for cgwd's own table, inet cgwd in lab-cgw.
func CgwdCounter(t testing.TB, match string) int {
	t.Helper()
	return NftCounter(t, CGW, "cgwd", match)
}

// NftCounted is the packet counter of the first rule of listing that contains match.
func NftCounted(t testing.TB, listing, match string) int {
	t.Helper()
	for _, line := range strings.Split(listing, "\n") {
		if strings.Contains(line, match) {
			if m := counterRE.FindStringSubmatch(line); m != nil {
				n, _ := strconv.Atoi(m[1])
				return n
			}
		}
	}
	t.Fatalf("no counted rule matching %q in:\n%s", match, listing)
	return 0
}

// DropIngress silently drops every packet arriving on dev in ns (netdev
// ingress hook, before the IP stack) until the returned function removes
// the rule.
func DropIngress(t testing.TB, ns, dev string) (restore func()) {
	t.Helper()
	table := "cgwdtest_" + strings.ReplaceAll(dev, "-", "_")
	Nft(t, ns, "add", "table", "netdev", table)
	Nft(t, ns, "add", "chain", "netdev", table, "ing", fmt.Sprintf("{ type filter hook ingress device %q priority 0; }", dev))
	Nft(t, ns, "add", "rule", "netdev", table, "ing", "drop")
	return func() { Nft(t, ns, "delete", "table", "netdev", table) }
}

// InputFilter is an inet table in a namespace with a chain "in" on the
// input hook (priority -10), to which a test adds drop rules.
type InputFilter struct {
	t         testing.TB
	ns, table string
}

// NewInputFilter creates table with its input chain in ns; it has no rule
// yet, so that adding one is a single quick command.
func NewInputFilter(t testing.TB, ns, table string) *InputFilter {
	t.Helper()
	Nft(t, ns, "add", "table", "inet", table)
	Nft(t, ns, "add", "chain", "inet", table, "in", "{ type filter hook input priority -10; }")
	return &InputFilter{t: t, ns: ns, table: table}
}

// DropUDP adds a rule that drops UDP packets to port.
func (f *InputFilter) DropUDP(port int) {
	f.t.Helper()
	Nft(f.t, f.ns, "add", "rule", "inet", f.table, "in", "udp", "dport", strconv.Itoa(port), "drop")
}

// Delete removes the table.
func (f *InputFilter) Delete() {
	f.t.Helper()
	Nft(f.t, f.ns, "delete", "table", "inet", f.table)
}
