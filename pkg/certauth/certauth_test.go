package certauth_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/certauth"
	"github.com/cgwd/cgwd/pkg/certauth/certtest"
)

type pki struct {
	dir                 string
	root, inter, leaf   *certtest.Cert
	other, ecLeaf, peer *certtest.Cert
	rootFile, otherFile string
}

func newPKI(t *testing.T) *pki {
	p := &pki{dir: t.TempDir()}
	p.root = certtest.Issue(t, certtest.Spec{CN: "Lab Root", CA: true, ECDSA: true}, nil)
	p.inter = certtest.Issue(t, certtest.Spec{CN: "Lab Intermediate", CA: true, ECDSA: true}, p.root)
	p.leaf = certtest.Issue(t, certtest.Spec{CN: "cgw.lab", DNS: []string{"cgw.lab"}}, p.inter)
	p.ecLeaf = certtest.Issue(t, certtest.Spec{CN: "cgw-ec.lab", ECDSA: true}, p.root)
	p.peer = certtest.Issue(t, certtest.Spec{CN: "aws.lab", DNS: []string{"aws.lab"}, ECDSA: true}, p.inter)
	p.other = certtest.Issue(t, certtest.Spec{CN: "Other Root", CA: true, ECDSA: true}, nil)
	p.rootFile = certtest.WriteCerts(t, p.dir, "root.pem", p.root)
	p.otherFile = certtest.WriteCerts(t, p.dir, "other.pem", p.other)
	return p
}

func fieldOf(t *testing.T, err error) string {
	t.Helper()
	var fe *certauth.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v is not a FieldError", err)
	}
	return fe.Field
}

func TestLoad(t *testing.T) {
	p := newPKI(t)
	chain := certtest.WriteCerts(t, p.dir, "chain.pem", p.leaf, p.inter)
	key := certtest.WriteKey(t, p.dir, "key.pem", p.leaf)
	c, err := certauth.Load(chain, key, p.rootFile, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Chain) != 2 || len(c.CertReqData()) != 20 {
		t.Fatalf("chain %d, certreq %d bytes", len(c.Chain), len(c.CertReqData()))
	}
	ecCert := certtest.WriteCerts(t, p.dir, "ec.pem", p.ecLeaf)
	ecKey := certtest.WriteKey(t, p.dir, "ec.key", p.ecLeaf)
	if _, err := certauth.Load(ecCert, ecKey, p.rootFile, time.Now()); err != nil {
		t.Fatal("ECDSA:", err)
	}
	leafOnly := certtest.WriteCerts(t, p.dir, "leaf.pem", p.leaf)
	open := certtest.WriteKey(t, p.dir, "open.key", p.leaf)
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	expired := certtest.Issue(t, certtest.Spec{CN: "old", From: time.Now().Add(-48 * time.Hour), To: time.Now().Add(-time.Hour)}, p.root)
	for _, tc := range []struct {
		name, cert, key, ca, field, msg string
	}{
		{"missing cert", p.dir + "/nope.pem", key, p.rootFile, "cert_file", "no such file"},
		{"missing ca", chain, key, p.dir + "/nope.pem", "ca_file", "no such file"},
		{"key of another cert", chain, ecKey, p.rootFile, "key_file", "is not the private key"},
		{"key readable by others", chain, open, p.rootFile, "key_file", "group/other"},
		{"no intermediate", leafOnly, key, p.rootFile, "cert_file", "does not verify to a CA of ca_file"},
		{"wrong CA", chain, key, p.otherFile, "cert_file", `"CN=Other Root,O=cgwd lab"`},
		{"expired", certtest.WriteCerts(t, p.dir, "old.pem", expired), certtest.WriteKey(t, p.dir, "old.key", expired), p.rootFile, "cert_file", "expired at"},
		{"not a cert", key, key, p.rootFile, "cert_file", "holds no certificate"},
	} {
		_, err := certauth.Load(tc.cert, tc.key, tc.ca, time.Now())
		if err == nil {
			t.Errorf("%s: loaded", tc.name)
			continue
		}
		if f := fieldOf(t, err); f != tc.field || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v (field %s), want field %s and %q", tc.name, err, f, tc.field, tc.msg)
		}
		if strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Errorf("%s: error quotes the key: %v", tc.name, err)
		}
	}
	if _, err := certauth.Load(chain, key, p.rootFile, time.Now().Add(48*time.Hour)); err == nil || !strings.Contains(err.Error(), "expired at") {
		t.Errorf("two days later: %v", err)
	}
}

func TestVerifyPeer(t *testing.T) {
	p := newPKI(t)
	c, err := certauth.Load(certtest.WriteCerts(t, p.dir, "c.pem", p.ecLeaf), certtest.WriteKey(t, p.dir, "k.pem", p.ecLeaf), p.rootFile, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := c.VerifyPeer([][]byte{p.peer.Cert.Raw, p.inter.Cert.Raw}, time.Now())
	if err != nil || leaf.Subject.CommonName != "aws.lab" {
		t.Fatalf("chain through the intermediate: %v", err)
	}
	for name, tc := range map[string]struct {
		ders [][]byte
		now  time.Time
		msg  string
	}{
		"none":            {nil, time.Now(), "no certificate"},
		"no intermediate": {[][]byte{p.peer.Cert.Raw}, time.Now(), `issuer "CN=Lab Intermediate,O=cgwd lab"`},
		"expired":         {[][]byte{p.peer.Cert.Raw, p.inter.Cert.Raw}, time.Now().Add(72 * time.Hour), "expired at"},
		"garbage":         {[][]byte{{0x30, 1, 2}}, time.Now(), "does not parse"},
		"too long":        {make([][]byte, certauth.MaxPeerChain+1), time.Now(), "at most"},
		"too big":         {[][]byte{make([]byte, certauth.MaxCertLen+1)}, time.Now(), "at most"},
		"other CA":        {[][]byte{p.other.Cert.Raw}, time.Now(), "does not verify"},
	} {
		if _, err := c.VerifyPeer(tc.ders, tc.now); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want %q", name, err, tc.msg)
		}
	}
}

func TestIdentity(t *testing.T) {
	p := newPKI(t)
	leaf := p.peer.Cert
	if err := certauth.BindsID(leaf, certauth.IDDN, leaf.RawSubject); err != nil {
		t.Error(err)
	}
	if err := certauth.BindsID(leaf, certauth.IDFQDN, []byte("AWS.lab")); err != nil {
		t.Error(err)
	}
	if err := certauth.BindsID(leaf, certauth.IDFQDN, []byte("cgw.lab")); err == nil || !strings.Contains(err.Error(), `"cgw.lab"`) {
		t.Errorf("foreign FQDN: %v", err)
	}
	if err := certauth.BindsID(leaf, certauth.IDIPv4, []byte{10, 0, 0, 1}); err == nil {
		t.Error("address not in the certificate accepted")
	}
	for want, ok := range map[string]bool{
		"CN=aws.lab, O=cgwd lab": true, "O=cgwd lab, CN=aws.lab": true, "o=cgwd lab/cn=aws.lab": true,
		"CN=aws.lab": false, "CN=cgw.lab, O=cgwd lab": false, "aws.lab": true, "cgw.lab": false, "192.0.2.1": false,
	} {
		if got := certauth.MatchesRemoteID(leaf, want); got != ok {
			t.Errorf("remote_id %q: %v, want %v", want, got, ok)
		}
	}
}
