package main

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testdata = "../../pkg/awsimport/testdata/"

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func noPSK(t *testing.T, what, s string) {
	t.Helper()
	if strings.Contains(s, "Secret_Key") {
		t.Fatalf("%s contains a pre-shared key:\n%s", what, s)
	}
}

func TestImportAWSRoundTrip(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runCLI("import-aws", testdata+"vgw.xml", "--out-dir", dir, "--prefix", "10.10.0.0/16", "--prefix", "10.20.0.0/16", "--local-address", "192.0.2.7")
	if code != 0 {
		t.Fatalf("import-aws: exit %d\n%s", code, errOut)
	}
	noPSK(t, "stdout", out)
	noPSK(t, "stderr", errOut)
	if !strings.Contains(errOut, "cgw-t1 -> 203.0.113.10, cgw-t2 -> 203.0.113.200") {
		t.Errorf("tunnel order not reported:\n%s", errOut)
	}
	cfg := filepath.Join(dir, "cgwd.yaml")
	code, out, errOut = runCLI("check-config", "-c", cfg)
	if code != 0 {
		t.Fatalf("check-config of the imported config: exit %d\n%s", code, errOut)
	}
	if out != cfg+": ok\n" {
		t.Fatalf("check-config said %q", out)
	}

	// A second import into the same directory is refused and changes nothing.
	before, _ := os.ReadFile(cfg)
	code, _, errOut = runCLI("import-aws", testdata+"terraform-output.json", "--format", "terraform", "--out-dir", dir, "--asn", "65001", "--local-address", "192.0.2.7")
	if code != exitFailure || !strings.Contains(errOut, "already exist(s); pass --force to overwrite") {
		t.Fatalf("overwrite without --force: exit %d\n%s", code, errOut)
	}
	if after, _ := os.ReadFile(cfg); !bytes.Equal(before, after) {
		t.Fatal("cgwd.yaml changed by a refused import")
	}
	code, _, errOut = runCLI("import-aws", "--force", testdata+"terraform-output.json", "--format", "terraform", "--out-dir", dir, "--asn", "65001", "--local-address", "192.0.2.7")
	if code != 0 {
		t.Fatalf("--force: exit %d\n%s", code, errOut)
	}
	if after, _ := os.ReadFile(cfg); !bytes.Contains(after, []byte("asn: 65001")) {
		t.Fatal("--force did not overwrite")
	}
}

func TestImportAWSAsdotASN(t *testing.T) {
	code, out, errOut := runCLI("import-aws", testdata+"terraform-output.json", "--format", "terraform", "--asn", "1.10", "--local-address", "192.0.2.7")
	if code != 0 || !strings.Contains(out, "asn: 65546\n") {
		t.Fatalf("--asn 1.10: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, _, errOut := runCLI("import-aws", testdata+"terraform-output.json", "--format", "terraform", "--asn", "1.65536"); code != exitUsage || !strings.Contains(errOut, `"1.65536" is not an ASN`) {
		t.Fatalf("--asn 1.65536: exit %d\n%s", code, errOut)
	}
}

func TestImportAWSStdoutMissingFacts(t *testing.T) {
	code, out, errOut := runCLI("import-aws", testdata+"terraform-plain.json", "--format", "terraform", "--psk-dir", "/etc/cgwd/aws")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	noPSK(t, "stdout", out)
	noPSK(t, "stderr", errOut)
	if !strings.Contains(out, `psk_file: "/etc/cgwd/aws/cgw-t1.psk"`) {
		t.Fatalf("no psk_file reference:\n%s", out)
	}
	path := filepath.Join(t.TempDir(), "cgwd.yaml")
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI("check-config", "-skip-secrets", "-c", path)
	want := path + ": invalid:\n" +
		"  asn: is required (the customer gateway's ASN, e.g. 65000)\n" +
		"  line 6, column 11: prefixes: at least one on-prem prefix is required\n" +
		"  line 12, column 26: vpn[0].tunnels[0].outside.local: is required\n" +
		"  line 25, column 26: vpn[0].tunnels[1].outside.local: is required\n"
	if code != exitUsage || errOut != want {
		t.Fatalf("check-config: exit %d\n%s\nwant\n%s", code, errOut, want)
	}
}

func TestImportAWSErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{testdata + "bad/billion-laughs.xml"}, "<!DOCTYPE is not allowed"},
		{[]string{testdata + "bad/psk-illegal.xml"}, "ike.pre_shared_key: has a character AWS does not allow"},
		{[]string{testdata + "bad/reserved-inside.xml"}, "169.254.3.0/30 is in a range AWS reserves"},
		{[]string{testdata + "vgw.xml", "--prefix", "10.10.0.1/16"}, "has host bits set (did you mean 10.10.0.0/16?)"},
		{[]string{testdata + "vgw.xml", "--local-address", "2001:db8::1"}, "is not an IPv4 address"},
		{[]string{testdata + "vgw.xml", "extra"}, "want exactly one FILE, got 2"},
		{[]string{}, "want exactly one FILE, got 0"},
		{[]string{"/nonexistent.xml"}, "no such file or directory"},
	} {
		code, out, errOut := runCLI(append([]string{"import-aws"}, tc.args...)...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr\n%s\nwant it to contain %q", tc.args, code, errOut, tc.want)
		}
		if out != "" {
			t.Errorf("%v: printed %q", tc.args, out)
		}
		noPSK(t, "stderr", errOut)
	}
}

func TestImportAWSInputShapes(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	xml, err := os.ReadFile(testdata + "vgw.xml")
	if err != nil {
		t.Fatal(err)
	}
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	_, _ = zw.Write(xml)
	_ = zw.Close()
	gzPath := write("vgw.xml.gz", zb.Bytes())

	// gzip is decompressed; the XML's IKEv1 parameters give a warning, not an error.
	code, out, errOut := runCLI("import-aws", gzPath, "--prefix", "10.10.0.0/16")
	if code != 0 || !strings.Contains(out, "vpn:") {
		t.Errorf("gzip: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "warning: the XML's ike parameters (mode main) are IKEv1's, but it does not say which IKE versions") ||
		!strings.Contains(errOut, "for a tunnel restricted to ikev1 set ike_version: 1") {
		t.Errorf("no IKEv1 warning:\n%s", errOut)
	}
	noPSK(t, "stdout", out)
	noPSK(t, "stderr", errOut)
	if _, _, errOut := runCLI("import-aws", testdata+"terraform-output.json", "--asn", "65001"); strings.Contains(errOut, "IKEv1") {
		t.Errorf("IKEv1 warning for terraform input:\n%s", errOut)
	}

	empty := write("empty.xml", nil)
	huge := write("huge.xml", append(xml, bytes.Repeat([]byte(" "), 2<<20)...))
	tfText := write("tf.txt", []byte("tunnel1_address = \"203.0.113.200\"\ntunnel1_preshared_key = <sensitive>\n"))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{empty}, "import-aws: " + empty + " is empty\n"},
		{[]string{huge}, "import-aws: " + huge + " is larger than 1 MiB (1048576 bytes), the most accepted"},
		{[]string{tfText}, "this is the text of `terraform output`"},
		{[]string{tfText, "--format", "terraform"}, "use `terraform output -json` instead"},
	} {
		code, out, errOut := runCLI(append([]string{"import-aws"}, tc.args...)...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr\n%s\nwant it to contain %q", tc.args, code, errOut, tc.want)
		}
		if out != "" {
			t.Errorf("%v: printed %q", tc.args, out)
		}
	}
}

func TestImportAWSOutDirParentMissing(t *testing.T) {
	base := t.TempDir()
	out := filepath.Join(base, "etc-typo", "cgwd")
	code, stdout, errOut := runCLI("import-aws", testdata+"vgw.xml", "--out-dir", out, "--prefix", "10.10.0.0/16")
	if code != exitFailure || !strings.Contains(errOut, "its parent "+filepath.Join(base, "etc-typo")+" does not exist; create it first") {
		t.Fatalf("exit %d\n%s%s", code, stdout, errOut)
	}
	if _, err := os.Stat(filepath.Join(base, "etc-typo")); !os.IsNotExist(err) {
		t.Fatalf("parent of --out-dir was created (%v)", err)
	}
}
