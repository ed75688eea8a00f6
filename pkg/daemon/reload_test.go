package daemon

import (
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/cgwd/cgwd/pkg/config"
	"github.com/cgwd/cgwd/pkg/tunnel"
)

func loadExample(t *testing.T) *config.Config {
	t.Helper()
	c, err := config.ParseFile("../../deploy/examples/wireguard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDiffTunnelsMatchesByName(t *testing.T) {
	a := loadExample(t)
	if tc := diffTunnels(a, loadExample(t)); len(tc.added)+len(tc.changed)+len(tc.removed) != 0 {
		t.Fatalf("the same config: %+v", tc)
	}
	names := func(cs []tunnelConf) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.cfg.Name)
		}
		return out
	}
	t1, t2 := a.VPN[0].Tunnels[0].Name, a.VPN[0].Tunnels[1].Name

	// BGP, BFD and probe settings belong to routing: the tunnel stays.
	b := loadExample(t)
	b.VPN[0].Tunnels[0].BGP.HoldTime = config.Duration(24e9)
	b.VPN[0].Tunnels[1].Probe.LossThreshold = 7
	if tc := diffTunnels(a, b); len(tc.changed) != 0 {
		t.Errorf("a routing-only change re-creates %v", names(tc.changed))
	}

	b = loadExample(t)
	b.VPN[0].Tunnels[1].MTU = 1380
	if tc := diffTunnels(a, b); !slices.Equal(names(tc.changed), []string{t2}) || len(tc.added)+len(tc.removed) != 0 {
		t.Errorf("MTU change on %s: %+v", t2, tc)
	}

	b = loadExample(t)
	b.VPN[0].Tunnels[0].Name = "cgw-t9"
	tc := diffTunnels(a, b)
	if !slices.Equal(names(tc.added), []string{"cgw-t9"}) || !slices.Equal(tc.removed, []string{t1}) || len(tc.changed) != 0 {
		t.Errorf("renamed %s: %+v", t1, tc)
	}

	b = loadExample(t)
	b.VPN = nil
	if tc := diffTunnels(a, b); !slices.Equal(tc.removed, []string{t1, t2}) {
		t.Errorf("connection removed: %+v", tc)
	}
}

func TestRestartFieldsNamesOnlyWhatAReloadCannotApply(t *testing.T) {
	a := loadExample(t)
	b := loadExample(t)
	b.Prefixes = append(b.Prefixes, config.NewPrefix("10.99.0.0/16"))
	b.ASN++
	b.Failover.HoldDown = nil
	b.DirectConnect = nil
	off := false
	b.FailClosed = &off
	b.AWSPrefixes = []config.Prefix{config.NewPrefix("10.200.0.0/16")}
	if d := restartFields(a, b); len(d) != 0 {
		t.Errorf("reloadable changes refused: %v", d)
	}
	b.BGP.StaleTime *= 2
	b.ControlSocket = "/run/other.sock"
	b.Failover.NexthopCompatMode = !a.Failover.NexthopCompatMode
	got := strings.Join(restartFields(a, b), ",")
	if got != "control_socket,bgp.stale_time,failover.nexthop_compat_mode" {
		t.Errorf("restart fields %q", got)
	}
}

func TestRoutingConfigCarriesFailClosed(t *testing.T) {
	c := loadExample(t)
	c.AWSPrefixes = []config.Prefix{config.NewPrefix("10.200.0.0/16")}
	_, fc, _, err := routingConfig(c, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if !fc.FailClosed || len(fc.AWSPrefixes) != 1 || fc.AWSPrefixes[0].String() != "10.200.0.0/16" {
		t.Errorf("fib config: fail closed %v, aws prefixes %v; want on (the default), 10.200.0.0/16", fc.FailClosed, fc.AWSPrefixes)
	}
	off := false
	c.FailClosed = &off
	if _, fc, _, _ = routingConfig(c, slog.Default()); fc.FailClosed {
		t.Error("fail_closed: false not passed on")
	}
}

// closeCounter is a tunnel that only counts Close calls.
type closeCounter struct {
	tunnel.Tunnel
	closed int
}

func (c *closeCounter) Close() error { c.closed++; return nil }

// A reload whose second tunnel cannot be built (say, a bad key file) closes
// the first, which wipes its keys, instead of dropping it with them.
func TestBuildTunnelsClosesWhatItBuiltOnError(t *testing.T) {
	confs := []tunnelConf{{cfg: &config.Tunnel{Name: "cgw-t1"}}, {cfg: &config.Tunnel{Name: "cgw-t2"}}}
	first := &closeCounter{}
	_, err := buildTunnels(confs, func(c tunnelConf) (tunnel.Tunnel, error) {
		if c.cfg.Name == "cgw-t2" {
			return nil, errors.New("tunnel cgw-t2: private_key_file: missing")
		}
		return first, nil
	})
	if err == nil || first.closed != 1 {
		t.Fatalf("err %v, first tunnel closed %d times, want an error and 1", err, first.closed)
	}
	built, err := buildTunnels(confs[:1], func(tunnelConf) (tunnel.Tunnel, error) { return first, nil })
	if err != nil || len(built) != 1 || first.closed != 1 {
		t.Fatalf("success: built %v, err %v, closed %d", built, err, first.closed)
	}
}
