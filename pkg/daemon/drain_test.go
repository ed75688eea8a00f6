package daemon

import (
	"log/slog"
	"math"
	"strings"
	"testing"

	"github.com/cgwd/cgwd/pkg/bgp"
	"github.com/cgwd/cgwd/pkg/config"
	"github.com/cgwd/cgwd/pkg/drain"
)

func parseConfig(t *testing.T, yaml string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Validate(); p != nil {
		t.Fatal(p)
	}
	return c
}

// A drained box prepends drain.prepend more on every session, on top of
// each session's own prepends; in service it sends what the config says.
// The config the daemon keeps is never changed.
func TestWithDrainPrependsEverySession(t *testing.T) {
	cfg := parseConfig(t, firewallYAML+"drain: {prepend: 7}\n")
	bc, _, _, err := routingConfig(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{cfg: cfg, drain: drain.NewController()}
	want := map[string]int{"dx1": 0, "cgw-t1": 1, "cgw-t2": 2}
	for _, p := range d.withDrain(bc, cfg).Peers {
		if p.Prepend != want[p.Name] {
			t.Errorf("in service: %s prepends %d, want %d", p.Name, p.Prepend, want[p.Name])
		}
	}
	d.drain.SetDrained(nil)
	got := d.withDrain(bc, cfg)
	for _, p := range got.Peers {
		if p.Prepend != want[p.Name]+7 {
			t.Errorf("drained: %s prepends %d, want %d", p.Name, p.Prepend, want[p.Name]+7)
		}
	}
	// A reload applies the new file's prepend count to a drained box.
	reloaded := *cfg
	reloaded.Drain.Prepend = 2
	if p := d.withDrain(bc, &reloaded).Peers[1]; p.Prepend != want[p.Name]+2 {
		t.Errorf("drained under a reloaded drain.prepend 2: %s prepends %d, want %d", p.Name, p.Prepend, want[p.Name]+2)
	}
	if bc.Peers[0].Prepend != want[bc.Peers[0].Name] {
		t.Error("withDrain changed the daemon's own BGP config")
	}
	d.drain.Undrain()
	if d.withDrain(bc, cfg).Peers[1].Prepend != 1 {
		t.Error("undrained box still prepends")
	}
}

// The drain watches every DX link and tunnel by its netdev and allows each
// the packets cgwd itself sends over it: BFD, or probes without BFD, and
// BGP keepalives with their acknowledgements.
func TestDrainPaths(t *testing.T) {
	ps := drainPaths(parseConfig(t, firewallYAML))
	type want struct {
		kind, link string
		own        float64
	}
	wants := map[string]want{
		"dx1":    {"dx", "dx0", 2.0/30 + 1/0.3},        // DX keepalive 30s, BFD 300ms by default
		"cgw-t1": {"tunnel", "cgw-t1", 2.0/10 + 1/0.3}, // VPN keepalive 10s, BFD on (300ms)
		"cgw-t2": {"tunnel", "cgw-t2", 2.0/10 + 1},     // no BFD: probes every second
	}
	if len(ps) != len(wants) {
		t.Fatalf("paths: %+v", ps)
	}
	for _, p := range ps {
		w := wants[p.Name]
		if p.Kind != w.kind || p.Link != w.link || math.Abs(p.OwnPPS-w.own) > 1e-9 {
			t.Errorf("%s: %+v, want %+v", p.Name, p, w)
		}
	}
	s := drainSettings(parseConfig(t, firewallYAML).Drain)
	if s.QuietPeriod != config.DefaultDrainQuietPeriod || s.QuietPPS != config.DefaultDrainQuietPPS || s.Timeout != config.DefaultDrainTimeout {
		t.Errorf("default settings: %+v", s)
	}
}

const drainLANYAML = `lan:
  interface: lan0
  peers:
    - {name: core, address: 10.10.100.254, peer_asn: 65010, local_address: 10.10.100.1}
  import: {allow: [10.10.0.0/16]}
ha: {role: secondary}
`

// Toward the LAN a drained box sends the worst MED and local preference
// (drain.lan: worst) or nothing (withdraw); a LAN session gets no
// prepends; a standby's own prepends and MED stay under the drain's.
func TestWithDrainLAN(t *testing.T) {
	for _, mode := range []string{"worst", "withdraw"} {
		cfg := parseConfig(t, firewallYAML+drainLANYAML+"drain: {lan: "+mode+"}\n")
		bc, _, _, err := routingConfig(cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		d := &Daemon{cfg: cfg, drain: drain.NewController()}
		if got := d.withDrain(bc, cfg); got.LAN.MED.VPN != 1100 || got.LAN.Withdraw {
			t.Fatalf("in service, a standby: LAN %+v", got.LAN)
		}
		d.drain.SetDrained(nil)
		got := d.withDrain(bc, cfg)
		want := map[string]int{"dx1": 3 + 5, "cgw-t1": 4 + 5, "cgw-t2": 5 + 5, "core": 0}
		for _, p := range got.Peers {
			if p.Prepend != want[p.Name] {
				t.Errorf("%s: drained %s prepends %d, want %d", mode, p.Name, p.Prepend, want[p.Name])
			}
		}
		switch mode {
		case "worst":
			if got.LAN.Withdraw || got.LAN.MED != (bgp.KindValues{DX: 4294967294, VPN: 4294967294}) || got.LAN.LocalPref != (bgp.KindValues{DX: 1, VPN: 1}) {
				t.Errorf("worst: LAN %+v", got.LAN)
			}
		case "withdraw":
			if !got.LAN.Withdraw || got.LAN.MED != bc.LAN.MED {
				t.Errorf("withdraw: LAN %+v", got.LAN)
			}
		}
		if bc.LAN.Withdraw || bc.LAN.MED.DX != 1000 {
			t.Error("withDrain changed the daemon's own LAN config")
		}
		ch := strings.Join(drainChanges(cfg, bc), "; ")
		if !strings.Contains(ch, "AWS: 5 more prepends on every session (dx1, cgw-t1, cgw-t2); LAN: ") || !strings.Contains(ch, "(core)") {
			t.Errorf("%s: changes %q", mode, ch)
		}
	}
}
