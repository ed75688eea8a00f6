// Package grafana holds cgwd's Grafana dashboard; its test checks that the
// JSON is well formed, that every query is valid PromQL (with promtool, when
// installed) and that every metric it queries is documented.
package grafana

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

type target struct {
	Expr  string `json:"expr"`
	RefID string `json:"refId"`
}

type panel struct {
	ID      int      `json:"id"`
	Type    string   `json:"type"`
	Title   string   `json:"title"`
	Targets []target `json:"targets"`
	Panels  []panel  `json:"panels"`
	GridPos struct {
		H, W, X, Y int
	} `json:"gridPos"`
}

type dashboard struct {
	UID    string  `json:"uid"`
	Title  string  `json:"title"`
	Panels []panel `json:"panels"`
	Annot  struct {
		List []struct {
			Expr string `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
}

func load(t *testing.T) *dashboard {
	t.Helper()
	b, err := os.ReadFile("cgwd-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("cgwd-dashboard.json: %v", err)
	}
	return &d
}

// exprs returns every query of the dashboard, keyed by where it is.
func (d *dashboard) exprs() map[string]string {
	out := map[string]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				out[fmt.Sprintf("panel %q query %s", p.Title, tg.RefID)] = tg.Expr
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for i, a := range d.Annot.List {
		out[fmt.Sprintf("annotation %d", i)] = a.Expr
	}
	return out
}

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

func TestDashboardShape(t *testing.T) {
	d := load(t)
	if d.UID == "" || d.Title == "" {
		t.Fatal("dashboard needs a uid and a title")
	}
	ids := map[int]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if other, dup := ids[p.ID]; dup || p.ID == 0 {
				t.Errorf("panel %q: id %d missing or already used by %q", p.Title, p.ID, other)
			}
			ids[p.ID] = p.Title
			if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.H <= 0 {
				t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, p.GridPos)
			}
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	// The issue asks for these subjects.
	all := strings.Join(func() []string {
		var s []string
		for _, e := range d.exprs() {
			s = append(s, e)
		}
		return s
	}(), "\n")
	for _, m := range []string{"cgwd_tunnel_up", "cgwd_bgp_session_up", "cgwd_path_active", "cgwd_failovers_total",
		"cgwd_probe_rtt_seconds_bucket", "cgwd_probe_loss_ratio", "cgwd_tunnel_rx_bytes_total"} {
		if !strings.Contains(all, m) {
			t.Errorf("the dashboard does not show %s", m)
		}
	}
}

func TestDashboardUsesDocumentedMetrics(t *testing.T) {
	documented := documentedMetrics(t)
	for where, e := range load(t).exprs() {
		for _, m := range regexp.MustCompile(`\bcgwd_[a-z0-9_]+`).FindAllString(e, -1) {
			if !isDocumented(documented, m) {
				t.Errorf("%s uses %s, which docs/operations.md does not document", where, m)
			}
		}
	}
}

// Every query, with Grafana's variables filled in, must be valid PromQL:
// promtool checks them as recording rules.
func TestDashboardQueriesParse(t *testing.T) {
	if _, err := exec.LookPath("promtool"); err != nil {
		t.Skip("promtool not installed (Debian package prometheus); skipping")
	}
	r := strings.NewReplacer("$__rate_interval", "5m", "$instance", ".*", "$vpn", ".*")
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	i := 0
	for where, e := range load(t).exprs() {
		i++
		q, _ := json.Marshal(r.Replace(e))
		fmt.Fprintf(&rules, "      - record: dashboard:q%d  # %s\n        expr: %s\n", i, strings.ReplaceAll(where, "\n", " "), q)
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("promtool", "check", "rules", path).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules on the dashboard's queries: %v\n%s\n%s", err, out, rules.String())
	}
}
