package netns

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/tunnel"
	"github.com/cgwd/cgwd/test/netns/labkit"
)

// ipsecTunnelsUp waits until cgwd reports both tunnels up, of kind ipsec.
func ipsecTunnelsUp(t *testing.T, timeout time.Duration) {
	t.Helper()
	labkit.Eventually(t, timeout, "cgw-t1, cgw-t2 up", func() error {
		up := map[string]bool{}
		for _, tn := range labkit.Status(t).Tunnels {
			up[tn.Name] = tn.State == tunnel.StateUp && tn.Kind == tunnel.KindIPsec
		}
		for _, n := range []string{labkit.T1, labkit.T2} {
			if !up[n] {
				return fmt.Errorf("%s is not up", n)
			}
		}
		return nil
	})
}

// pingBoth pings across both tunnels from both ends.
func pingBoth(t *testing.T) {
	t.Helper()
	for _, p := range [][2]string{{labkit.CGW, labkit.T1Peer}, {labkit.CGW, labkit.T2Peer}, {labkit.AWS, labkit.T1Local}, {labkit.AWS, labkit.T2Local}} {
		if out, err := labkit.Ping(p[0], p[1], 3); err != nil {
			t.Errorf("ping %s from %s: %v\n%s", p[1], p[0], err, out)
		}
	}
}

// logMatches waits until cgwd's log matches re.
func logMatches(t *testing.T, timeout time.Duration, what, re string) {
	t.Helper()
	labkit.Eventually(t, timeout, what, func() error {
		if !regexp.MustCompile(re).MatchString(labkit.Log()) {
			return fmt.Errorf("not yet")
		}
		return nil
	})
}

// ipsecSuites are the proposals cgwd and strongSwan agree on, each with
// the ESP suite strongSwan then shows.
var ipsecSuites = []struct{ ike, esp, charonESP string }{
	{"aes128-sha1-modp2048", "aes128-sha1-modp2048", "AES_CBC-128/HMAC_SHA1_96"},
	{"aes256-sha256-modp3072", "aes256-sha256-modp3072", "AES_CBC-256/HMAC_SHA2_256_128"},
	{"aes128-sha384-modp4096", "aes128-sha384-modp4096", "AES_CBC-128/HMAC_SHA2_384_192"},
	{"aes256-sha512-ecp256", "aes256-sha512-ecp256", "AES_CBC-256/HMAC_SHA2_512_256"},
	{"aes128gcm16-prfsha256-ecp384", "aes128gcm16-ecp384", "AES_GCM_16-128"},
	{"aes256gcm16-prfsha512-ecp521", "aes256gcm16-ecp521", "AES_GCM_16-256"},
	{"aes256gcm16-prfsha1-ecp256", "aes256gcm16-ecp256", "AES_GCM_16-256"},
}

// misconfigs reconfigure strongSwan of tunnel 2 wrongly (env) and close its
// SA: cgwd says why in its log (what, matching log), check holds, and cgwd
// recovers by itself once strongSwan is right.
var misconfigs = []struct {
	name, env, what, log string
	check                func(t *testing.T)
}{
	{"WrongPSKIsAClearErrorAndRecovers", "AWS_PSK_OVERRIDE=not-the-cgwd-psk",
		"AUTHENTICATION_FAILED in cgwd's log", `AUTHENTICATION_FAILED.*tunnel=cgw-t2`,
		func(t *testing.T) {
			for _, tn := range labkit.Status(t).Tunnels {
				if tn.Name == labkit.T2 && tn.State == tunnel.StateUp {
					t.Error("cgw-t2 up with the wrong PSK")
				}
			}
			if strings.Contains(labkit.Log(), "not-the-cgwd-psk") {
				t.Error("PSK in the log")
			}
		}},
	{"ProposalMismatchIsNoProposalChosen", "AWS_IKE_PROPOSALS=aes128-sha1-modp2048",
		"NO_PROPOSAL_CHOSEN in cgwd's log", `NO_PROPOSAL_CHOSEN.*tunnel=cgw-t2.*our_ike_proposals=aes256gcm16-prfsha384-ecp384`,
		func(t *testing.T) {}},
}

func TestIPsecLab(t *testing.T) {
	labkit.RequireStrongSwan(t)
	labkit.UpIPsec(t)
	labkit.StartCgwd(t)

	t.Run("CgwdInitiatesBothTunnelsToStrongSwan", func(t *testing.T) {
		ipsecTunnelsUp(t, 20*time.Second)
		pingBoth(t)
		for _, c := range []labkit.Charon{1, 2} {
			sas := c.SAs(t)
			if !strings.Contains(sas, "ESTABLISHED") || !strings.Contains(sas, "INSTALLED") || !strings.Contains(sas, "AES_GCM_16-256") {
				t.Errorf("strongSwan %d does not show the SAs:\n%s", c, sas)
			}
		}
		for _, tn := range labkit.Status(t).Tunnels {
			if tn.RxBytes == 0 || tn.TxBytes == 0 || tn.LastHandshake.IsZero() {
				t.Errorf("%s: counters rx=%d tx=%d handshake=%v", tn.Name, tn.RxBytes, tn.TxBytes, tn.LastHandshake)
			}
		}
		if !strings.Contains(labkit.Log(), "role=initiator") {
			t.Error("cgwd did not log itself as initiator")
		}
	})

	t.Run("StatusAndMetricsShowTheSAs", func(t *testing.T) {
		for _, tn := range labkit.Status(t).Tunnels {
			ip := tn.IPsec
			if ip == nil || ip.IKEState != "established" || ip.IKESPIs == "" || ip.ChildSPIs == "" || ip.ChildSuite == "" || ip.ChildRekeyDue.IsZero() {
				t.Errorf("%s: ipsec status %+v", tn.Name, ip)
			}
		}
		m := labkit.Scrape(t)
		for _, tn := range []string{labkit.T1, labkit.T2} {
			labels := fmt.Sprintf(`{tunnel="%s",vpn="vpn1"}`, tn)
			if v, ok := m.Value("cgwd_ipsec_ike_sa_up" + labels); !ok || v != 1 {
				t.Errorf("cgwd_ipsec_ike_sa_up%s = %v (found %v)", labels, v, ok)
			}
			if v, ok := m.Value("cgwd_ipsec_ike_establish_seconds" + labels); !ok || v <= 0 {
				t.Errorf("cgwd_ipsec_ike_establish_seconds%s = %v (found %v)", labels, v, ok)
			}
		}
	})

	t.Run("BGPWithBIRDOverBothTunnels", func(t *testing.T) {
		labkit.AWSBird.WaitEstablished(t, 40*time.Second, true, labkit.BirdT1, labkit.BirdT2)
	})

	t.Run("OnPremReachesVPCOverIPsec", func(t *testing.T) {
		// Host routes pin this one flow to tunnel 1 whatever BGP chose, so
		// the test asserts on the IPsec data path itself.
		labkit.MustInNS(t, labkit.CGW, "ip", "route", "replace", labkit.VPCHost+"/32", "dev", labkit.T1)
		labkit.MustInNS(t, labkit.AWS, "ip", "route", "replace", labkit.OnPremHost+"/32", "via", labkit.T1Local, "dev", labkit.AWST1)
		t.Cleanup(func() {
			labkit.InNS(labkit.CGW, "ip", "route", "del", labkit.VPCHost+"/32")
			labkit.InNS(labkit.AWS, "ip", "route", "del", labkit.OnPremHost+"/32")
		})
		rx0, tx0 := labkit.TunnelBytes(t, labkit.T1)
		if out, err := labkit.InNS(labkit.OnPrem, "ping", "-c", "5", "-i", "0.2", "-W", "2", labkit.VPCHost); err != nil {
			t.Fatalf("ping lab-onprem -> lab-vpc: %v\n%s", err, out)
		}
		if rx, tx := labkit.TunnelBytes(t, labkit.T1); rx-rx0 < 5*84 || tx-tx0 < 5*84 {
			t.Errorf("cgw-t1 counters moved by rx %d tx %d bytes, want >= 5 pings each way", rx-rx0, tx-tx0)
		}
	})

	for _, tc := range misconfigs {
		t.Run(tc.name, func(t *testing.T) {
			c := labkit.Charon(2)
			c.Configure(t, tc.env)
			c.Swanctl(t, "--terminate", "--ike", "aws", "--timeout", "5")
			logMatches(t, 20*time.Second, tc.what, tc.log)
			tc.check(t)
			c.Configure(t)
			ipsecTunnelsUp(t, 40*time.Second) // cgwd retries by itself
		})
	}

	t.Run("StrongSwanInitiatesCgwdResponds", func(t *testing.T) {
		labkit.RestartIPsec(t, "initiate: false")
		for _, c := range []labkit.Charon{1, 2} {
			c.Swanctl(t, "--initiate", "--child", "aws", "--timeout", "10")
		}
		ipsecTunnelsUp(t, 10*time.Second)
		if log := labkit.Log(); strings.Contains(log, "role=initiator") || strings.Count(log, "role=responder") < 2 {
			t.Errorf("cgwd was not the responder on both tunnels:\n%s", log)
		}
		pingBoth(t)
	})

	t.Run("EverySuiteNegotiates", func(t *testing.T) {
		for _, s := range ipsecSuites {
			t.Run(s.ike+"/"+s.esp, func(t *testing.T) {
				labkit.RestartIPsec(t, fmt.Sprintf("ike_proposals: [%s];esp_proposals: [%s]", s.ike, s.esp))
				ipsecTunnelsUp(t, 20*time.Second)
				if out, err := labkit.Ping(labkit.CGW, labkit.T1Peer, 2); err != nil {
					t.Errorf("ping: %v\n%s", err, out)
				}
				if sas := labkit.Charon(1).SAs(t); !strings.Contains(sas, s.charonESP) {
					t.Errorf("strongSwan's Child SA is not %s:\n%s", s.charonESP, sas)
				}
			})
		}
	})

	t.Run("RekeyUnderLoadLosesNothing", func(t *testing.T) {
		// Against AWS's default profile (version = 0, AWS's lists), only
		// strongSwan 2's lifetimes shortened (margin a tenth, fuzz 100 %).
		// Tunnel 1: cgwd rekeys (Child SA at ~15 s and ~30 s, IKE SA at ~45 s).
		// Tunnel 2: strongSwan rekeys first (Child SA every ~12 s, IKE SA at ~25 s).
		labkit.Charon(2).Configure(t, "AWS_CHILD_LIFETIME=12s", "AWS_IKE_LIFETIME=25s")
		defer labkit.Charon(2).Configure(t)
		labkit.RestartIPsec(t, "child_lifetime: 30s;ike_lifetime: 60s;rekey_margin: 15s;rekey_fuzz_percent: 0")
		ipsecTunnelsUp(t, 20*time.Second)
		// 100 packets/s (as fast as ping goes) on each tunnel, 4,800 packets:
		// 48 s or more. A count, not a deadline: ping -w alone stops at the
		// deadline with the last request still in flight and counts it lost.
		var pings []*labkit.PingRun
		for _, dst := range []string{labkit.T1Peer, labkit.T2Peer} {
			pings = append(pings, labkit.StartPing(t, labkit.CGW, "-q", "-i", "0.01", "-c", "4800", "-w", "100", "-W", "1", dst))
		}
		for _, p := range pings {
			if out, err := p.Wait(); err != nil || !strings.Contains(out, " 0% packet loss") {
				t.Errorf("loss during rekeys: %v\n%s", err, out)
			}
		}
		log := labkit.Log()
		for _, tn := range []string{labkit.T1, labkit.T2} {
			if n := len(regexp.MustCompile(`msg="Child SA established".*tunnel=`+tn+` `).FindAllString(log, -1)); n < 3 {
				t.Errorf("Child SA of %s established %d times, want >= 3 (two rekeys)", tn, n)
			}
			if !regexp.MustCompile(`msg="IKE SA rekeyed".*tunnel=` + tn + ` `).MatchString(log) {
				t.Errorf("IKE SA of %s not rekeyed", tn)
			}
			if n := len(regexp.MustCompile(`msg="IKE SA established".*tunnel=`+tn+` `).FindAllString(log, -1)); n != 1 {
				t.Errorf("%s established %d times: re-established instead of rekeying", tn, n)
			}
		}
	})

	t.Run("DPDDeclaresDeadPeerAndRecovers", func(t *testing.T) {
		labkit.RestartIPsec(t, "dpd_delay: 2s;dpd_timeout: 6s;initiate: true")
		ipsecTunnelsUp(t, 20*time.Second)
		drop := labkit.NewInputFilter(t, labkit.Charon(1).NS(), "ipsecdrop")
		drop.DropUDP(4500)
		start := time.Now()
		logMatches(t, 20*time.Second, "cgwd declares the peer of cgw-t1 dead", `peer is dead.*tunnel=cgw-t1`)
		t.Logf("peer declared dead %v after the drop (dpd_delay 2s, dpd_timeout 6s)", time.Since(start).Round(100*time.Millisecond))
		drop.Delete()
		ipsecTunnelsUp(t, 40*time.Second)
		if out, err := labkit.Ping(labkit.CGW, labkit.T1Peer, 2); err != nil {
			t.Errorf("ping after recovery: %v\n%s", err, out)
		}
	})

	t.Run("CharonRestartIsReestablished", func(t *testing.T) {
		c := labkit.Charon(1)
		c.Stop(t)
		c.Start(t)
		labkit.Eventually(t, 40*time.Second, "cgw-t1 re-established with the new charon", func() error {
			if !strings.Contains(c.SAs(t), "INSTALLED") {
				return fmt.Errorf("no Child SA in charon")
			}
			if out, err := labkit.InNS(labkit.CGW, "ping", "-c", "1", "-W", "1", labkit.T1Peer); err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
	})
}
