package netns

import (
	"fmt"
	"testing"
	"time"

	"github.com/cgwd/cgwd/test/netns/labkit"
)

// TestIPsecVersionLab: with strongSwan as an AWS tunnel whose IKE versions
// are ikev1 only, cgwd (IKEv2 only) names the mismatch in its log within
// seconds, whichever end initiates, and counts the peer's IKEv1 messages.
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
}
