package netns

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/test/netns/labkit"
)

// sysctls reads settings of lab-cgw by their sysctl(8) names.
func sysctls(t *testing.T, names ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range names {
		v, err := labkit.InNS(labkit.CGW, "sysctl", "-n", n)
		if err != nil {
			t.Fatalf("sysctl %s: %v: %s", n, err, v)
		}
		out[n] = strings.TrimSpace(v)
	}
	return out
}

// differs names the first setting of want that lab-cgw does not have.
func differs(t *testing.T, want map[string]string) error {
	var names []string
	for n := range want {
		names = append(names, n)
	}
	got := sysctls(t, names...)
	for n, v := range want {
		if got[n] != v {
			return fmt.Errorf("%s = %s, want %s", n, got[n], v)
		}
	}
	return nil
}

// On a box that forwards nothing and filters reverse paths strictly, cgwd
// turns forwarding on and rp_filter loose on its tunnel and DX netdevs while
// it runs (traffic flows), and puts back what it changed when it stops.
func TestForwardingManagedLab(t *testing.T) {
	labkit.Require(t)
	labkit.Up(t)
	labkit.LogOnFailure(t)
	// lab.sh turned forwarding on in lab-cgw: a fresh box has it off.
	strict := []string{"net.ipv4.ip_forward=0", "net.ipv4.conf.all.rp_filter=1", "net.ipv4.conf.default.rp_filter=1",
		"net.ipv4.conf." + labkit.DX + ".rp_filter=1"}
	if out, err := labkit.InNS(labkit.CGW, append([]string{"sysctl", "-qw"}, strict...)...); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if out, err := labkit.Ping(labkit.OnPrem, labkit.VPCHost, 1); err == nil {
		t.Fatalf("lab-onprem reaches lab-vpc with forwarding off and no cgwd:\n%s", out)
	}

	labkit.StartRouting(t)
	running := map[string]string{
		"net.ipv4.ip_forward":                       "1",
		"net.ipv4.conf." + labkit.DX + ".rp_filter": "2",
		"net.ipv4.conf." + labkit.T1 + ".rp_filter": "2",
		"net.ipv4.conf." + labkit.T2 + ".rp_filter": "2",
		"net.ipv4.conf.all.rp_filter":               "1", // the netdevs' 2 wins (the higher counts)
	}
	labkit.Eventually(t, 15*time.Second, "forwarding on and rp_filter loose in lab-cgw", func() error { return differs(t, running) })
	labkit.PingVPC(t)

	labkit.StopCgwd(t)
	stopped := map[string]string{"net.ipv4.ip_forward": "0", "net.ipv4.conf." + labkit.DX + ".rp_filter": "1", "net.ipv4.conf.all.rp_filter": "1"}
	if err := differs(t, stopped); err != nil {
		t.Errorf("after stop: %v", err)
	}
}
