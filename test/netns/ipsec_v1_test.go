package netns

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/tunnel"
	"github.com/cgwd/cgwd/test/netns/labkit"
)

// v1Env narrows strongSwan to IKEv1. As an IKEv1 initiator (a main
// mode, or a quick mode of its own, e.g. its rekeys) strongSwan offers
// only the first algorithm of each type of each proposal, so its lists
// start with cgwd's default proposals (AWS's lists follow).
var v1Env = []string{"AWS_IKE_VERSION=1",
	"AWS_IKE_PROPOSALS=aes256-sha384-ecp384,aes128-aes256-sha1-sha256-sha384-sha512-modp2048-modp3072-modp4096-ecp256-ecp384-ecp521",
	"AWS_ESP_PROPOSALS=aes256gcm16-ecp384,aes128-aes256-sha1-sha256-sha384-sha512-modp2048-modp3072-modp4096-ecp256-ecp384-ecp521,aes128gcm16-aes256gcm16-modp2048-modp3072-modp4096-ecp256-ecp384-ecp521"}

// TestIPsecV1Lab: strongSwan narrowed to IKEv1 (version = 1) on both AWS
// endpoints and cgwd with ike_version: 1. cgwd initiates (main mode,
// quick mode with PFS, NAT-T on port 4500) and pings cross both tunnels;
// strongSwan initiates and cgwd answers; Child SAs are rekeyed by both
// ends under a 100/s ping that loses nothing.
func TestIPsecV1Lab(t *testing.T) {
	labkit.RequireStrongSwan(t)
	labkit.UpIPsec(t)
	labkit.LogOnFailure(t)
	t.Cleanup(func() {
		if t.Failed() {
			for _, c := range []labkit.Charon{1, 2} {
				b, _ := os.ReadFile(c.LogFile())
				t.Logf("charon %d's log ends:\n%s", c, tail(b, 5000))
			}
		}
	})
	for _, c := range []labkit.Charon{1, 2} {
		c.Configure(t, v1Env...)
	}

	t.Run("CgwdInitiates", func(t *testing.T) {
		start := time.Now()
		labkit.RestartIPsec(t, "ike_version: 1")
		ipsecTunnelsUp(t, 30*time.Second)
		t.Logf("both IKEv1 tunnels up %v after cgwd started (shared, loaded machine)", time.Since(start).Round(100*time.Millisecond))
		pingBoth(t)
		for _, c := range []labkit.Charon{1, 2} {
			sas := c.SAs(t)
			if !strings.Contains(sas, "IKEv1") || !strings.Contains(sas, "INSTALLED") || !strings.Contains(sas, "TUNNEL-in-UDP") {
				t.Errorf("strongSwan %d does not show IKEv1 SAs with UDP encapsulation:\n%s", c, sas)
			}
		}
		_, ip := t1Status(t)
		if ip.IKEState != "established" || ip.ChildSPIs == "" || ip.ChildSuite == "" {
			t.Errorf("cgw-t1 ipsec status %+v", ip)
		}
		if !regexp.MustCompile(`msg="ISAKMP SA established \(IKEv1 main mode\)".*tunnel=cgw-t1.*role=initiator`).MatchString(labkit.Log()) {
			t.Error("cgwd did not log the IKEv1 SA as initiator")
		}
	})

	t.Run("StrongSwanInitiates", func(t *testing.T) {
		labkit.RestartIPsec(t, "ike_version: 1;initiate: false")
		labkit.Charon(1).Configure(t, append(v1Env, "AWS_START_ACTION=start")...)
		defer labkit.Charon(1).Configure(t, v1Env...)
		labkit.Eventually(t, 30*time.Second, "cgw-t1 up as responder", func() error {
			if st, _ := t1Status(t); st.State != tunnel.StateUp {
				b, _ := os.ReadFile(labkit.Charon(1).LogFile())
				return fmt.Errorf("cgw-t1 %s; charon's log ends:\n%s", st.State, tail(b, 1500))
			}
			return nil
		})
		labkit.Eventually(t, 10*time.Second, "a ping over cgw-t1", func() error {
			if out, err := labkit.Ping(labkit.CGW, labkit.T1Peer, 1); err != nil {
				return fmt.Errorf("%v\n%s", err, out)
			}
			return nil
		})
		if !regexp.MustCompile(`msg="ISAKMP SA established \(IKEv1 main mode\)".*tunnel=cgw-t1.*role=responder`).MatchString(labkit.Log()) {
			t.Error("cgwd did not log the IKEv1 SA as responder")
		}
	})

	t.Run("RekeyUnderPingLosesNothing", func(t *testing.T) {
		// cgwd rekeys its Child SAs at ~8 s; then each strongSwan rekeys
		// (swanctl --rekey) and cgwd answers; all under a 100/s ping.
		labkit.RestartIPsec(t, "ike_version: 1;child_lifetime: 30s;rekey_margin: 22s;rekey_fuzz_percent: 0")
		ipsecTunnelsUp(t, 30*time.Second)
		var pings []*labkit.PingRun
		for _, dst := range []string{labkit.T1Peer, labkit.T2Peer} {
			pings = append(pings, labkit.StartPing(t, labkit.CGW, "-q", "-i", "0.01", "-c", "2000", "-w", "60", "-W", "1", dst))
		}
		labkit.Eventually(t, 15*time.Second, "cgwd's rekey of both Child SAs", func() error {
			for _, tn := range labkit.Status(t).Tunnels {
				if tn.IPsec == nil || tn.IPsec.ChildRekeys < 1 {
					return fmt.Errorf("%s not rekeyed yet", tn.Name)
				}
			}
			return nil
		})
		for _, c := range []labkit.Charon{1, 2} {
			c.Swanctl(t, "--rekey", "--child", "aws")
		}
		for _, p := range pings {
			if out, err := p.Wait(); err != nil || !strings.Contains(out, " 0% packet loss") {
				t.Errorf("loss during IKEv1 rekeys: %v\n%s", err, out)
			}
		}
		log := labkit.Log()
		for _, tn := range []string{labkit.T1, labkit.T2} {
			for _, by := range []string{"us", "peer"} {
				if !regexp.MustCompile(`msg="Child SA established \(IKEv1 quick mode\)".*tunnel=` + tn + ` .*rekey=true quick_mode_by=` + by).MatchString(log) {
					t.Errorf("%s: no Child SA rekey by %s", tn, by)
				}
			}
		}
	})
}
