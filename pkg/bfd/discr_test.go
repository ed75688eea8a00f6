package bfd

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

func TestStableDiscr(t *testing.T) {
	old := bootID
	defer func() { bootID = old }()
	dir := t.TempDir()
	bootID = filepath.Join(dir, "boot_id")
	a, b, c := netip.MustParseAddr("169.254.255.2"), netip.MustParseAddr("169.254.255.1"), netip.MustParseAddr("169.254.10.1")
	if got := StableDiscr(a, b); got != 0 {
		t.Fatalf("no boot ID: %d, want 0 (random)", got)
	}
	if err := os.WriteFile(bootID, []byte("6f3c0f52-2d6b-4bd2-9a3e-2f51a0c2f0d1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := StableDiscr(a, b)
	if d == 0 || StableDiscr(a, b) != d {
		t.Fatalf("discriminator %d not stable", d)
	}
	if StableDiscr(a, c) == d {
		t.Error("two sessions share a discriminator")
	}
	if err := os.WriteFile(bootID, []byte("0b7d1c1e-7b8e-4e54-8f0e-5c1d2e3f4a5b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if StableDiscr(a, b) == d {
		t.Error("the discriminator survived a reboot")
	}
}
