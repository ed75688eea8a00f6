package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// import-aws --diff: a config import-aws wrote from AWS's tunnel options
// matches (exit 0); one whose lifetime AWS no longer has gets the mismatch
// and its fix printed and exit 1.
func TestImportAWSDiff(t *testing.T) {
	dir := t.TempDir()
	file := testdata + "aws-cli-options.json"
	if code, _, errOut := runCLI("import-aws", file, "--out-dir", dir, "--prefix", "10.10.0.0/16"); code != 0 {
		t.Fatalf("import-aws: exit %d\n%s", code, errOut)
	}
	cfg := filepath.Join(dir, "cgwd.yaml")
	if code, out, errOut := runCLI("import-aws", file, "--diff", "-c", cfg); code != 0 || out != "" {
		t.Fatalf("diff of the fresh import: exit %d\n%s%s", code, out, errOut)
	}
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(data), "ike_lifetime: 14400s", "ike_lifetime: 28800s", 1)
	if edited == string(data) {
		t.Fatalf("no cgw-t2 lifetime in\n%s", data)
	}
	if err := os.WriteFile(cfg, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI("import-aws", file, "--diff", "-c", cfg)
	if code != 1 || strings.TrimSpace(out) != "cgw-t2: ike_lifetime is 28800s, AWS says 14400s; fix: ike_lifetime: 14400s" {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runCLI("import-aws", file, "--diff"); code != exitUsage || !strings.Contains(errOut, "-c CONFIG") {
		t.Errorf("--diff without -c: exit %d %s", code, errOut)
	}
}
