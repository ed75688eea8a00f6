package labkit

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Metrics is the text of one scrape of cgwd's Prometheus metrics.
type Metrics string

// Scrape fetches cgwd's metrics from inside lab-cgw.
func Scrape(t testing.TB) Metrics {
	t.Helper()
	body, err := HTTPGet(CGW, MetricsURL)
	if err != nil {
		t.Fatal(err)
	}
	return Metrics(body)
}

// CheckUp fails the test unless both WireGuard tunnels and all three BGP
// sessions are up in the scrape (cgwd_tunnel_up, cgwd_bgp_session_up).
func (m Metrics) CheckUp(t testing.TB) {
	t.Helper()
	for _, tn := range []string{T1, T2} {
		labels := `{kind="wireguard",tunnel="` + tn + `",vpn="` + VPNName + `"}`
		if v, ok := m.Value("cgwd_tunnel_up" + labels); !ok || v != 1 {
			t.Errorf("cgwd_tunnel_up%s = %v (found %v)", labels, v, ok)
		}
	}
	for peer, addr := range map[string]string{DXPath: DXPeer, T1: T1Peer, T2: T2Peer} {
		labels := `{address="` + addr + `",peer="` + peer + `"}`
		if v, ok := m.Value("cgwd_bgp_session_up" + labels); !ok || v != 1 {
			t.Errorf("cgwd_bgp_session_up%s = %v (found %v)", labels, v, ok)
		}
	}
}

// Lines are the sample lines that start with prefix.
func (m Metrics) Lines(prefix string) []string {
	var out []string
	for _, line := range strings.Split(string(m), "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return out
}

// Value is the value of the first sample whose name and labels start with prefix.
func (m Metrics) Value(prefix string) (float64, bool) {
	for _, line := range m.Lines(prefix) {
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		return v, err == nil
	}
	return 0, false
}

// Sum adds up the values of every sample whose name and labels start with prefix.
func (m Metrics) Sum(prefix string) float64 {
	var sum float64
	for _, line := range m.Lines(prefix) {
		if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
			sum += v
		}
	}
	return sum
}

var sampleRE = regexp.MustCompile(`^([a-z_]+)\{([^}]*)\} (\S+)$`)

// By sums the samples of metric name whose label where has value is, by
// their label key.
func (m Metrics) By(name, key, where, is string) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(string(m), "\n") {
		s := sampleRE.FindStringSubmatch(line)
		if s == nil || s[1] != name {
			continue
		}
		labels := map[string]string{}
		for _, kv := range strings.Split(s[2], ",") {
			k, v, _ := strings.Cut(kv, "=")
			labels[k] = strings.Trim(v, `"`)
		}
		if labels[where] != is {
			continue
		}
		if v, err := strconv.ParseFloat(s[3], 64); err == nil {
			out[labels[key]] += v
		}
	}
	return out
}
