package netns

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/ike"
	"github.com/cgwd/cgwd/pkg/tunnel"
	"github.com/cgwd/cgwd/test/netns/labkit"
)

// TestIPsecVersionLab: with strongSwan as an AWS tunnel whose IKE versions
// are ikev1 only, cgwd (ike_version 2) names the mismatch in its log
// within seconds, whichever end initiates, and counts the peer's IKEv1
// messages; with ike_version any it falls back to IKEv1 within its bound
// against that tunnel, keeps IKEv2 against AWS's default one (version =
// 0), and answers strongSwan initiating IKEv1.
func TestIPsecVersionLab(t *testing.T) {
	labkit.RequireStrongSwan(t)
	labkit.UpIPsec(t)
	aws := labkit.Charon(1)

	t.Run("StrongSwanInitiatesIKEv1MainMode", func(t *testing.T) {
		labkit.RestartIPsec(t, "initiate: false")
		start := time.Now()
		aws.Configure(t, "AWS_IKE_VERSION=1", "AWS_START_ACTION=start")
		logMatches(t, 15*time.Second, "cgwd names the peer's IKEv1",
			`msg="peer speaks IKEv1 only; cgwd speaks IKEv2: set the AWS tunnel's IKE versions to include ikev2".*tunnel=cgw-t1.*peer_sent="main mode".*our_version=ikev2`)
		t.Logf("IKEv1 peer named %v after strongSwan was told to initiate (shared, loaded machine)", time.Since(start).Round(100*time.Millisecond))
		labkit.Eventually(t, 10*time.Second, "an ikev1 drop counted on cgw-t1", func() error {
			if ike, _ := labCounters(t, labkit.T1); ike["ikev1"] < 1 {
				return fmt.Errorf("ike drops %v", ike)
			}
			return nil
		})
	})

	t.Run("CgwdInitiatesToIKEv1Only", func(t *testing.T) {
		aws.Configure(t, "AWS_IKE_VERSION=1")
		labkit.RestartIPsec(t, "")
		start := time.Now()
		logMatches(t, 15*time.Second, "cgwd names the possible version mismatch",
			`msg="peer rejected our proposals: NO_PROPOSAL_CHOSEN \(no suite in common, or the peer does not allow IKEv2 [^"]*include ikev2\)".*tunnel=cgw-t1.*exchange=IKE_SA_INIT our_version=ikev2`)
		t.Logf("NO_PROPOSAL_CHOSEN named %v after cgwd started (shared, loaded machine)", time.Since(start).Round(100*time.Millisecond))
	})

	t.Run("AnyFallsBackToIKEv1KeepsIKEv2", func(t *testing.T) {
		// Tunnel 1 allows IKEv1 only, tunnel 2 has AWS's defaults (both
		// versions): one cgwd start covers both.
		aws.Configure(t, v1Env...)
		labkit.Charon(2).Configure(t)
		start := time.Now()
		labkit.RestartIPsec(t, "ike_version: any")
		ipsecTunnelsUp(t, 30*time.Second)
		t.Logf("both tunnels up %v after cgwd was started (shared, loaded machine)", time.Since(start).Round(100*time.Millisecond))
		pingBoth(t)
		_, ip1 := tunnelIPsec(t, labkit.T1)
		_, ip2 := tunnelIPsec(t, labkit.T2)
		if ip1.IKEVersion != "ikev1" || ip1.IKEVersionSwitches != 1 ||
			ip1.IKEVersionSwitch != "ikev2 -> ikev1: the peer answered IKE_SA_INIT with NO_PROPOSAL_CHOSEN" {
			t.Errorf("cgw-t1: version %q, %d switches (%q), want ikev1 after one switch on NO_PROPOSAL_CHOSEN",
				ip1.IKEVersion, ip1.IKEVersionSwitches, ip1.IKEVersionSwitch)
		}
		if ip2.IKEVersion != "ikev2" || ip2.IKEVersionSwitches != 0 {
			t.Errorf("cgw-t2: version %q, %d switches, want ikev2 and none", ip2.IKEVersion, ip2.IKEVersionSwitches)
		}
		for c, want := range map[labkit.Charon]string{1: "IKEv1", 2: "IKEv2"} {
			if sas := c.SAs(t); !strings.Contains(sas, want) || !strings.Contains(sas, "INSTALLED") {
				t.Errorf("strongSwan %d shows no installed %s SA:\n%s", c, want, sas)
			}
		}
		// The fallback's bound: documented as at most ike.AnyInitWait after
		// the first IKE_SA_INIT (about 2 s when the peer answers
		// NO_PROPOSAL_CHOSEN); "after" in the switch's log line is that time.
		log := labkit.Log() // this cgwd's: each start rewrites it
		sw := regexp.MustCompile(`msg="IKE version switch \(ike_version any\): ikev2 -> ikev1".*tunnel=cgw-t1 .*from=ikev2 to=ikev1 `+
			`reason="the peer answered IKE_SA_INIT with NO_PROPOSAL_CHOSEN" role=initiator after=(\S+)`).FindAllStringSubmatch(log, -1)
		if len(sw) != 1 {
			t.Fatalf("%d switch lines for cgw-t1, want 1", len(sw))
		}
		after, err := time.ParseDuration(sw[0][1])
		if err != nil || after > ike.AnyInitWait {
			t.Errorf("cgw-t1 fell back %s (%v) after its first IKE_SA_INIT, documented bound %v", sw[0][1], err, ike.AnyInitWait)
		}
		t.Logf("cgw-t1 fell back to IKEv1 %v after its first IKE_SA_INIT (shared, loaded machine)", after)
		if regexp.MustCompile(`IKE version switch.*tunnel=cgw-t2 `).MatchString(log) {
			t.Error("cgw-t2 switched versions against AWS's default profile")
		}
		m := labkit.Scrape(t)
		for tn, v := range map[string]string{labkit.T1: "ikev1", labkit.T2: "ikev2"} {
			labels := fmt.Sprintf(`{tunnel="%s",version="%s",vpn="vpn1"}`, tn, v)
			if got, ok := m.Value("cgwd_ipsec_ike_version_info" + labels); !ok || got != 1 {
				t.Errorf("cgwd_ipsec_ike_version_info%s = %v (found %v)", labels, got, ok)
			}
		}
	})

	t.Run("AnyAnswersIKEv1Initiator", func(t *testing.T) {
		labkit.RestartIPsec(t, "ike_version: any;initiate: false")
		aws.Configure(t, append(v1Env, "AWS_START_ACTION=start")...)
		labkit.Eventually(t, 30*time.Second, "cgw-t1 up in IKEv1 as responder", func() error {
			if st, ip := t1Status(t); st.State != tunnel.StateUp || ip.IKEVersion != "ikev1" {
				return fmt.Errorf("cgw-t1 %s, version %q (last switch %q)", st.State, ip.IKEVersion, ip.IKEVersionSwitch)
			}
			return nil
		})
		if _, ip := t1Status(t); !strings.Contains(ip.IKEVersionSwitch, "ikev2 -> ikev1: the peer sent IKEv1 (main mode)") {
			t.Errorf("cgw-t1's switch %q", ip.IKEVersionSwitch)
		}
		if out, err := labkit.Ping(labkit.CGW, labkit.T1Peer, 1); err != nil {
			t.Errorf("ping over cgw-t1: %v\n%s", err, out)
		}
	})
}
