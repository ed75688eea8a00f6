package main

import (
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/control"
	"github.com/cgwd/cgwd/pkg/failover"
)

// A static connection's path shows its tunnel in the session column.
func TestStatusStaticPath(t *testing.T) {
	st := control.Status{Version: "test", Started: time.Now(), Paths: []failover.PathStatus{
		{Name: "cgw-t1", Kind: "tunnel", Health: "probe up rtt 1ms loss 0%", Routing: "static", TunnelUp: true, Usable: true, Active: true},
		{Name: "cgw-t2", Kind: "tunnel", Health: "tunnel-only", Routing: "static"},
	}}
	code, out, errOut := runCLI("status", "-s", serveStatus(t, st), "paths")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(out, "\n")
	if len(lines) < 3 || !strings.Contains(strings.Join(strings.Fields(lines[1]), " "), "0% static, tunnel up yes yes") ||
		!strings.Contains(strings.Join(strings.Fields(lines[2]), " "), "tunnel-only static, tunnel down no no") {
		t.Errorf("status paths of a static connection:\n%s", out)
	}
}
