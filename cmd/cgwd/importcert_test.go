package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cgwd/cgwd/pkg/certauth/certtest"
)

// A customer gateway with a private certificate, from each input kind:
// import-aws writes auth: cert and no PSK file; once the certificate, its
// key and the CA are where the config says, check-config (which loads
// them as run does) passes it, and --diff finds nothing against AWS.
func TestImportAWSCertificateGateway(t *testing.T) {
	for _, in := range []struct{ file, format string }{
		{"vgw-cert.xml", "xml"}, {"aws-cli-cert.json", "auto"}, {"terraform-cert.json", "terraform"},
	} {
		t.Run(in.file, func(t *testing.T) {
			dir := t.TempDir()
			pki := t.TempDir()
			root := certtest.Issue(t, certtest.Spec{CN: "Example Private Root", CA: true}, nil)
			sub := certtest.Issue(t, certtest.Spec{CN: "Example Subordinate", CA: true}, root)
			leaf := certtest.Issue(t, certtest.Spec{CN: "cgw.example", ECDSA: true}, sub)
			certtest.WriteCerts(t, dir, "cgw.pem", leaf, sub)
			certtest.WriteKey(t, dir, "cgw.key", leaf)
			ca := certtest.WriteCerts(t, pki, "aws-ca.pem", root)

			code, out, errOut := runCLI("import-aws", testdata+in.file, "--format", in.format, "--out-dir", dir,
				"--asn", "65000", "--local-address", "192.0.2.7", "--prefix", "10.10.0.0/16", "--ca-file", ca)
			if code != 0 {
				t.Fatalf("import-aws: exit %d\n%s", code, errOut)
			}
			if out != "wrote "+filepath.Join(dir, "cgwd.yaml")+"\n" {
				t.Errorf("wrote %q, want only the config", out)
			}
			if !strings.Contains(errOut, "authenticates with a private certificate") || !strings.Contains(errOut, filepath.Join(dir, "cgw.key")+" (mode 0600)") {
				t.Errorf("no certificate hint:\n%s", errOut)
			}
			cfg := filepath.Join(dir, "cgwd.yaml")
			yml, err := os.ReadFile(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(yml), "auth: cert") || strings.Contains(string(yml), "psk_file") {
				t.Errorf("config:\n%s", yml)
			}
			if code, out, errOut := runCLI("check-config", "-c", cfg); code != 0 || out != cfg+": ok\n" {
				t.Fatalf("check-config: exit %d %q\n%s\n%s", code, out, errOut, yml)
			}
			if code, out, errOut := runCLI("import-aws", testdata+in.file, "--format", in.format, "--diff", "-c", cfg); code != 0 || out != "" {
				t.Errorf("--diff of the fresh import: exit %d\n%s%s", code, out, errOut)
			}
			// A config that still uses a PSK is named with the fix.
			pskCfg := filepath.Join(t.TempDir(), "cgwd.yaml")
			if code, _, errOut := runCLI("import-aws", testdata+"vgw.xml", "--out-dir", filepath.Dir(pskCfg), "--prefix", "10.10.0.0/16"); code != 0 {
				t.Fatalf("import-aws vgw.xml: exit %d\n%s", code, errOut)
			}
			code, out, _ = runCLI("import-aws", testdata+in.file, "--format", in.format, "--diff", "-c", pskCfg)
			if code != 1 || !strings.Contains(out, "cgw-t1: auth is psk, AWS says cert (a private certificate, no pre-shared key); fix: auth: cert") {
				t.Errorf("--diff of a PSK config: exit %d\n%s", code, out)
			}
		})
	}
	if code, _, errOut := runCLI("import-aws", testdata+"vgw-cert.xml", "--cert-file", "cgw.pem"); code != exitUsage || !strings.Contains(errOut, `"cgw.pem" is not an absolute path`) {
		t.Errorf("relative --cert-file: exit %d\n%s", code, errOut)
	}
}
