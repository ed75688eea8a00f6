package ike

import (
	"crypto/x509"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/certauth"
	"github.com/cgwd/cgwd/pkg/certauth/certtest"
	"github.com/cgwd/cgwd/pkg/ike/wire"
)

// testPKI is a root, an intermediate and leaves for both ends.
type testPKI struct {
	root, inter, other *certtest.Cert
}

func newTestPKI(t *testing.T) *testPKI {
	p := &testPKI{root: certtest.Issue(t, certtest.Spec{CN: "Lab Root", CA: true, ECDSA: true}, nil)}
	p.inter = certtest.Issue(t, certtest.Spec{CN: "Lab Intermediate", CA: true}, p.root)
	p.other = certtest.Issue(t, certtest.Spec{CN: "Other Root", CA: true, ECDSA: true}, nil)
	return p
}

// creds are credentials of leaf (with chain) trusting ca, built without
// files.
func creds(leaf *certtest.Cert, ca *certtest.Cert, chain ...*certtest.Cert) *certauth.Creds {
	certs := []*x509.Certificate{leaf.Cert}
	for _, x := range chain {
		certs = append(certs, x.Cert)
	}
	return certauth.New(certs, leaf.Key, []*x509.Certificate{ca.Cert})
}

func certCfg(local, remote string, c *certauth.Creds, remoteID string, initiate bool) Config {
	x := cfg(local, remote, "", DefaultIKEProposal, DefaultESPProposal, initiate)
	x.PSK, x.Cert, x.RemoteCertID = nil, c, remoteID
	return x
}

// Both ends authenticate with certificates: RSA and ECDSA leaves, with
// RFC 7427 signatures and with the classic methods (the peer not
// announcing SIGNATURE_HASH_ALGORITHMS), one chain through the
// intermediate, identities as DN and checked against remote_id.
func TestCertAuthEstablishes(t *testing.T) {
	p := newTestPKI(t)
	cgw := certtest.Issue(t, certtest.Spec{CN: "cgw.lab", DNS: []string{"cgw.lab"}}, p.inter)
	aws := certtest.Issue(t, certtest.Spec{CN: "aws.lab", DNS: []string{"aws.lab"}, ECDSA: true}, p.root)
	for _, tc := range []struct {
		name            string
		classic         bool
		method, method2 string // each side's log of the other's AUTH method
	}{{"rfc7427", false, "auth_method=14", "auth_method=14"}, {"classic", true, "auth_method=9", "auth_method=1"}} {
		t.Run(tc.name, func(t *testing.T) {
			var la, lb syncBuf
			ci := certCfg("198.51.100.2", "203.0.113.10", creds(cgw, p.root, p.inter), "CN=aws.lab, O=cgwd lab", true)
			cr := certCfg("203.0.113.10", "198.51.100.2", creds(aws, p.root), "cgw.lab", false)
			ci.Logger, cr.Logger = slog.New(slog.NewTextHandler(&la, nil)), slog.New(slog.NewTextHandler(&lb, nil))
			var tweak []func(*Session)
			if tc.classic {
				tweak = append(tweak, func(s *Session) { s.noSigHashes = true })
			}
			a, b := pairUp(t, ci, cr, tweak...)
			waitFor(t, 5*time.Second, "tunnel up", func() bool { return up(a, b) })
			if e := a.s.Status().LastError + b.s.Status().LastError; e != "" {
				t.Fatal(e)
			}
			if !strings.Contains(la.String(), tc.method) || !strings.Contains(lb.String(), tc.method2) {
				t.Fatalf("AUTH methods: want %s and %s in\n%s\n%s", tc.method, tc.method2, la.String(), lb.String())
			}
		})
	}
}

// Each refusal names the problem and both sides' values, and the tunnel
// stays down.
func TestCertAuthRefusals(t *testing.T) {
	p := newTestPKI(t)
	cgw := certtest.Issue(t, certtest.Spec{CN: "cgw.lab", ECDSA: true}, p.root)
	aws := certtest.Issue(t, certtest.Spec{CN: "aws.lab", DNS: []string{"aws.lab"}}, p.inter)
	expired := certtest.Issue(t, certtest.Spec{CN: "old.lab", From: time.Now().Add(-48 * time.Hour), To: time.Now().Add(-time.Hour)}, p.root)
	stranger := certtest.Issue(t, certtest.Spec{CN: "aws.lab", ECDSA: true}, p.other)
	good := creds(cgw, p.root)
	for _, tc := range []struct {
		name          string
		peer          Config
		remoteID      string
		want, wantArg string
	}{
		{"expired", certCfg("203.0.113.10", "198.51.100.2", creds(expired, p.root), "", false), "",
			"peer's certificate not accepted", `certificate "CN=old.lab,O=cgwd lab" expired at`},
		{"wrong CA", certCfg("203.0.113.10", "198.51.100.2", creds(stranger, p.root), "", false), "",
			"peer's certificate not accepted", `(issuer "CN=Other Root,O=cgwd lab") does not verify to a CA of ca_file ("CN=Lab Root,O=cgwd lab")`},
		{"chain without intermediate", certCfg("203.0.113.10", "198.51.100.2", creds(aws, p.root), "", false), "",
			"peer's certificate not accepted", `issuer "CN=Lab Intermediate,O=cgwd lab"`},
		{"not remote_id", certCfg("203.0.113.10", "198.51.100.2", creds(aws, p.root, p.inter), "", false), "CN=vpn.other",
			"peer's certificate is not remote_id's", `peer_subject=CN=aws.lab,O=cgwd lab`},
		{"peer uses a PSK", cfg("203.0.113.10", "198.51.100.2", "Xq7-some-psk", DefaultIKEProposal, DefaultESPProposal, false), "",
			"", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := pairUp(t, certCfg("198.51.100.2", "203.0.113.10", good, tc.remoteID, true), tc.peer)
			waitFor(t, 5*time.Second, "error", func() bool { return a.s.Status().LastError != "" })
			e := a.s.Status().LastError
			if !strings.Contains(e, tc.want) || !strings.Contains(e, tc.wantArg) || !strings.Contains(e, "AUTHENTICATION_FAILED") {
				t.Fatalf("error %q, want %q and %q", e, tc.want, tc.wantArg)
			}
			if up(a, b) {
				t.Fatal("tunnel up")
			}
		})
	}
}

// A tunnel with a PSK names a peer that authenticates with certificates,
// as responder and as initiator.
func TestPSKTunnelNamesCertPeer(t *testing.T) {
	p := newTestPKI(t)
	cgw := certtest.Issue(t, certtest.Spec{CN: "cgw.lab", ECDSA: true}, p.root)
	const want = "peer authenticates with certificates, this tunnel with a pre-shared key (AUTHENTICATION_FAILED)"
	for _, certInitiates := range []bool{true, false} {
		c := certCfg("198.51.100.2", "203.0.113.10", creds(cgw, p.root), "", certInitiates)
		k := cfg("203.0.113.10", "198.51.100.2", "Xq7-some-psk", DefaultIKEProposal, DefaultESPProposal, !certInitiates)
		a, b := pairUp(t, c, k)
		if !certInitiates {
			// The PSK end initiates; the certificate end refuses its
			// AUTH before sending one of its own.
			waitFor(t, 5*time.Second, "cert end's error", func() bool { return a.s.Status().LastError != "" })
			if e := a.s.Status().LastError; !strings.Contains(e, "peer authenticates with a pre-shared key, this tunnel with certificates") {
				t.Fatalf("certificate end: %q", e)
			}
			continue
		}
		waitFor(t, 5*time.Second, "error", func() bool { return b.s.Status().LastError != "" })
		// Classic ECDSA (9): a PSK end announces no signature hashes.
		if e := b.s.Status().LastError; !strings.Contains(e, want) || !strings.Contains(e, "peer_auth_method=9") {
			t.Fatalf("PSK end: %q", e)
		}
	}
}

// cgwd as responder refuses an initiator whose certificate does not
// verify, answering AUTHENTICATION_FAILED.
func TestCertAuthResponderRefuses(t *testing.T) {
	p := newTestPKI(t)
	cgw := certtest.Issue(t, certtest.Spec{CN: "cgw.lab", ECDSA: true}, p.root)
	stranger := certtest.Issue(t, certtest.Spec{CN: "aws.lab"}, p.other)
	a, b := pairUp(t, certCfg("198.51.100.2", "203.0.113.10", creds(stranger, p.other), "", true),
		certCfg("203.0.113.10", "198.51.100.2", creds(cgw, p.root), "", false))
	waitFor(t, 5*time.Second, "errors", func() bool {
		return strings.Contains(b.s.Status().LastError, "does not verify to a CA of ca_file") &&
			strings.Contains(a.s.Status().LastError, "AUTHENTICATION_FAILED")
	})
	if up(a, b) {
		t.Fatal("tunnel up")
	}
}

func TestSignAndVerifyAuth(t *testing.T) {
	p := newTestPKI(t)
	octets := []byte("signed octets")
	for _, spec := range []certtest.Spec{{CN: "rsa"}, {CN: "ec", ECDSA: true}} {
		leaf := certtest.Issue(t, spec, p.root)
		for _, hashes := range [][]uint16{nil, {wire.HashSHA256}, {wire.HashSHA512}, {wire.HashSHA1}} {
			a, err := signAuth(leaf.Key, hashes, octets)
			if err != nil {
				t.Fatal(err)
			}
			if err := verifyAuth(leaf.Cert, a, octets); err != nil {
				t.Errorf("%s %v method %d: %v", spec.CN, hashes, a.Method, err)
			}
			if err := verifyAuth(leaf.Cert, a, []byte("other octets")); err == nil {
				t.Errorf("%s %v: a signature over other octets verifies", spec.CN, hashes)
			}
			if err := verifyAuth(p.root.Cert, a, octets); err == nil {
				t.Errorf("%s %v: verifies with another key", spec.CN, hashes)
			}
		}
	}
	leaf := certtest.Issue(t, certtest.Spec{CN: "rsa"}, p.root)
	for _, bad := range [][]byte{nil, {40}, {3, 0x30, 1, 0}, {2, 0x30, 0}} {
		if err := verifyAuth(leaf.Cert, &wire.Auth{Method: wire.AuthDigSig, Data: bad}, octets); err == nil {
			t.Errorf("%x verifies", bad)
		}
	}
}

// With certificate chains in IKE_AUTH over a small FragmentSize, both
// ends send their IKE_AUTH as RFC 7383 fragments, none over the size,
// and the tunnel comes up; a lost fragment is resent with the others.
func TestCertAuthSendsFragments(t *testing.T) {
	p := newTestPKI(t)
	cgw := certtest.Issue(t, certtest.Spec{CN: "cgw.lab"}, p.inter)
	aws := certtest.Issue(t, certtest.Spec{CN: "aws.lab"}, p.inter)
	ci := certCfg("198.51.100.2", "203.0.113.10", creds(cgw, p.root, p.inter), "", true)
	cr := certCfg("203.0.113.10", "198.51.100.2", creds(aws, p.root, p.inter), "", false)
	ci.FragmentSize, cr.FragmentSize = 576, 576
	lost := false
	loseFirst := func(s *Session) { // the initiator loses its first IKE_AUTH fragment
		if l := s.tr.(*link); s.cfg.Initiate {
			l.hold, l.only = true, func(h wire.Header) bool {
				if h.Exchange == wire.IKEAuth && !lost {
					lost = true
					return true
				}
				return false
			}
		}
	}
	a, b := pairUp(t, ci, cr, loseFirst)
	waitFor(t, 10*time.Second, "tunnel up", func() bool { return up(a, b) })
	for name, l := range map[string]*link{"initiator": a.link, "responder": b.link} {
		l.mu.Lock()
		frags := 0
		for _, d := range l.sent {
			if len(d) > 576-ikeOverhead {
				t.Errorf("%s sent a %d-byte datagram", name, len(d))
			}
			if wire.PayloadType(d[16]) == wire.PayloadSKF {
				frags++
			}
		}
		l.mu.Unlock()
		if frags < 4 {
			t.Errorf("%s sent %d fragments", name, frags)
		}
	}
	// Each end's status counts its IKE_AUTH sent as fragments and the
	// peer's reassembled.
	for name, s := range map[string]*Session{"initiator": a.s, "responder": b.s} {
		if f := s.Status().Fragments; f.Fragmented < 1 || f.Sent < 2 || f.Received < 2 || f.Reassembled < 1 {
			t.Errorf("%s's fragment counters: %+v", name, f)
		}
	}
	a.link.mu.Lock()
	defer a.link.mu.Unlock()
	if !lost {
		t.Error("no fragment lost")
	}
}
