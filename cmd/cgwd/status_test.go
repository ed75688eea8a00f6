package main

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/bgp"
	"github.com/cgwd/cgwd/pkg/control"
	"github.com/cgwd/cgwd/pkg/failover"
	"github.com/cgwd/cgwd/pkg/tunnel"
)

// serveStatus answers `cgwd status` on a socket in a temporary directory
// with a fixed status; it returns the socket's path.
func serveStatus(t *testing.T, st control.Status) string {
	t.Helper()
	return serveControl(t, st, nil)
}

// serveControl serves st and, if a is not nil, a's actions on a socket in
// a temporary directory; it returns the socket's path.
func serveControl(t *testing.T, st control.Status, a control.Actions) string {
	t.Helper()
	return listenControl(t, func() control.Status { return st }, func(srv *control.Server) {
		if a != nil {
			srv.SetActions(a)
		}
	})
}

// listenControl serves a control socket with status, set up by setup, until
// the test ends, and returns its path.
func listenControl(t *testing.T, status control.StatusFunc, setup func(*control.Server)) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "cgwd.sock")
	srv, err := control.Listen(sock, status)
	if err != nil {
		t.Fatal(err)
	}
	setup(srv)
	ctx, cancel := context.WithCancel(context.Background())
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-srv.Done() })
	return sock
}

func ipsecStatus() control.Status {
	return control.Status{Version: "test", Started: time.Now(), Tunnels: []tunnel.Status{{
		Name: "t1", Kind: "ipsec", State: tunnel.StateUp,
		IPsec: &tunnel.IPsecStatus{IKEState: "established",
			ESPDropped: map[string]uint64{"replay": 2, "auth": 5, "ts": 0},
			IKEDropped: map[string]uint64{"cookie": 0}},
	}}}
}

// TestStatusShowsESPDropsAsPairs: ESP drops are "reason=count", sorted and
// non-zero only, not Go's map printing.
func TestStatusShowsESPDropsAsPairs(t *testing.T) {
	sock := serveStatus(t, ipsecStatus())
	code, out, errOut := runCLI("status", "-s", sock)
	if code != exitOK {
		t.Fatalf("status: exit %d: %s", code, errOut)
	}
	if strings.Contains(out, "map[") || strings.Contains(out, "ts=") || strings.Contains(out, "IKE dropped") {
		t.Errorf("status prints a Go map or zero counters:\n%s", out)
	}
	if !strings.Contains(out, "t1  ESP dropped: auth=5 replay=2\n") {
		t.Errorf("status lacks the sorted ESP drops:\n%s", out)
	}
}

// TestStatusJSONNeverHandshakeIsNull: a tunnel that never completed a
// handshake says null, not 0001-01-01T00:00:00Z.
func TestStatusJSONNeverHandshakeIsNull(t *testing.T) {
	sock := serveStatus(t, ipsecStatus())
	code, out, errOut := runCLI("status", "-s", sock, "--json")
	if code != exitOK {
		t.Fatalf("status --json: exit %d: %s", code, errOut)
	}
	if strings.Contains(out, "0001-01-01") || !strings.Contains(out, `"last_handshake": null`) {
		t.Errorf("status --json:\n%s", out)
	}
}

// fullStatus has two tunnels (one ipsec), their BGP sessions and paths.
func fullStatus(now time.Time) control.Status {
	st := ipsecStatus()
	st.Started = now.Add(-50 * time.Hour)
	st.Tunnels[0].IPsec.IKESPIs = "1122334455667788/99aabbccddeeff00"
	st.Tunnels[0].IPsec.IKESuite = "aes256gcm16-prfsha384-ecp384"
	st.Tunnels[0].IPsec.IKEVersion = "ikev1"
	st.Tunnels[0].IPsec.IKEVersionSwitch = "ikev2 -> ikev1: the peer answered IKE_SA_INIT with NO_PROPOSAL_CHOSEN"
	st.Tunnels[0].IPsec.IKEEstablished = now.Add(-(2*time.Hour + 5*time.Minute))
	st.Tunnels[0].IPsec.IKERekeyDue = now.Add(187 * time.Second)
	st.Tunnels[0].IPsec.ChildSPIs = "c1000001/c2000002"
	st.Tunnels = append(st.Tunnels, tunnel.Status{Name: "t2", Kind: "wireguard", State: tunnel.StateDown})
	st.VPN = []control.VPNStatus{{Name: "vpn1", Tunnels: []string{"t1", "t2"}}}
	st.BGP = []control.PeerStatus{
		{PeerStatus: bgp.PeerStatus{Name: "t1", Address: "169.254.10.1", PeerASN: 64512, State: "established", Up: true, Since: now.Add(-45 * time.Second)}, Installed: 3},
		{PeerStatus: bgp.PeerStatus{Name: "t2", Address: "169.254.11.1", PeerASN: 64512, State: "active"}},
	}
	st.Paths = []failover.PathStatus{
		{Name: "t1", Kind: "tunnel", Health: "bgp-only", BGPUp: true, Usable: true, Active: true, Since: now.Add(-45 * time.Second)},
		{Name: "t2", Kind: "tunnel", Health: "bgp-only", AdminDown: true},
	}
	return st
}

func TestStatusSections(t *testing.T) {
	sock := serveStatus(t, fullStatus(time.Now()))
	status := func(args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(append([]string{"status", "-s", sock}, args...)...)
		if code != exitOK {
			t.Fatalf("status %q: exit %d: %s", args, code, errOut)
		}
		return out
	}

	out := status("ipsec")
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], "TUNNEL  SA     STATE        SPIS") ||
		!strings.HasPrefix(lines[1], "t1      IKEv1  established  1122334455667788/99aabbccddeeff00  aes256gcm16-prfsha384-ecp384  2h05m  3m07s") ||
		!strings.HasPrefix(lines[2], "t1      Child  installed    c1000001/c2000002") ||
		!strings.Contains(out, "t1  last IKE version switch: ikev2 -> ikev1: the peer answered IKE_SA_INIT with NO_PROPOSAL_CHOSEN") ||
		strings.Contains(out, "t2") || strings.Contains(out, "map[") || strings.Contains(out, "BGP PEER") {
		t.Errorf("status ipsec is not one table of t1's SAs:\n%s", out)
	}

	out = status("tunnels", "t2")
	if !strings.Contains(out, "vpn1  t2      wireguard  down") || strings.Contains(out, "t1") {
		t.Errorf("status tunnels t2:\n%s", out)
	}
	out = status("bgp")
	if !strings.Contains(out, "t1        169.254.10.1  64512  established  45s") || !strings.Contains(out, "t2        169.254.11.1  64512  active       -") {
		t.Errorf("status bgp:\n%s", out)
	}
	if out = status("paths", "t2"); !strings.Contains(out, "t2    tunnel  bgp-only  down  admin-down  no") {
		t.Errorf("status paths t2 (taken out of service):\n%s", out)
	}
	out = status("paths", "t1")
	if !strings.Contains(out, "t1    tunnel  bgp-only  up   yes     yes     45s ago") || strings.Contains(out, "t2") {
		t.Errorf("status paths t1:\n%s", out)
	}
	if out = status(); !strings.HasPrefix(out, "cgwd test, up 2d02h\n") || !strings.Contains(out, "BGP PEER") || !strings.Contains(out, "t1      Child") {
		t.Errorf("status:\n%s", out)
	}

	out = status("paths", "t2", "--json")
	var paths []map[string]any
	if err := json.Unmarshal([]byte(out), &paths); err != nil || len(paths) != 1 || paths[0]["name"] != "t2" {
		t.Errorf("status paths t2 --json is not t2's path alone (%v):\n%s", err, out)
	}
	if strings.Contains(out, "0001-01-01") || !strings.Contains(out, `"since": null`) {
		t.Errorf("status paths --json shows a zero time:\n%s", out)
	}
}

func TestStatusUnknownNames(t *testing.T) {
	sock := serveStatus(t, fullStatus(time.Now()))
	for _, c := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"bgp", "nope"}, exitFailure, `no BGP peer named "nope" (the daemon has: t1, t2)`},
		{[]string{"ipsec", "t2"}, exitFailure, `no ipsec tunnel named "t2" (the daemon has: t1)`},
		{[]string{"paths", "dx1"}, exitFailure, `no path named "dx1" (the daemon has: t1, t2)`},
		{[]string{"routes"}, exitUsage, `unknown section "routes" (one of tunnels, ipsec, bgp, paths)`},
		{[]string{"--watch", "1ms"}, exitUsage, "at least 100ms"},
	} {
		code, out, errOut := runCLI(append([]string{"status", "-s", sock}, c.args...)...)
		if code != c.code || !strings.Contains(errOut, c.err) || out != "" {
			t.Errorf("status %q: exit %d, want %d with %q\n%s%s", c.args, code, c.code, c.err, out, errOut)
		}
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second:                    "0s",
		0:                               "0s",
		1400 * time.Millisecond:         "1s",
		59 * time.Second:                "59s",
		187 * time.Second:               "3m07s",
		2*time.Hour + 5*time.Minute:     "2h05m",
		50*time.Hour + 59*time.Minute:   "2d02h",
		400 * 24 * time.Hour:            "400d00h",
		59*time.Minute + 59*time.Second: "59m59s",
	} {
		if got := duration(d); got != want {
			t.Errorf("duration(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestWatchRedraws: --watch draws again and again until its context ends,
// and stops at the first failed draw with its error.
func TestWatchRedraws(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out strings.Builder
	draws := 0
	err := watchLoop(ctx, time.Millisecond, &out, func(context.Context) error {
		draws++
		if draws == 3 {
			cancel()
		}
		return nil
	})
	if err != nil || draws != 3 || strings.Count(out.String(), "--- ") != 3 {
		t.Errorf("watch: err %v, %d draws, output:\n%s", err, draws, out.String())
	}

	gone := errors.New("daemon gone")
	draws = 0
	err = watchLoop(context.Background(), time.Millisecond, &out, func(context.Context) error {
		draws++
		if draws == 2 {
			return gone
		}
		return nil
	})
	if !errors.Is(err, gone) || draws != 2 {
		t.Errorf("watch with a failing draw: err %v after %d draws", err, draws)
	}
}
