// Package prometheus holds cgwd's Prometheus scrape config and alerting
// rules; its test runs promtool on them and checks that every metric they
// use is documented.
package prometheus

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// documentedMetrics returns the metric names in docs/operations.md's metrics tables.
func documentedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, x := range regexp.MustCompile("(?m)^\\| `(cgwd_[a-z0-9_]+)`").FindAllStringSubmatch(string(b), -1) {
		m[x[1]] = true
	}
	if len(m) < 10 {
		t.Fatalf("only %d metrics documented in docs/operations.md", len(m))
	}
	return m
}

// metricsIn returns the cgwd_ metric names an expression uses.
func metricsIn(expr string) []string {
	return regexp.MustCompile(`\bcgwd_[a-z0-9_]+`).FindAllString(expr, -1)
}

// isDocumented reports whether a series name belongs to a documented metric;
// a histogram's _bucket, _sum and _count series belong to the histogram.
func isDocumented(documented map[string]bool, name string) bool {
	if documented[name] {
		return true
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if strings.HasSuffix(name, suf) && documented[strings.TrimSuffix(name, suf)] {
			return true
		}
	}
	return false
}

func TestRulesUseDocumentedMetrics(t *testing.T) {
	b, err := os.ReadFile("cgwd-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	documented := documentedMetrics(t)
	var alerts []string
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			for _, m := range metricsIn(r.Expr) {
				if !isDocumented(documented, m) {
					t.Errorf("alert %s uses %s, which docs/operations.md does not document", r.Alert, m)
				}
			}
		}
	}
	sort.Strings(alerts)
	for _, want := range []string{"CgwdBGPSessionDown", "CgwdDirectConnectDown", "CgwdFailover", "CgwdProbeLossHigh", "CgwdTunnelDown", "CgwdVPNDown"} {
		if i := sort.SearchStrings(alerts, want); i == len(alerts) || alerts[i] != want {
			t.Errorf("no alert %s", want)
		}
	}
}

func promtool(t *testing.T, args ...string) {
	t.Helper()
	if _, err := exec.LookPath("promtool"); err != nil {
		t.Skip("promtool not installed (Debian package prometheus); skipping")
	}
	out, err := exec.Command("promtool", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestPromtoolCheckRules(t *testing.T)  { promtool(t, "check", "rules", "cgwd-rules.yml") }
func TestPromtoolCheckConfig(t *testing.T) { promtool(t, "check", "config", "prometheus.yml") }
func TestPromtoolTestRules(t *testing.T)   { promtool(t, "test", "rules", "cgwd-rules.test.yml") }

// Metrics the docs call exported must be defined under that name by some
// package under pkg/.
func TestExportedMetricsExist(t *testing.T) {
	b, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	var src strings.Builder
	files, _ := filepath.Glob("../../pkg/*/*.go")
	deeper, _ := filepath.Glob("../../pkg/*/*/*.go")
	for _, f := range append(files, deeper...) {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		c, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src.Write(c)
	}
	n := 0
	for _, m := range regexp.MustCompile("(?m)^\\| `(cgwd_[a-z0-9_]+)` \\|.*\\| exported \\|$").FindAllStringSubmatch(string(b), -1) {
		n++
		if !strings.Contains(src.String(), `"`+m[1]+`"`) {
			t.Errorf("docs/operations.md says %s is exported, but no package under pkg/ defines it", m[1])
		}
	}
	if n < 5 {
		t.Fatalf("only %d metrics marked exported in docs/operations.md", n)
	}
}
