package netns

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/test/netns/labkit"
)

// reloadCase is a SIGHUP scenario: edit the config, reload, check, put the
// config back, reload again, check again.
type reloadCase struct {
	name    string
	before  func(*testing.T, *reloadScene) // before the edit
	edit    labkit.Edit
	want    string                         // the log line of the edit's reload
	applied func(*testing.T, *reloadScene) // with the edit in force
	// back runs once the config is restored and reloaded ("reload:
	// applied"); without it the config is restored and not reloaded.
	back func(*testing.T, *reloadScene)
}

// reloadScene is what a scenario's steps share: BIRD's session times and
// a ping, both from before the edit.
type reloadScene struct {
	since map[string]string
	ping  *labkit.PingRun
}

func (c reloadCase) run(t *testing.T) {
	labkit.LogOnFailure(t)
	s := &reloadScene{}
	if c.before != nil {
		c.before(t, s)
	}
	restore := labkit.EditConfig(t, c.edit)
	defer restore()
	labkit.Reload(t, c.want)
	c.applied(t, s)
	if c.back != nil {
		restore()
		labkit.Reload(t, "reload: applied")
		c.back(t, s)
	}
}

// settle is a before step: BIRD's settled session times, and a ping of
// pings packets (none if 0) from on-prem to the VPC.
func settle(pings int) func(*testing.T, *reloadScene) {
	return func(t *testing.T, s *reloadScene) {
		s.since = labkit.AWSBird.SinceSettled(t)
		if pings > 0 {
			s.ping = startPing(t, pings)
		}
	}
}

// kept fails the test if BIRD shows one of sessions (none: any) reset
// since the scene began; why names the change.
func (s *reloadScene) kept(t *testing.T, why string, sessions ...string) {
	t.Helper()
	now := labkit.AWSBird.Since(t)
	if len(sessions) == 0 && !labkit.SameSessions(now, s.since) {
		t.Errorf("%s reset a session: BIRD's protocol times %v, before %v", why, now, s.since)
	}
	for _, p := range sessions {
		if !labkit.SameSince(now[p], s.since[p]) {
			t.Errorf("%s reset %s: BIRD's protocol times %v, before %v", why, p, now, s.since)
		}
	}
}

// allTunnelsUp fails the test unless cgwd reports every tunnel up.
func allTunnelsUp(t *testing.T) {
	for _, tn := range labkit.Status(t).Tunnels {
		if tn.State != "up" {
			t.Errorf("%s is %s after a rejected reload", tn.Name, tn.State)
		}
	}
}

// startPing starts count pings from lab-onprem to lab-vpc, 10 ms apart.
func startPing(t *testing.T, count int) *labkit.PingRun {
	t.Helper()
	return labkit.StartPing(t, labkit.OnPrem, "-q", "-c", fmt.Sprint(count), "-i", "0.01", "-W", "1", labkit.VPCHost)
}

// tunnelStarts counts the log's "tunnel started" lines of tunnel.
func tunnelStarts(tunnel string) int {
	return strings.Count(labkit.Log(), `msg="tunnel started" vpn=vpn1 tunnel=`+tunnel)
}

// testReload runs the SIGHUP scenarios; cgwd must be running with both tunnels up.
func testReload(t *testing.T) {
	bird := labkit.AWSBird
	bird.WaitEstablished(t, 30*time.Second, true, labkit.BirdSessions...)
	labkit.WaitRoute(t, 30*time.Second, labkit.VPCNet, labkit.DXPeer, labkit.DX)
	t.Run("ReloadUnchangedLosesNoPacket", func(t *testing.T) {
		ping := startPing(t, 300)
		hs := map[string]time.Time{}
		for _, tn := range labkit.Status(t).Tunnels {
			hs[tn.Name] = tn.LastHandshake
		}
		time.Sleep(500 * time.Millisecond) // the reload lands mid-stream, not before it
		labkit.Reload(t, "reload: applied")
		if out, err := ping.Wait(); err != nil || !strings.Contains(out, " 0% packet loss") {
			t.Errorf("packets lost across the reload: %v\n%s", err, out)
		}
		for _, tn := range labkit.Status(t).Tunnels {
			if !tn.LastHandshake.Equal(hs[tn.Name]) {
				t.Errorf("%s re-handshook on an unchanged reload", tn.Name)
			}
		}
	})

	for _, c := range reloadCases {
		t.Run(c.name, c.run)
	}

	t.Run("ReloadChangedSessionIsReestablishedAlone", func(t *testing.T) {
		since := bird.SinceSettled(t)
		t2Starts := tunnelStarts(labkit.T2)
		// Tunnel 2's hold time: a BGP setting of its own, not of the tunnel.
		labkit.EditConfig(t, labkit.Replace("        bfd: {enabled: true, interval: 300ms, multiplier: 3}\ndirect_connect:",
			"        bfd: {enabled: true, interval: 300ms, multiplier: 3}\n        bgp: {hold_time: 24s, keepalive: 8s}\ndirect_connect:"))
		labkit.Reload(t, "reload: applied")
		labkit.Eventually(t, 30*time.Second, "aws_t2 re-established", func() error {
			now := bird.Since(t)
			if labkit.SameSince(now[labkit.BirdT2], since[labkit.BirdT2]) || !bird.Established(t, labkit.BirdT2) {
				return fmt.Errorf("aws_t2 since %s (before %s)", now[labkit.BirdT2], since[labkit.BirdT2])
			}
			return nil
		})
		now := bird.Since(t)
		for _, p := range []string{labkit.BirdT1, labkit.BirdDX} {
			if !labkit.SameSince(now[p], since[p]) {
				t.Errorf("%s was reset by a change to cgw-t2's session (since %s, before %s)", p, now[p], since[p])
			}
		}
		if out := bird.C(t, "show", "protocols", "all", labkit.BirdT2); !strings.Contains(out, "Hold timer") || !strings.Contains(out, "/24") {
			t.Errorf("aws_t2 did not negotiate the new hold time:\n%s", out)
		}
		if tunnelStarts(labkit.T2) != t2Starts {
			t.Error("a BGP-only change re-created the tunnel")
		}
		labkit.Eventually(t, 10*time.Second, "cgw-t2 usable again after its hold-down", func() error {
			for _, p := range labkit.Status(t).Paths {
				if p.Name == labkit.T2 && !p.Usable {
					return fmt.Errorf("not usable")
				}
			}
			return nil
		})
	})

	t.Run("ReloadChangedTunnelIsReestablishedAlone", func(t *testing.T) {
		t1Starts := tunnelStarts(labkit.T1)
		// Tunnel 2's keepalive is its last "persistent_keepalive: 5s" in the file.
		labkit.EditConfig(t, labkit.ReplaceLast("persistent_keepalive: 5s", "persistent_keepalive: 7s"))
		labkit.Reload(t, "re-establishing\" tunnel=cgw-t2")
		labkit.Eventually(t, 20*time.Second, "cgw-t2 up again", func() error {
			for _, tn := range labkit.Status(t).Tunnels {
				if tn.Name == labkit.T2 {
					if tn.State != "up" {
						return fmt.Errorf("cgw-t2 %s", tn.State)
					}
					return nil
				}
			}
			return fmt.Errorf("cgw-t2 not running (between its stop and its start)")
		})
		if tunnelStarts(labkit.T1) != t1Starts {
			t.Errorf("cgw-t1 was restarted by a change to cgw-t2 only")
		}
		if out, err := labkit.InNS(labkit.CGW, "nft", "list", "table", "inet", "cgwd"); err != nil || !strings.Contains(out, labkit.T2) {
			t.Errorf("firewall table after the reload: %v\n%s", err, out)
		}
		out, _ := labkit.InNS(labkit.CGW, "wg", "show", labkit.T2, "persistent-keepalive")
		if !strings.Contains(out, "\t7") {
			t.Errorf("cgw-t2 keepalive after reload: %q, want 7", out)
		}
	})
}

// reloadCases are the SIGHUP scenarios that edit, reload, check, restore
// and reload again.
var reloadCases = []reloadCase{{
	name: "ReloadInvalidIsRejectedAndKeepsRunning",
	edit: labkit.Replace("inside: 169.254.11.0/30", "inside: 169.254.1.0/30"),
	want: "reload rejected: invalid config",
	applied: func(t *testing.T, s *reloadScene) {
		if !strings.Contains(labkit.Log(), "field=vpn[0].tunnels[1].inside") {
			t.Error("the rejected field is not named in the log")
		}
		allTunnelsUp(t)
	},
}, {
	name:    "ReloadRestartOnlyFieldIsRefused",
	edit:    labkit.Replace("stale_time: 10s", "stale_time: 20s"),
	want:    "needs a restart of cgwd",
	applied: func(*testing.T, *reloadScene) {},
}, {
	name:   "ReloadNewPrefixIsAdvertisedWithoutSessionReset",
	before: settle(300),
	edit:   labkit.Replace("prefixes: [10.10.0.0/16]", "prefixes: [10.10.0.0/16, 10.11.0.0/16]"),
	want:   "reload: applied",
	applied: func(t *testing.T, s *reloadScene) {
		labkit.Eventually(t, 15*time.Second, "BIRD learns 10.11.0.0/16 over all three sessions", func() error {
			out := labkit.AWSBird.C(t, "show", "route", "10.11.0.0/16", "all")
			for _, p := range labkit.BirdSessions {
				if !strings.Contains(out, p) {
					return fmt.Errorf("not from %s:\n%s", p, out)
				}
			}
			return nil
		})
	},
	back: func(t *testing.T, s *reloadScene) {
		labkit.Eventually(t, 15*time.Second, "BIRD drops 10.11.0.0/16", func() error {
			if out, _ := labkit.AWSBird.Try("show", "route", "10.11.0.0/16"); strings.Contains(out, "10.11.0.0/16") {
				return fmt.Errorf("still there:\n%s", out)
			}
			return nil
		})
		if l := s.ping.Loss(t); l != "0%" {
			out, _ := s.ping.Wait()
			t.Errorf("%s of the packets lost across the reload:\n%s", l, out)
		}
		s.kept(t, "a prefix change")
	},
}, {
	// DX may now only bring 10.201.0.0/16: the VPC route it sent earlier
	// must leave, and tunnel 1 carries the VPC.
	name: "ReloadAllowListAppliesWithSessionUp",
	before: func(t *testing.T, s *reloadScene) {
		settle(0)(t, s)
		labkit.WaitRoute(t, 10*time.Second, labkit.VPCNet, labkit.DXPeer, labkit.DX)
	},
	edit: labkit.Replace("      max_prefixes: 200000", "      allow: [10.201.0.0/16]\n      max_prefixes: 200000"),
	want: "reload: applied",
	applied: func(t *testing.T, s *reloadScene) {
		labkit.WaitRoute(t, 10*time.Second, labkit.VPCNet, labkit.T1Peer, labkit.T1)
		labkit.PingVPC(t)
	},
	back: func(t *testing.T, s *reloadScene) {
		labkit.WaitRoute(t, 10*time.Second, labkit.VPCNet, labkit.DXPeer, labkit.DX)
		s.kept(t, "an import policy change")
	},
}, {
	name: "ReloadRemovesAndAddsDirectConnect",
	before: func(t *testing.T, s *reloadScene) {
		s.since = labkit.AWSBird.SinceSettled(t)
		labkit.WaitRoute(t, 10*time.Second, labkit.VPCNet, labkit.DXPeer, labkit.DX)
		s.ping = startPing(t, 500)
	},
	edit: labkit.Cut("direct_connect:\n", "failover:\n"),
	want: "reload: applied",
	applied: func(t *testing.T, s *reloadScene) {
		labkit.WaitRoute(t, 5*time.Second, labkit.VPCNet, labkit.T1Peer, labkit.T1)
		labkit.AWSBird.WaitEstablished(t, 10*time.Second, false, labkit.BirdDX)
		lost := s.ping.Loss(t)
		t.Logf("DX removed by reload: %s of a 100/s ping lost", lost)
		if lost != "0%" {
			t.Errorf("packets lost when the DX link was removed by a reload: %s", lost)
		}
		for _, p := range labkit.Status(t).Paths {
			if p.Name == labkit.DXPath {
				t.Error("status still lists the removed DX path")
			}
		}
		s.kept(t, "removing DX", labkit.BirdT1, labkit.BirdT2)
	},
	back: func(t *testing.T, s *reloadScene) {
		labkit.AWSBird.WaitEstablished(t, 30*time.Second, true, labkit.BirdDX)
		labkit.WaitRoute(t, 15*time.Second, labkit.VPCNet, labkit.DXPeer, labkit.DX)
		labkit.PingVPC(t)
	},
}, {
	name:   "ReloadRemovesAndAddsVPNConnection",
	before: settle(0),
	edit:   labkit.Cut("vpn:\n", "direct_connect:\n"),
	want:   "reload: applied",
	applied: func(t *testing.T, s *reloadScene) {
		for _, dev := range []string{labkit.T1, labkit.T2} {
			if out, err := labkit.InNS(labkit.CGW, "ip", "link", "show", dev); err == nil {
				t.Errorf("%s still exists after its connection was removed:\n%s", dev, out)
			}
		}
		labkit.AWSBird.WaitEstablished(t, 10*time.Second, false, labkit.BirdT1, labkit.BirdT2)
		s.kept(t, "removing the VPN connection", labkit.BirdDX)
		labkit.PingVPC(t) // over DX
	},
	back: func(t *testing.T, s *reloadScene) {
		labkit.AWSBird.WaitEstablished(t, 30*time.Second, true, labkit.BirdT1, labkit.BirdT2)
		for _, peer := range []string{labkit.T1Peer, labkit.T2Peer} {
			if out, err := labkit.Ping(labkit.CGW, peer, 2); err != nil {
				t.Errorf("ping across a re-added tunnel to %s: %v\n%s", peer, err, out)
			}
		}
	},
}}
