package netns

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/tunnel"
	"github.com/cgwd/cgwd/test/netns/labkit"
)

// TestIPsecFragmentationLab: strongSwan with the lab's AWS-default profile
// (AWS's full default lists, version = 0) initiates with certificates and
// IKE datagrams capped at 300 bytes. Its IKE_AUTH goes as RFC 7383
// fragments (it fragments only when cgwd announced support), which cgwd
// reassembles; cgwd's IKE_AUTH answer (an RSA certificate and its
// intermediate, over 1280 bytes) goes as fragments that strongSwan
// reassembles. Both sides' counts are checked: charon's log and cgwd's
// status. The tunnel comes up and a ping crosses.
func TestIPsecFragmentationLab(t *testing.T) {
	labkit.RequireStrongSwan(t)
	labkit.UpIPsec(t)
	pki := labkit.MakePKI(t)
	aws := labkit.Charon(1)
	aws.Stop(t)
	labkit.RestartIPsec(t, "initiate: false;"+pki.CgwdOpts())
	labkit.IPsecSh(t, append(pki.StrongSwanEnv(pki.AWSCert), "AWS_FRAGMENT_SIZE=300", "AWS_START_ACTION=start"),
		"start-charon", "1")
	labkit.Eventually(t, 40*time.Second, "cgw-t1 up", func() error {
		if st, _ := t1Status(t); st.State != tunnel.StateUp {
			b, _ := os.ReadFile(aws.LogFile())
			return fmt.Errorf("cgw-t1 %s; charon's log ends:\n%s", st.State, tail(b, 1500))
		}
		return nil
	})
	// charon's log is line-buffered (strongswan.conf's flush_line): a line
	// is in the file once charon has logged it.
	split := regexp.MustCompile(`splitting IKE message \((\d+) bytes\) into (\d+) fragments`)
	joined := regexp.MustCompile(`received fragment #\d+ of (\d+), reassembled fragmented IKE message \((\d+) bytes\)`)
	var sent, got [][]byte
	labkit.Eventually(t, 10*time.Second, "fragments both ways in charon's log", func() error {
		b, _ := os.ReadFile(aws.LogFile())
		if sent, got = split.FindSubmatch(b), joined.FindSubmatch(b); sent == nil || got == nil {
			return fmt.Errorf("charon split %q, reassembled %q; its log ends:\n%s", sent, got, tail(b, 1500))
		}
		return nil
	})
	t.Logf("charon: %s; %s", sent[0], got[0])
	theirs, _ := strconv.ParseUint(string(sent[2]), 10, 64)
	ours, _ := strconv.ParseUint(string(got[1]), 10, 64)
	// cgwd counted charon's fragments (each verified) and the message they
	// made, and its own IKE_AUTH in as many fragments as charon put together.
	_, ip := t1Status(t)
	f := ip.IKEFragments
	t.Logf("cgwd: %v", f)
	if f["received"] < theirs || f["reassembled"] < 1 {
		t.Errorf("cgwd counted %d fragments received and %d messages reassembled; charon sent one in %d",
			f["received"], f["reassembled"], theirs)
	}
	if f["sent"] < ours || f["fragmented"] < 1 {
		t.Errorf("cgwd counted %d fragments sent in %d messages; charon reassembled one of %d",
			f["sent"], f["fragmented"], ours)
	}
	// cgwd, the responder, is up once it has sent its IKE_AUTH answer;
	// strongSwan installs its side of the Child SA only after reading it,
	// so the first echo may come too early: poll until one crosses.
	labkit.Eventually(t, 10*time.Second, "a ping over cgw-t1", func() error {
		if out, err := labkit.Ping(labkit.CGW, labkit.T1Peer, 1); err != nil {
			return fmt.Errorf("%v\n%s", err, out)
		}
		return nil
	})
}

// tail is the last n bytes of b.
func tail(b []byte, n int) string { return string(b[max(0, len(b)-n):]) }
