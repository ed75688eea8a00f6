package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckConfigReadsTheFileGiven: the file named as the argument is the
// one checked (it used to check /etc/cgwd/cgwd.yaml and could say "ok"
// for a file it never read), and stray arguments are refused.
func TestCheckConfigReadsTheFileGiven(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte(checkBase), 0o600)
	os.WriteFile(bad, []byte("asn: 0\n"), 0o600)

	if code, out, errOut := runCLI("check-config", good); code != exitOK || out != good+": ok\n" {
		t.Errorf("positional good file: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runCLI("check-config", bad); code != exitUsage || !strings.Contains(errOut, bad+": invalid") {
		t.Errorf("positional bad file: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := runCLI("check-config", "-c", good, bad); code != exitUsage || !strings.Contains(errOut, "two config files") {
		t.Errorf("-c good and bad: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := runCLI("check-config", good, bad); code != exitUsage || !strings.Contains(errOut, `unexpected argument "`+bad+`"`) {
		t.Errorf("two positional files: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := runCLI("check-config", good, "-skip-secrets"); code != exitOK {
		t.Errorf("flag after the file: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := runCLI("status", "tunnels", "t1", "extra"); code != exitUsage || !strings.Contains(errOut, "unexpected argument") {
		t.Errorf("status with arguments: exit %d\n%s", code, errOut)
	}
}

func TestHelpAndVersionExitZero(t *testing.T) {
	for _, args := range [][]string{{"check-config", "-h"}, {"run", "-h"}, {"status", "-h"}, {"run", "--help"}, {"import-aws", "-h"}} {
		if code, _, errOut := runCLI(args...); code != exitOK || !strings.Contains(errOut, "-c") {
			t.Errorf("%v: exit %d\n%s", args, code, errOut)
		}
	}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		if code, out, _ := runCLI(args...); code != exitOK || !strings.HasPrefix(out, "cgwd ") {
			t.Errorf("%v: exit %d, %q", args, code, out)
		}
	}
	if code, out, _ := runCLI("version", "-h"); code != exitOK || out != "usage: cgwd version\n" {
		t.Errorf("version -h: exit %d, %q", code, out)
	}
	if code, _, _ := runCLI("version", "x"); code != exitUsage {
		t.Errorf("version with an argument: exit %d", code)
	}
}
