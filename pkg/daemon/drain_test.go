package daemon

import (
	"log/slog"
	"math"
	"testing"

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
