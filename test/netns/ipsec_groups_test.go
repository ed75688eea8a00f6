package netns

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/tunnel"
	"github.com/cgwd/cgwd/test/netns/labkit"
)

// TestIPsecGroupsLab: with strongSwan as AWS offering only one DH group,
// cgwd establishes the IKE SA in that group, strongSwan rekeys the Child SA
// with PFS in it, both ends report the group and a ping crosses. One case
// per group cgwd added for AWS (strongSwan's gmp and openssl plugins have
// them all); groups 2, 14-16 and 19-21 are in TestIPsecLab.
func TestIPsecGroupsLab(t *testing.T) {
	labkit.RequireStrongSwan(t)
	labkit.UpIPsec(t)
	for _, g := range []struct{ name, charon string }{
		{"modp1536", "MODP_1536"},
		{"modp6144", "MODP_6144"},
		{"modp8192", "MODP_8192"},
		{"modp1024s160", "MODP_1024_160"},
		{"modp2048s224", "MODP_2048_224"},
		{"modp2048s256", "MODP_2048_256"},
	} {
		t.Run(g.name, func(t *testing.T) {
			p := "aes128-sha256-" + g.name
			aws := labkit.Charon(1)
			aws.Configure(t, "AWS_IKE_PROPOSALS="+p, "AWS_ESP_PROPOSALS="+p)
			labkit.RestartIPsec(t, fmt.Sprintf("ike_proposals: [%s];esp_proposals: [%s]", p, p))
			labkit.Eventually(t, 60*time.Second, "cgw-t1 up in "+g.name, func() error {
				if st, sa := t1Status(t); st.State != tunnel.StateUp || !strings.HasSuffix(sa.IKESuite, g.name) {
					return fmt.Errorf("cgw-t1 %s, IKE suite %q", st.State, sa.IKESuite)
				}
				return nil
			})
			aws.Swanctl(t, "--rekey", "--child", "aws")
			labkit.Eventually(t, 60*time.Second, "a Child SA rekeyed with PFS in "+g.name, func() error {
				sas := aws.SAs(t)
				if !strings.Contains(sas, "ESP:AES_CBC-128/HMAC_SHA2_256_128/"+g.charon+"\n") {
					return fmt.Errorf("strongSwan's SAs:\n%s", sas)
				}
				if _, sa := t1Status(t); !strings.HasSuffix(sa.ChildSuite, g.name) {
					return fmt.Errorf("cgwd's Child SA suite %q", sa.ChildSuite)
				}
				return nil
			})
			if sas := aws.SAs(t); !strings.Contains(sas, "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/"+g.charon+"\n") {
				t.Errorf("strongSwan's IKE SA is not in %s:\n%s", g.charon, sas)
			}
			if out, err := labkit.Ping(labkit.CGW, labkit.T1Peer, 3); err != nil {
				t.Errorf("ping over cgw-t1 after the PFS rekey: %v\n%s", err, out)
			}
		})
	}
}

// t1Status is cgw-t1's status and its SAs (empty until cgwd reports them).
func t1Status(t *testing.T) (tunnel.Status, tunnel.IPsecStatus) {
	t.Helper()
	return tunnelIPsec(t, labkit.T1)
}
