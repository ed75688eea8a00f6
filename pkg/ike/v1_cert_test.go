package ike

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/certauth"
	"github.com/cgwd/cgwd/pkg/certauth/certtest"
	"github.com/cgwd/cgwd/pkg/ike/wire"
	"github.com/cgwd/cgwd/pkg/ike/wire1"
)

// v1CertCfg is an IKEv1 tunnel authenticating with c.
func v1CertCfg(local, remote string, c *certauth.Creds, remoteID string, initiate bool) Config {
	x := cfg(local, remote, "", "aes256-sha256-modp2048", "aes256gcm16", initiate)
	x.PSK, x.Cert, x.RemoteCertID = nil, c, remoteID
	return x
}

// Two IKEv1 sessions authenticate with certificates: RSA signatures (3)
// with a chain through the intermediate, and ECDSA-256 (9). Each logs the
// other's certificate and method; main mode messages 5 and 6 carry the
// chains and the ID is the certificate's DN; messages 3 and 4 ask for
// certificates of the trust anchors.
func TestV1CertEstablishes(t *testing.T) {
	p := newTestPKI(t)
	for _, tc := range []struct {
		name   string
		ecdsa  bool
		method string
	}{{"rsa", false, "auth_method=3"}, {"ecdsa", true, "auth_method=9"}} {
		t.Run(tc.name, func(t *testing.T) {
			cgw := certtest.Issue(t, certtest.Spec{CN: "cgw.lab", DNS: []string{"cgw.lab"}, ECDSA: tc.ecdsa}, p.inter)
			aws := certtest.Issue(t, certtest.Spec{CN: "aws.lab", DNS: []string{"aws.lab"}, ECDSA: tc.ecdsa}, p.root)
			var la, lb syncBuf
			ci := v1CertCfg("198.51.100.2", "203.0.113.10", creds(cgw, p.root, p.inter), "CN=aws.lab, O=cgwd lab", true)
			cr := v1CertCfg("203.0.113.10", "198.51.100.2", creds(aws, p.root), "cgw.lab", false)
			ci.Logger, cr.Logger = slog.New(slog.NewTextHandler(&la, nil)), slog.New(slog.NewTextHandler(&lb, nil))
			a, b := v1pair(t, ci, cr)
			waitFor(t, 10*time.Second, "IKEv1 Child SA up", func() bool { return v1up(a, b) })
			if e := a.s.Status().LastError + b.s.Status().LastError; e != "" {
				t.Fatal(e)
			}
			for _, l := range []string{la.String(), lb.String()} {
				if !strings.Contains(l, `msg="peer authenticated by certificate"`) || !strings.Contains(l, tc.method) {
					t.Fatalf("want the peer's certificate and %s in\n%s", tc.method, l)
				}
			}
			if !strings.Contains(la.String(), `issuer="CN=Lab Root,O=cgwd lab"`) || !strings.Contains(lb.String(), `issuer="CN=Lab Intermediate,O=cgwd lab"`) {
				t.Fatalf("issuers:\n%s\n%s", la.String(), lb.String())
			}
			if st := a.s.Status(); st.Version != "ikev1" || st.State != "established" {
				t.Fatalf("status %+v", st)
			}
		})
	}
}

// The payloads of an IKEv1 certificate exchange as they cross: CR naming
// the trust anchor in message 3, ID_DER_ASN1_DN, both certificates of
// the chain and SIG (no HASH) in message 5, and the method in message 1.
func TestV1CertPayloads(t *testing.T) {
	p := newTestPKI(t)
	cgw := certtest.Issue(t, certtest.Spec{CN: "cgw.lab"}, p.inter)
	ci := v1CertCfg("198.51.100.2", "203.0.113.10", creds(cgw, p.root, p.inter), "", true)
	s, err := NewV1Session(ci, &v1link{}, &fakeDP{})
	if err != nil {
		t.Fatal(err)
	}
	sap := v1Phase1SA(s.p1, time.Hour)
	for _, tr := range sap.Proposals[0].Transforms {
		if su, _, ok := parseV1Transform(tr); !ok || su.auth != v1AuthRSASig {
			t.Fatalf("phase 1 transform %+v: auth %d", tr, su.auth)
		}
	}
	crs := s.v1CertReqs()
	if len(crs) != 1 || !bytes.Equal(crs[0].(*wire1.CertReq).CA, p.root.Cert.RawSubject) {
		t.Fatalf("CR payloads %+v", crs)
	}
	sa := &v1SA{initiator: true, suite: s.p1[0]}
	sa.keys, err = deriveV1Keys(sa.suite, nil, []byte("ni-ni-ni"), []byte("nr-nr-nr"), []byte("gxy"), []byte("gxi"), []byte("gxr"), 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := s.ourAuth(sa)
	if err != nil {
		t.Fatal(err)
	}
	first, chain := wire1.EncodeChain(ps)
	c, err := wire1.ParseChain(first, chain, false)
	if err != nil {
		t.Fatal(err)
	}
	m := collectMM(c)
	if m.id == nil || m.id.IDType != wire1.IDDN || !bytes.Equal(m.id.Data, cgw.Cert.RawSubject) || m.hash != nil || len(m.certs) != 2 || m.sig == nil {
		t.Fatalf("message 5 payloads: %+v", m)
	}
	if err := v1VerifySig(cgw.Cert, v1AuthRSASig, sa.keys.hashI(m.idBody), m.sig); err != nil {
		t.Fatal(err)
	}
}

// Each refusal names the problem with both sides' values, and the tunnel
// stays down: a peer from a CA cgwd does not trust, an expired one, one
// that is not remote_id, and a peer whose key is of another kind (IKEv1
// has both ends sign with one method).
func TestV1CertRefusals(t *testing.T) {
	p := newTestPKI(t)
	cgw := certtest.Issue(t, certtest.Spec{CN: "cgw.lab"}, p.root)
	aws := certtest.Issue(t, certtest.Spec{CN: "aws.lab", DNS: []string{"aws.lab"}}, p.root)
	expired := certtest.Issue(t, certtest.Spec{CN: "old.lab", From: time.Now().Add(-48 * time.Hour), To: time.Now().Add(-time.Hour)}, p.root)
	stranger := certtest.Issue(t, certtest.Spec{CN: "aws.lab"}, p.other)
	ec := certtest.Issue(t, certtest.Spec{CN: "aws.lab", ECDSA: true}, p.root)
	for _, tc := range []struct {
		name, remoteID string
		peer           *certauth.Creds
		want, wantArg  string
	}{
		{"wrong CA", "", creds(stranger, p.root), "peer's certificate not accepted",
			`(issuer "CN=Other Root,O=cgwd lab") does not verify to a CA of ca_file ("CN=Lab Root,O=cgwd lab")`},
		{"expired", "", creds(expired, p.root), "peer's certificate not accepted", `certificate "CN=old.lab,O=cgwd lab" expired at`},
		{"not remote_id", "CN=vpn.other", creds(aws, p.root), "peer's certificate is not remote_id's",
			`peer_subject=CN=aws.lab,O=cgwd lab peer_dns=[aws.lab] peer_addresses=[] remote_id=CN=vpn.other`},
		{"ECDSA peer", "", creds(ec, p.root), "proposals have nothing in common", "our_auth=ecdsa-256 peer_ike_proposals=aes256-prfsha256-modp2048 auth rsa-sig"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := v1pair(t, v1CertCfg("198.51.100.2", "203.0.113.10", creds(cgw, p.root), tc.remoteID, true),
				v1CertCfg("203.0.113.10", "198.51.100.2", tc.peer, "", false))
			s := a.s
			if tc.name == "ECDSA peer" {
				s = b.s // the responder finds no transform of its method
			}
			waitFor(t, 5*time.Second, "error", func() bool { return s.Status().LastError != "" })
			if e := s.Status().LastError; !strings.Contains(e, tc.want) || !strings.Contains(e, tc.wantArg) {
				t.Fatalf("error %q, want %q and %q", e, tc.want, tc.wantArg)
			}
			if v1up(a, b) || a.s.Status().State == "established" {
				t.Fatal("tunnel up")
			}
		})
	}
}

// A PSK tunnel and a certificate tunnel: the PSK end finds no transform
// with its method and says which methods each side has.
func TestV1CertPeerOfPSKTunnel(t *testing.T) {
	p := newTestPKI(t)
	cgw := certtest.Issue(t, certtest.Spec{CN: "cgw.lab"}, p.root)
	a, b := v1pair(t, v1CertCfg("198.51.100.2", "203.0.113.10", creds(cgw, p.root), "", true),
		cfg("203.0.113.10", "198.51.100.2", "k", "aes256-sha256-modp2048", "aes256gcm16", false))
	waitFor(t, 5*time.Second, "both name the mismatch", func() bool {
		return strings.Contains(b.s.Status().LastError, "our_auth=psk peer_ike_proposals=aes256-prfsha256-modp2048 auth rsa-sig") &&
			strings.Contains(a.s.Status().LastError, "NO-PROPOSAL-CHOSEN")
	})
}

// Signatures of every method verify with the signer's key only, over the
// hash signed only; a key of another kind than the method is named.
func TestV1SignAndVerify(t *testing.T) {
	hash := sha256.Sum256([]byte("HASH_I"))
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keys := []crypto.Signer{rsaKey}
	for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	for i, k := range keys {
		m, err := v1AuthMethod(Config{Cert: certauth.New(nil, k, nil)})
		if err != nil {
			t.Fatal(err)
		}
		if want := []uint16{v1AuthRSASig, v1AuthECDSA256, v1AuthECDSA384, v1AuthECDSA521}[i]; m != want {
			t.Fatalf("%s: method %d, want %d", keyName(k.Public()), m, want)
		}
		sig, err := signDigest(k, hash[:], 0, m == v1AuthRSASig)
		if err != nil {
			t.Fatal(err)
		}
		leaf := &x509.Certificate{PublicKey: k.Public()}
		if err := v1VerifySig(leaf, m, hash[:], sig); err != nil {
			t.Errorf("%s: %v", keyName(k.Public()), err)
		}
		if err := v1VerifySig(leaf, m, append(hash[:31:31], 0), sig); err == nil {
			t.Errorf("%s: a signature over another hash verifies", keyName(k.Public()))
		}
		other := keys[(i+1)%len(keys)]
		if err := v1VerifySig(&x509.Certificate{PublicKey: other.Public()}, m, hash[:], sig); err == nil {
			t.Errorf("%s: verifies with %s", keyName(k.Public()), keyName(other.Public()))
		}
	}
}

// ike_version any with certificates: against an IKEv1-only peer (which
// refuses IKE_SA_INIT as strongSwan does) the session falls back to IKEv1
// and authenticates with its certificate there.
func TestV1CertAnyFallsBack(t *testing.T) {
	p := newTestPKI(t)
	cgw := certtest.Issue(t, certtest.Spec{CN: "cgw.lab", ECDSA: true}, p.root)
	aws := certtest.Issue(t, certtest.Spec{CN: "aws.lab", ECDSA: true}, p.root)
	ca := v1CertCfg("192.0.2.1", "192.0.2.2", creds(cgw, p.root), "CN=aws.lab, O=cgwd lab", true)
	pair := newAnyPair(t, ca, v1Peer(v1CertCfg("192.0.2.2", "192.0.2.1", creds(aws, p.root), "", false)), wire.NNoProposalChosen)
	waitFor(t, 15*time.Second, "the IKEv1 Child SA", pair.up)
	if st := pair.a.Status(); st.Version != "ikev1" || st.LastError != "" {
		t.Fatalf("status: version %s, last error %q", st.Version, st.LastError)
	}
	if l := pair.logs.String(); !strings.Contains(l, `msg="peer authenticated by certificate"`) || !strings.Contains(l, "auth_method=9") {
		t.Fatalf("no IKEv1 certificate authentication in\n%s", l)
	}
}
