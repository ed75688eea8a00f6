package config

import (
	"strings"
	"testing"
	"time"
)

// Graceful restart is on for every session but Direct Connect with BFD,
// where AWS advises against running both; a session's own setting wins,
// and bgp.graceful_restart.enabled: false turns it off everywhere.
func TestGracefulRestartDefaults(t *testing.T) {
	on := func(c *Config) (t1, dx bool) {
		d := &c.DirectConnect[0]
		return c.GracefulRestartOn(&c.VPN[0].Tunnels[0].BGP, false, c.VPN[0].Tunnels[0].BFD.On()),
			c.GracefulRestartOn(&d.BGP, true, d.BFD.On())
	}
	for _, tc := range []struct {
		name, from, to string
		t1, dx         bool
	}{
		{"defaults (DX has BFD)", "asn: 65000\n", "asn: 65000\nbgp: {}\n", true, false},
		{"DX without BFD", "    peer: 169.254.255.1\n", "    peer: 169.254.255.1\n    bfd: {enabled: false}\n", true, true},
		{"DX opts in", "    peer: 169.254.255.1\n", "    peer: 169.254.255.1\n    bgp: {graceful_restart: true}\n", true, true},
		{"tunnel opts out", "        inside: 169.254.10.0/30\n", "        inside: 169.254.10.0/30\n        bgp: {graceful_restart: false}\n", false, false},
		{"off globally", "asn: 65000\n", "asn: 65000\nbgp: {graceful_restart: {enabled: false}}\n", false, false},
	} {
		c, err := parseEdited(t, tc.from, tc.to)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if t1, dx := on(c); t1 != tc.t1 || dx != tc.dx {
			t.Errorf("%s: tunnel %v dx %v, want %v %v", tc.name, t1, dx, tc.t1, tc.dx)
		}
		if got := c.BGP.GracefulRestart.Time(); got != DefaultGRRestartTime {
			t.Errorf("%s: restart time %v, want %v", tc.name, got, DefaultGRRestartTime)
		}
	}
}

func TestGracefulRestartTime(t *testing.T) {
	c, err := parseEdited(t, "asn: 65000\n", "asn: 65000\nbgp: {graceful_restart: {restart_time: 30s}}\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.BGP.GracefulRestart.Time(); got != 30*time.Second {
		t.Errorf("restart time %v, want 30s", got)
	}
	for _, bad := range []string{"0.5s", "4096s", "1500ms"} {
		c, err := parseEdited(t, "asn: 65000\n", "asn: 65000\nbgp: {graceful_restart: {restart_time: "+bad+"}}\n")
		if err != nil {
			t.Fatal(err)
		}
		if probs := c.Validate(); probs == nil || !strings.Contains(probs.Error(), "bgp.graceful_restart.restart_time") {
			t.Errorf("restart_time %s: %v, want a problem naming the field", bad, probs)
		}
	}
}
