package main

import (
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/bgp"
	"github.com/cgwd/cgwd/pkg/control"
)

// TestStatusNamesMD5Problem: a session kept down by TCP MD5 says so under
// the BGP table.
func TestStatusNamesMD5Problem(t *testing.T) {
	sock := serveStatus(t, control.Status{Version: "test", Started: time.Now(), BGP: []control.PeerStatus{
		{PeerStatus: bgp.PeerStatus{Name: "dx1", Address: "169.254.255.1", PeerASN: 64512, State: "active",
			MD5: "bad signature from the peer: its password differs from cgwd's (kernel TcpExtTCPMD5Failure +3)"}},
		{PeerStatus: bgp.PeerStatus{Name: "cgw-t1", Address: "169.254.10.1", PeerASN: 64512, State: "established", Up: true}},
	}})
	code, out, errOut := runCLI("status", "-s", sock, "bgp")
	if code != exitOK {
		t.Fatalf("status: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "dx1: md5: bad signature from the peer") {
		t.Errorf("status does not name the md5 problem:\n%s", out)
	}
	if strings.Contains(out, "cgw-t1: md5") {
		t.Errorf("status names a problem for a session that has none:\n%s", out)
	}
}
