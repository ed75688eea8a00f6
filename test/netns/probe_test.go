package netns

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestProbeLab checks tunnels by ICMP echo instead of BFD, as on a real AWS
// VPN (which has no BFD): a silently dropping tunnel is detected by lost
// probes and traffic moves to the other tunnel.
func TestProbeLab(t *testing.T) {
	requireLab(t)
	lab(t, "up")
	t.Cleanup(func() { lab(t, "down") })
	// BIRD runs no BFD inside the tunnels here, like AWS.
	b, err := os.ReadFile(labState + "/bird-aws.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.Replace(string(b), "local 169.254.10.1;\n\tbfd on;", "local 169.254.10.1;", 1)
	conf = strings.Replace(conf, "local 169.254.11.1;\n\tbfd on;", "local 169.254.11.1;", 1)
	if err := os.WriteFile(labState+"/bird-aws.conf", []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	birdc(t, "configure")
	c, err := os.ReadFile(labState + "/cgwd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const probes = "bfd: {enabled: false}\n        probe: {interval: 200ms, loss_threshold: 3, recovery: 3}"
	cfg := strings.ReplaceAll(string(c), "bfd: {enabled: true, interval: 300ms, multiplier: 3}", probes)
	if strings.Count(cfg, "probe: {") != 2 {
		t.Fatalf("config variant: want probes on both tunnels:\n%s", cfg)
	}
	if err := os.WriteFile(labState+"/cgwd.yaml", []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	lab(t, "start-cgwd")
	lab(t, "wait-bgp")
	waitDev(t, 30*time.Second, "dx0")

	restore1, restore2 := dropAll(t, "lab-cgw", "dx0"), dropAll(t, "lab-aws", "dx0")
	defer restore1()
	defer restore2()
	waitDev(t, 10*time.Second, "cgw-t1")

	nft(t, "lab-aws", "add", "table", "inet", "cgwdtest_probe")
	nft(t, "lab-aws", "add", "chain", "inet", "cgwdtest_probe", "in", "{ type filter hook input priority -10; }")
	defer nft(t, "lab-aws", "delete", "table", "inet", "cgwdtest_probe")
	rep := stream(t, func() {
		nft(t, "lab-aws", "add", "rule", "inet", "cgwdtest_probe", "in", "udp", "dport", "51820", "drop")
	})
	t.Logf("tunnel 1 silent drop, probes 200 ms x 3: %s", rep)
	// Detection is 3 lost probes: up to 4 intervals after the drop, then the group replace.
	if limit := 4*200*time.Millisecond + 100*time.Millisecond; rep.LongestGap > limit {
		t.Errorf("longest gap %v, want under %v", rep.LongestGap, limit)
	}
	if dev := routeDev(t); dev != "cgw-t2" {
		t.Errorf("traffic via %s, want cgw-t2", dev)
	}
	for _, p := range status(t).Paths {
		if p.Name == "cgw-t1" && (p.Usable || !strings.HasPrefix(p.Health, "probe down")) {
			t.Errorf("cgw-t1: usable=%v health=%q, want unusable, probe down", p.Usable, p.Health)
		}
	}
	body, err := httpGetInNS("lab-cgw", "http://127.0.0.1:9477/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := metricValue(body, `cgwd_probe_rtt_seconds_count{path="cgw-t2",vpn="vpn1"}`); !ok || v < 10 {
		t.Errorf("cgw-t2 probe RTT samples = %v (found %v), want >= 10", v, ok)
	}
	if v, ok := metricValue(body, `cgwd_probe_loss_ratio{path="cgw-t1",vpn="vpn1"}`); !ok || v <= 0 {
		t.Errorf("cgw-t1 probe loss ratio = %v (found %v), want > 0", v, ok)
	}
	if v, ok := metricValue(body, `cgwd_failovers_total{from="cgw-t1",reason="probe-down",to="cgw-t2"}`); !ok || v != 1 {
		t.Errorf("failover cgw-t1 -> cgw-t2 by probes = %v (found %v), want 1", v, ok)
	}
}
