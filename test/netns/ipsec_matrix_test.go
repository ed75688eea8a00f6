package netns

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/proposal"
	"github.com/cgwd/cgwd/pkg/tunnel"
	"github.com/cgwd/cgwd/test/netns/labkit"
)

// matrixSuites cover every value AWS lists for a tunnel (encryption AES128,
// AES256, AES128-GCM-16, AES256-GCM-16; integrity SHA1, SHA2-256, -384,
// -512; phase 1 groups 2 and 14-24, phase 2 groups also 5) at least once in
// each phase, rather than the cross product. The weak groups (2, 5, 22) are
// written out, as cgwd wants them. charon names the groups as strongSwan's
// --list-sas shows them.
var matrixSuites = []struct{ ike, esp, charonIKE, charonESP string }{
	{"aes128-sha1-modp1024", "aes128-sha1-modp1536", "MODP_1024", "MODP_1536"},
	{"aes256-sha256-modp2048", "aes256-sha256-modp1024", "MODP_2048", "MODP_1024"},
	{"aes128gcm16-prfsha384-modp3072", "aes128gcm16-modp3072", "MODP_3072", "MODP_3072"},
	{"aes256gcm16-prfsha512-modp4096", "aes256gcm16-modp4096", "MODP_4096", "MODP_4096"},
	{"aes128-sha512-modp6144", "aes128-sha384-modp6144", "MODP_6144", "MODP_6144"},
	{"aes256-sha384-modp8192", "aes256-sha512-modp8192", "MODP_8192", "MODP_8192"},
	{"aes128gcm16-prfsha1-ecp256", "aes128gcm16-ecp256", "ECP_256", "ECP_256"},
	{"aes256gcm16-prfsha256-ecp384", "aes256gcm16-ecp384", "ECP_384", "ECP_384"},
	{"aes128-sha256-ecp521", "aes128-sha256-ecp521", "ECP_521", "ECP_521"},
	{"aes256-sha1-modp1024s160", "aes256-sha1-modp1024s160", "MODP_1024_160", "MODP_1024_160"},
	{"aes128-sha384-modp2048s224", "aes128-sha512-modp2048s224", "MODP_2048_224", "MODP_2048_224"},
	{"aes256-sha512-modp2048s256", "aes256-sha1-modp2048", "MODP_2048_256", "MODP_2048"},
}

// TestIPsecSuiteMatrixLab: strongSwan with AWS's default tunnel options
// (every algorithm and group AWS allows), cgwd proposing one suite per
// tunnel, two suites per cgwd start: each tunnel comes up in its suite as
// cgwd's status and strongSwan say, strongSwan rekeys the Child SA (PFS in
// the phase 2 group: cgwd answers strongSwan's first group with
// INVALID_KE_PAYLOAD and its own) and a ping crosses.
func TestIPsecSuiteMatrixLab(t *testing.T) {
	labkit.RequireStrongSwan(t)
	labkit.UpIPsec(t)
	for _, c := range []labkit.Charon{1, 2} {
		c.Configure(t) // AWS's defaults, whatever an earlier test left
	}
	start := time.Now()
	for i := 0; i < len(matrixSuites); i += 2 {
		pair := matrixSuites[i : i+2]
		opts := func(j int) string {
			return fmt.Sprintf("ike_proposals: [%s];esp_proposals: [%s]", pair[j].ike, pair[j].esp)
		}
		t.Run(pair[0].ike+"+"+pair[1].ike, func(t *testing.T) {
			labkit.RestartIPsecEach(t, opts(0), opts(1))
			names := []string{labkit.T1, labkit.T2}
			labkit.Eventually(t, 60*time.Second, "both tunnels up in their suites", func() error {
				for j, s := range pair {
					st, sa := tunnelIPsec(t, names[j])
					if st.State != tunnel.StateUp {
						return fmt.Errorf("%s %s", names[j], st.State)
					}
					if err := suiteIs(sa.IKESuite, s.ike); err != nil {
						return fmt.Errorf("%s IKE SA: %w", names[j], err)
					}
				}
				return nil
			})
			for j, s := range pair {
				aws := labkit.Charon(j + 1)
				aws.Swanctl(t, "--rekey", "--child", "aws")
				labkit.Eventually(t, 30*time.Second, names[j]+" Child SA rekeyed with PFS in "+s.esp, func() error {
					if _, sa := tunnelIPsec(t, names[j]); suiteIs(sa.ChildSuite, s.esp) != nil {
						return fmt.Errorf("cgwd's Child SA suite %q", sa.ChildSuite)
					}
					if sas := aws.SAs(t); !hasSuiteLine(sas, "ESP:", s.charonESP) || !hasSuiteLine(sas, "/PRF_", s.charonIKE) {
						return fmt.Errorf("strongSwan's SAs:\n%s", sas)
					}
					return nil
				})
			}
			for _, peer := range []string{labkit.T1Peer, labkit.T2Peer} {
				if out, err := labkit.Ping(labkit.CGW, peer, 2); err != nil {
					t.Errorf("ping %s: %v\n%s", peer, err, out)
				}
			}
			log := labkit.Log()
			for j, s := range pair {
				checkDHWarning(t, log, names[j], "IKE", s.ike, true)
				checkDHWarning(t, log, names[j], "ESP PFS", s.esp, false)
			}
		})
	}
	t.Logf("%d suites in %s", len(matrixSuites), time.Since(start).Round(time.Second))

	// A suite mismatch is one log line naming both sides' values within a
	// few seconds, whichever side initiates. cgw-t1 still proposes the
	// last pair's first suite (IKE aes128-sha384-modp2048s224, which cgwd
	// prints with its implied PRF; ESP aes128-sha512-modp2048s224).
	if last := matrixSuites[len(matrixSuites)-2]; last.ike != "aes128-sha384-modp2048s224" {
		t.Fatalf("cgw-t1's last suite is %s; update the log patterns below", last.ike)
	}
	aws := labkit.Charon(1)
	for _, tc := range []struct{ name, env, log string }{
		{"IKESuiteMismatchNamedBothWays", "AWS_IKE_PROPOSALS=aes256-sha1-modp3072",
			`no IKE proposal in common with the peer: NO_PROPOSAL_CHOSEN.*tunnel=cgw-t1.*peer_proposals="?aes256-\S*sha1\S*-modp3072.*our_proposals="?aes128-\S*sha384\S*-modp2048s224`},
		{"ESPSuiteMismatchNamedBothWays", "AWS_ESP_PROPOSALS=aes256-sha1-modp3072",
			`no ESP proposal in common with the peer: NO_PROPOSAL_CHOSEN.*tunnel=cgw-t1.*peer_proposals="?aes256-sha1\S*.*our_proposals="?aes128-sha512`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			aws.Configure(t, tc.env)
			aws.TrySwanctl("--terminate", "--ike", "aws", "--timeout", "5")
			t0 := time.Now()
			go aws.TrySwanctl("--initiate", "--child", "aws", "--timeout", "5") // AWS initiates (startup action start)
			logMatches(t, 5*time.Second, "cgwd (responder) naming AWS's and its own proposals", tc.log)
			t.Logf("named after %s", time.Since(t0).Round(100*time.Millisecond))
		})
	}
	t.Run("InitiatorMismatchNamesOurs", func(t *testing.T) {
		// IKEv2's NO_PROPOSAL_CHOSEN carries no list: cgwd names its own and the cause.
		logMatches(t, 15*time.Second, "cgwd (initiator) naming its proposals",
			`peer rejected our proposals: NO_PROPOSAL_CHOSEN.*tunnel=cgw-t1.*our_ike_proposals="?aes128-\S*sha384\S*-modp2048s224`)
	})
	aws.Configure(t)
}

// checkDHWarning checks that cgwd logged the DH group of proposal p
// negotiated for sa ("IKE" or "ESP PFS") on tunnel as it should: weak for
// groups 2, 5 and 22, advised against (RFC 8247) for 23 and 24, nothing
// for the others.
func checkDHWarning(t *testing.T, log, tunnel, sa, p string, ike bool) {
	t.Helper()
	pr, err := proposal.Parse(p, ike)
	if err != nil {
		t.Fatal(err)
	}
	var g uint16
	for _, x := range pr.Transforms {
		if x.Type == proposal.TransformDH {
			g = x.ID
		}
	}
	want := ""
	switch {
	case proposal.WeakGroup(g):
		want = "weak Diffie-Hellman group negotiated"
	case g == 23 || g == 24:
		want = "Diffie-Hellman group negotiated that RFC 8247 advises against"
	}
	attr := sa // as slog's text handler writes it
	if strings.Contains(sa, " ") {
		attr = strconv.Quote(sa)
	}
	re := regexp.MustCompile(`msg="(weak )?Diffie-Hellman group negotiated[^"]*".* tunnel=` + tunnel + ` .*sa=` + regexp.QuoteMeta(attr) + ` group=(\d+)`)
	var got []string
	for _, m := range re.FindAllStringSubmatch(log, -1) {
		if m[2] == strconv.Itoa(int(g)) {
			got = append(got, m[0])
		}
	}
	switch {
	case want == "" && len(got) > 0:
		t.Errorf("%s: group %d in %s logged as %q", tunnel, g, sa, got[0])
	case want != "" && (len(got) == 0 || !strings.Contains(got[0], want)):
		t.Errorf("%s: group %d negotiated in %s without the log line %q (got %q)", tunnel, g, sa, want, got)
	}
}

// tunnelIPsec is a tunnel's status and SAs (empty until cgwd reports them).
func tunnelIPsec(t *testing.T, name string) (tunnel.Status, tunnel.IPsecStatus) {
	t.Helper()
	for _, tn := range labkit.Status(t).Tunnels {
		if tn.Name == name && tn.IPsec != nil {
			return tn, *tn.IPsec
		}
	}
	return tunnel.Status{}, tunnel.IPsecStatus{}
}

// t1Status is cgw-t1's status and its SAs (empty until cgwd reports them).
func t1Status(t *testing.T) (tunnel.Status, tunnel.IPsecStatus) {
	t.Helper()
	return tunnelIPsec(t, labkit.T1)
}

// suiteIs checks that the suite cgwd reports holds every transform of the
// configured proposal p (the report may add the PRF a non-AEAD IKE
// proposal implies).
func suiteIs(suite, p string) error {
	have := strings.Split(suite, "-")
	for _, x := range strings.Split(p, "-") {
		if !slices.Contains(have, x) {
			return fmt.Errorf("suite %q lacks %s of %s", suite, x, p)
		}
	}
	return nil
}

// hasSuiteLine reports whether a line of swanctl --list-sas containing
// marker ends in "/"+group.
func hasSuiteLine(sas, marker, group string) bool {
	for _, l := range strings.Split(sas, "\n") {
		if strings.Contains(l, marker) && strings.HasSuffix(strings.TrimSpace(l), "/"+group) {
			return true
		}
	}
	return false
}
