package awsimport

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func gz(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestReadInput(t *testing.T) {
	good := read(t, "vgw.xml")
	got, err := ReadInput(bytes.NewReader(gz(t, good)))
	if err != nil || !bytes.Equal(got, good) {
		t.Fatalf("gzip input: err %v, same %v", err, bytes.Equal(got, good))
	}
	if got, err := ReadInput(bytes.NewReader(good)); err != nil || !bytes.Equal(got, good) {
		t.Fatalf("plain input: err %v", err)
	}
	for _, in := range [][]byte{nil, []byte(" \n\t\n"), gz(t, nil)} {
		if _, err := ReadInput(bytes.NewReader(in)); !errors.Is(err, ErrEmpty) {
			t.Errorf("%q: err = %v, want ErrEmpty", in, err)
		}
	}
	// The size named is the limit, not the number of bytes read.
	huge := bytes.Repeat([]byte(" "), 3*MaxInputSize)
	if _, err := ReadInput(bytes.NewReader(huge)); err == nil || err.Error() != "is larger than 1 MiB (1048576 bytes), the most accepted; an AWS VPN configuration is a few KiB" {
		t.Errorf("huge input: err = %v", err)
	}
	// A bomb: 4 KiB that expands to 64 MiB is stopped at the limit.
	bomb := gz(t, make([]byte, 64<<20))
	if len(bomb) > 1<<20 {
		t.Fatalf("bomb is %d bytes", len(bomb))
	}
	if _, err := ReadInput(bytes.NewReader(bomb)); err == nil || !strings.Contains(err.Error(), "decompresses to more than 1 MiB (1048576 bytes)") {
		t.Errorf("gzip bomb: err = %v", err)
	}
	if _, err := ReadInput(bytes.NewReader(gz(t, good)[:40])); err == nil || !strings.Contains(err.Error(), "gzip: ") {
		t.Errorf("truncated gzip: err = %v", err)
	}
}

func TestTerraformTextRefused(t *testing.T) {
	text := "tunnel1_address = \"203.0.113.200\"\ntunnel1_preshared_key = <sensitive>\ntunnel1_bgp_holdtime = 30\n"
	for _, f := range []string{FormatAuto, FormatTerraform} {
		_, err := Parse([]byte(text), f)
		if err == nil || !strings.Contains(err.Error(), "use `terraform output -json`") {
			t.Errorf("format %s: err = %v", f, err)
		}
	}
}

func TestIKEv1Notice(t *testing.T) {
	c, err := Parse(read(t, "vgw.xml"), FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	if n := c.IKEv1Notice(); !strings.Contains(n, "(mode main) are IKEv1's") || !strings.Contains(n, "set ike_version: 1") ||
		strings.Contains(n, "IKEv2 only") {
		t.Errorf("XML notice %q", n)
	}
	c, err = Parse(read(t, "terraform-output.json"), FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	if n := c.IKEv1Notice(); n != "" {
		t.Errorf("terraform notice %q", n)
	}
}

func TestWriteDirMissingParent(t *testing.T) {
	c, err := Parse(read(t, "vgw.xml"), FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	dir := filepath.Join(base, "typo", "cgwd")
	if _, err := WriteDir(dir, c, Options{}, false); err == nil || !strings.Contains(err.Error(), "does not exist; create it first") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(base, "typo")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("parent created: %v", err)
	}
	// DIR itself is created when its parent exists.
	if _, err := WriteDir(filepath.Join(base, "cgwd"), c, Options{}, false); err != nil {
		t.Fatal(err)
	}
}
