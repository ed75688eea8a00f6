package daemon

import (
	"log/slog"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/bgp"
	"github.com/cgwd/cgwd/pkg/config"
)

// Every session gets graceful restart with the configured restart time,
// but the Direct Connect session with BFD, where AWS advises against it.
func TestGracefulRestartMapped(t *testing.T) {
	c, err := config.Parse([]byte(firewallYAML))
	if err != nil {
		t.Fatal(err)
	}
	bc, _, _, err := routingConfig(c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	on := bgp.GracefulRestart{Enabled: true, RestartTime: 120 * time.Second}
	want := map[string]bgp.GracefulRestart{"cgw-t1": on, "cgw-t2": on, "dx1": {RestartTime: 120 * time.Second}}
	for _, p := range bc.Peers {
		if p.GracefulRestart != want[p.Name] {
			t.Errorf("%s: %+v, want %+v", p.Name, p.GracefulRestart, want[p.Name])
		}
	}
	if bc.Restarting {
		t.Error("a speaker is restarting before the FIB found any route")
	}
}
