package labkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// PKI is a test CA made with strongSwan's pki tool (Debian's
// strongswan-pki) for certificate authentication in the IPsec lab: an
// ECDSA root, an RSA intermediate under it, a second root nobody trusts,
// and leaves. Every path is a PEM file in Dir; keys are mode 0600.
type PKI struct {
	Dir string
	// Root and Other are the two roots; Inter is Root's intermediate.
	Root, Inter, Other string
	// CgwCert (an RSA leaf under Inter) and CgwChain (it and Inter) with
	// CgwKey are cgwd's; CgwDN is its subject.
	CgwCert, CgwChain, CgwKey, CgwDN string
	// CgwECDSACert and CgwP384Cert are cgwd's other leaves, ECDSA P-256
	// and P-384 under Root with the subject CgwDN, for IKEv1, where both
	// ends sign with one method.
	CgwECDSACert, CgwP384Cert string
	// AWSCert (ECDSA P-256, under Root), AWSP384Cert (ECDSA P-384, under
	// Root), AWSInterCert (RSA, under Inter),
	// AWSExpired (under Root, expired in 2021) and AWSStranger (under
	// Other) are strongSwan's, each with the key of the same name and
	// ".key" in place of ".pem"; all have the subject AWSDN.
	AWSCert, AWSP384Cert, AWSInterCert, AWSExpired, AWSStranger, AWSDN string
}

// Key is the key file of a leaf certificate of p.
func (p *PKI) Key(cert string) string { return strings.TrimSuffix(cert, ".pem") + ".key" }

// MakePKI makes the lab's test CA in a new directory under State.
func MakePKI(t testing.TB) *PKI {
	t.Helper()
	RequireTools(t, "pki")
	dir := filepath.Join(State, "pki")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	const o = "C=US, O=cgwd lab, "
	p := &PKI{Dir: dir, CgwDN: o + "CN=cgw.lab", AWSDN: o + "CN=aws.lab"}
	f := func(name string) string { return filepath.Join(dir, name) }
	run := func(out string, args ...string) {
		t.Helper()
		cmd := exec.Command("pki", append(args, "--outform", "pem")...)
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("pki %v: %v", args, err)
		}
		if err := os.WriteFile(out, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	key := func(name, typ, size string) string {
		t.Helper()
		k := f(name + ".key")
		run(k, "--gen", "--type", typ, "--size", size)
		return k
	}
	self := func(name, dn string) string {
		t.Helper()
		k := key(name, "ecdsa", "256")
		run(f(name+".pem"), "--self", "--ca", "--lifetime", "30", "--in", k, "--type", "ecdsa", "--dn", dn)
		return f(name + ".pem")
	}
	issue := func(name, typ, size, ca, dn string, more ...string) string {
		t.Helper()
		k := key(name, typ, size)
		run(f(name+".pub"), "--pub", "--in", k, "--type", "priv")
		run(f(name+".pem"), append([]string{"--issue", "--in", f(name + ".pub"), "--type", "pub",
			"--cacert", ca, "--cakey", p.Key(ca), "--dn", dn}, more...)...)
		return f(name + ".pem")
	}
	p.Root = self("root", o+"CN=Lab Root")
	p.Other = self("other", o+"CN=Other Root")
	p.Inter = issue("inter", "rsa", "2048", p.Root, o+"CN=Lab Intermediate", "--ca", "--lifetime", "30")
	p.CgwCert = issue("cgw", "rsa", "2048", p.Inter, p.CgwDN, "--san", "cgw.lab", "--lifetime", "7")
	p.CgwECDSACert = issue("cgw-ecdsa", "ecdsa", "256", p.Root, p.CgwDN, "--san", "cgw.lab", "--lifetime", "7")
	p.CgwP384Cert = issue("cgw-p384", "ecdsa", "384", p.Root, p.CgwDN, "--san", "cgw.lab", "--lifetime", "7")
	p.AWSCert = issue("aws", "ecdsa", "256", p.Root, p.AWSDN, "--san", "aws.lab", "--lifetime", "7")
	p.AWSP384Cert = issue("aws-p384", "ecdsa", "384", p.Root, p.AWSDN, "--san", "aws.lab", "--lifetime", "7")
	p.AWSInterCert = issue("aws-inter", "rsa", "2048", p.Inter, p.AWSDN, "--san", "aws.lab", "--lifetime", "7")
	p.AWSExpired = issue("aws-old", "ecdsa", "256", p.Root, p.AWSDN, "--san", "aws.lab",
		"--not-before", "01.01.20 00:00:00", "--not-after", "01.01.21 00:00:00")
	p.AWSStranger = issue("aws-stranger", "ecdsa", "256", p.Other, p.AWSDN, "--san", "aws.lab", "--lifetime", "7")
	cert, err := os.ReadFile(p.CgwCert)
	if err != nil {
		t.Fatal(err)
	}
	inter, err := os.ReadFile(p.Inter)
	if err != nil {
		t.Fatal(err)
	}
	p.CgwChain = f("cgw-chain.pem")
	if err := os.WriteFile(p.CgwChain, append(cert, inter...), 0o600); err != nil {
		t.Fatal(err)
	}
	p.CgwKey = p.Key(p.CgwCert)
	return p
}

// StrongSwanEnv is ipsec.sh's environment for strongSwan authenticating
// with cert (one of p's AWS certificates) and trusting p's CAs.
func (p *PKI) StrongSwanEnv(cert string) []string {
	return []string{"AWS_AUTH=cert", "AWS_CERT=" + cert, "AWS_KEY=" + p.Key(cert),
		"AWS_CAS=" + p.Root + " " + p.Inter, "AWS_CGW_ID=" + p.CgwDN}
}

// CgwdOpts are cgwd's ipsec options (IPsecConfig) for certificate
// authentication with p.
func (p *PKI) CgwdOpts() string { return p.cgwdOpts(p.CgwChain, p.CgwKey) }

// CgwdOptsECDSA is CgwdOpts with cgwd's ECDSA leaf, CgwECDSACert.
func (p *PKI) CgwdOptsECDSA() string { return p.cgwdOpts(p.CgwECDSACert, p.Key(p.CgwECDSACert)) }

// CgwdOptsP384 is CgwdOpts with cgwd's ECDSA P-384 leaf, CgwP384Cert.
func (p *PKI) CgwdOptsP384() string { return p.cgwdOpts(p.CgwP384Cert, p.Key(p.CgwP384Cert)) }

func (p *PKI) cgwdOpts(cert, key string) string {
	return "cert_file: " + cert + ";key_file: " + key + ";ca_file: " + p.Root + `;remote_id: "` + p.AWSDN + `"`
}
