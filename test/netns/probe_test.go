package netns

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/test/netns/labkit"
)

// TestProbeLab checks tunnels by ICMP echo instead of BFD, as on a real AWS
// VPN (which has no BFD): a silently dropping tunnel is detected by lost
// probes and traffic moves to the other tunnel.
func TestProbeLab(t *testing.T) {
	labkit.Require(t)
	labkit.Up(t)
	// BIRD runs no BFD inside the tunnels here, like AWS.
	b, err := os.ReadFile(labkit.AWSBirdConf)
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.Replace(string(b), "local 169.254.10.1;\n\tbfd on;", "local 169.254.10.1;", 1)
	conf = strings.Replace(conf, "local 169.254.11.1;\n\tbfd on;", "local 169.254.11.1;", 1)
	if err := os.WriteFile(labkit.AWSBirdConf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	labkit.AWSBird.C(t, "configure")
	const probes = "bfd: {enabled: false}\n        probe: {interval: 200ms, loss_threshold: 3, recovery: 3}"
	labkit.StartRouting(t, labkit.ReplaceN("bfd: {enabled: true, interval: 300ms, multiplier: 3}", probes, 2)) // both tunnels

	defer labkit.CutDX(t)()
	labkit.WaitDev(t, 10*time.Second, labkit.T1)

	drop := labkit.NewInputFilter(t, labkit.AWS, "cgwdtest_probe")
	defer drop.Delete()
	rep := labkit.Stream(t, func() { drop.DropUDP(51820) })
	t.Logf("tunnel 1 silent drop, probes 200 ms x 3: %s", rep)
	// Detection is 3 lost probes: up to 4 intervals after the drop, then the group replace.
	if limit := 4*200*time.Millisecond + 100*time.Millisecond; rep.LongestGap > limit {
		t.Errorf("longest gap %v, want under %v", rep.LongestGap, limit)
	}
	if dev := labkit.RouteDev(); dev != labkit.T2 {
		t.Errorf("traffic via %s, want cgw-t2", dev)
	}
	for _, p := range labkit.Status(t).Paths {
		if p.Name == labkit.T1 && (p.Usable || !strings.HasPrefix(p.Health, "probe down")) {
			t.Errorf("cgw-t1: usable=%v health=%q, want unusable, probe down", p.Usable, p.Health)
		}
	}
	m := labkit.Scrape(t)
	if v, ok := m.Value(`cgwd_probe_rtt_seconds_count{path="cgw-t2",vpn="vpn1"}`); !ok || v < 10 {
		t.Errorf("cgw-t2 probe RTT samples = %v (found %v), want >= 10", v, ok)
	}
	if v, ok := m.Value(`cgwd_probe_loss_ratio{path="cgw-t1",vpn="vpn1"}`); !ok || v <= 0 {
		t.Errorf("cgw-t1 probe loss ratio = %v (found %v), want > 0", v, ok)
	}
	if v, ok := m.Value(`cgwd_failovers_total{from="cgw-t1",reason="probe-down",to="cgw-t2"}`); !ok || v != 1 {
		t.Errorf("failover cgw-t1 -> cgw-t2 by probes = %v (found %v), want 1", v, ok)
	}
}
