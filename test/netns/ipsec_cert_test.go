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

// TestIPsecCertLab: cgwd and strongSwan (AWS's side) authenticate with
// certificates from a test CA made with strongSwan's pki at test start, as
// a customer gateway with an AWS Private CA certificate does. cgwd's RSA
// certificate chains to the root through an intermediate it sends; the
// tunnel comes up and a ping crosses (cgwd's IKE_AUTH going as RFC 7383
// fragments) with strongSwan on an ECDSA
// certificate (cgwd initiating) and on an RSA certificate under the
// intermediate (strongSwan initiating); an expired certificate and one
// from a CA cgwd does not trust are each named in one log line and the
// tunnel stays down. Last, both ends speak IKEv1 (strongSwan version = 1,
// cgwd ike_version: 1): main mode with RSA signatures, then with ECDSA
// P-256 leaves at both ends, then P-384 ones (cgwd initiating each time),
// then RSA with strongSwan initiating; each time the tunnel is up, in
// IKEv1 on both sides, and a ping crosses.
func TestIPsecCertLab(t *testing.T) {
	labkit.RequireStrongSwan(t)
	labkit.UpIPsec(t)
	labkit.LogOnFailure(t)
	pki := labkit.MakePKI(t)
	aws := labkit.Charon(1)

	upAndPing := func(t *testing.T) {
		t.Helper()
		labkit.Eventually(t, 30*time.Second, "cgw-t1 up", func() error {
			if st, _ := t1Status(t); st.State != tunnel.StateUp {
				b, _ := os.ReadFile(aws.LogFile())
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
	}
	// refused checks that cgwd names the problem in one line of its log
	// (matched by re) and that the tunnel is not up.
	refused := func(t *testing.T, offset int, what, re string) {
		t.Helper()
		labkit.Eventually(t, 20*time.Second, what, func() error {
			if l, _ := labkit.LogSince(t, offset); !regexp.MustCompile(re).MatchString(l) {
				return fmt.Errorf("not in cgwd's log yet")
			}
			return nil
		})
		if st, _ := t1Status(t); st.State == tunnel.StateUp {
			t.Fatalf("cgw-t1 up with a refused certificate")
		}
	}

	t.Run("CgwdInitiatesECDSAPeer", func(t *testing.T) {
		aws.Configure(t, pki.StrongSwanEnv(pki.AWSCert)...)
		labkit.RestartIPsec(t, pki.CgwdOpts())
		upAndPing(t)
		logMatches(t, 5*time.Second, "cgwd names the peer's certificate",
			`msg="peer authenticated by certificate".*tunnel=cgw-t1.*peer_subject="CN=aws.lab,O=cgwd lab,C=US" issuer="CN=Lab Root,O=cgwd lab,C=US"`)
		// cgwd's IKE_AUTH (two RSA certificates) passes 1280 bytes: it went
		// as RFC 7383 fragments, which strongSwan put together.
		b, _ := os.ReadFile(aws.LogFile())
		re := regexp.MustCompile(`received fragment #\d+ of (\d+), reassembled fragmented IKE message \((\d+) bytes\)`)
		m := re.FindSubmatch(b)
		if m == nil {
			t.Fatalf("strongSwan reassembled no fragments of cgwd's; its log ends:\n%s", tail(b, 1500))
		}
		t.Logf("strongSwan: %s", m[0])
	})

	t.Run("StrongSwanInitiatesThroughIntermediate", func(t *testing.T) {
		aws.Stop(t)
		labkit.RestartIPsec(t, pki.CgwdOpts()+";initiate: false")
		labkit.IPsecSh(t, append(pki.StrongSwanEnv(pki.AWSInterCert), "AWS_START_ACTION=start"), "start-charon", "1")
		upAndPing(t)
		logMatches(t, 5*time.Second, "cgwd verified the chain through the intermediate",
			`msg="peer authenticated by certificate".*tunnel=cgw-t1.*issuer="CN=Lab Intermediate,O=cgwd lab,C=US"`)
	})

	t.Run("ExpiredPeerCertificate", func(t *testing.T) {
		aws.Stop(t)
		labkit.IPsecSh(t, pki.StrongSwanEnv(pki.AWSExpired), "start-charon", "1")
		_, off := labkit.LogSince(t, 0)
		labkit.RestartIPsec(t, pki.CgwdOpts())
		refused(t, off, "cgwd names the expired certificate",
			`msg="peer's certificate not accepted \(AUTHENTICATION_FAILED\)".*tunnel=cgw-t1.*certificate \\"CN=aws.lab,O=cgwd lab,C=US\\" expired at 2021-01-01T00:00:00Z`)
	})

	t.Run("WrongCA", func(t *testing.T) {
		aws.Configure(t, pki.StrongSwanEnv(pki.AWSStranger)...)
		_, off := labkit.LogSince(t, 0)
		labkit.RestartIPsec(t, pki.CgwdOpts())
		refused(t, off, "cgwd names the untrusted CA",
			`msg="peer's certificate not accepted \(AUTHENTICATION_FAILED\)".*tunnel=cgw-t1.*\(issuer \\"CN=Other Root,O=cgwd lab,C=US\\"\) does not verify to a CA of ca_file \(\\"CN=Lab Root,O=cgwd lab,C=US\\"\)`)
	})

	t.Run("IKEv1", func(t *testing.T) {
		// IKEv1's main mode agrees on one method that both ends sign
		// with: both keys RSA (method 3), or both ECDSA on one curve
		// (P-256: 9, P-384: 10, RFC 4754).
		for _, tc := range []struct {
			name, awsCert, cgwdOpts string
			issuer, method          string // of strongSwan's certificate; cgwd's auth_method
			awsInitiates            bool
		}{
			{"RSA-CgwdInitiates", pki.AWSInterCert, pki.CgwdOpts(), "Lab Intermediate", "3", false},
			{"ECDSA-P256-CgwdInitiates", pki.AWSCert, pki.CgwdOptsECDSA(), "Lab Root", "9", false},
			{"ECDSA-P384-CgwdInitiates", pki.AWSP384Cert, pki.CgwdOptsP384(), "Lab Root", "10", false},
			{"RSA-StrongSwanInitiates", pki.AWSInterCert, pki.CgwdOpts() + ";initiate: false", "Lab Intermediate", "3", true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				// v1Env: strongSwan as an IKEv1 initiator offers only the
				// first algorithms of its lists, so they start with cgwd's.
				env := append(pki.StrongSwanEnv(tc.awsCert), v1Env...)
				role, charonSPIs := "initiator", `IKEv1, [0-9a-f]+_i [0-9a-f]+_r\*` // charon's own SPI starred
				if tc.awsInitiates {
					aws.Stop(t)
					labkit.RestartIPsec(t, tc.cgwdOpts+";ike_version: 1")
					labkit.IPsecSh(t, append(env, "AWS_START_ACTION=start"), "start-charon", "1")
					role, charonSPIs = "responder", `IKEv1, [0-9a-f]+_i\* [0-9a-f]+_r`
				} else {
					aws.Configure(t, env...)
					labkit.RestartIPsec(t, tc.cgwdOpts+";ike_version: 1")
				}
				upAndPing(t)
				if sas := aws.SAs(t); !regexp.MustCompile(charonSPIs).MatchString(sas) || !strings.Contains(sas, "INSTALLED") {
					t.Errorf("strongSwan shows no IKEv1 SAs with cgwd the %s (%s):\n%s", role, charonSPIs, sas)
				}
				// Only IKEv1 logs these (its session's log lines carry
				// ike_version=1); each row's cgwd starts a new log.
				logMatches(t, 5*time.Second, "cgwd's IKEv1 main mode as the "+role,
					`msg="ISAKMP SA established \(IKEv1 main mode\)".*tunnel=cgw-t1.*role=`+role)
				logMatches(t, 5*time.Second, "cgwd verified strongSwan's chain and signature (method "+tc.method+")",
					`msg="peer authenticated by certificate".*tunnel=cgw-t1.*ike_version=1.*peer_subject="CN=aws.lab,O=cgwd lab,C=US" issuer="CN=`+
						tc.issuer+`,O=cgwd lab,C=US".*auth_method=`+tc.method+`\b`)
			})
		}
	})
}
