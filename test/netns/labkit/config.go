package labkit

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// An Edit rewrites the text of a cgwd config.
type Edit func(cfg string) (string, error)

// Replace replaces from, which must occur exactly once, with to.
func Replace(from, to string) Edit { return ReplaceN(from, to, 1) }

// ReplaceN replaces every from with to; from must occur exactly n times,
// or at least once when n < 0.
func ReplaceN(from, to string, n int) Edit {
	return func(cfg string) (string, error) {
		if c := strings.Count(cfg, from); c == 0 || (n >= 0 && c != n) {
			return "", fmt.Errorf("config edit: %q occurs %d times, want %d", from, c, n)
		}
		return strings.ReplaceAll(cfg, from, to), nil
	}
}

// ReplaceLast replaces the last from with to.
func ReplaceLast(from, to string) Edit {
	return func(cfg string) (string, error) {
		i := strings.LastIndex(cfg, from)
		if i < 0 {
			return "", fmt.Errorf("config edit: no %q", from)
		}
		return cfg[:i] + to + cfg[i+len(from):], nil
	}
}

// Cut removes the text from the first from up to (not including) the first
// to after it.
func Cut(from, to string) Edit {
	return func(cfg string) (string, error) {
		i, j := strings.Index(cfg, from), strings.Index(cfg, to)
		if i < 0 || j < i {
			return "", fmt.Errorf("config edit: no %q before %q", from, to)
		}
		return cfg[:i] + cfg[j:], nil
	}
}

// AppendUnless appends text unless the config already contains marker.
func AppendUnless(marker, text string) Edit {
	return func(cfg string) (string, error) {
		if strings.Contains(cfg, marker) {
			return cfg, nil
		}
		return cfg + text, nil
	}
}

// Edited returns the lab's cgwd.yaml with edits applied, leaving the file as it is.
func Edited(t testing.TB, edits ...Edit) string {
	t.Helper()
	return EditedFile(t, Config, edits...)
}

// EditedFile returns the config file at path with edits applied, leaving
// the file as it is.
func EditedFile(t testing.TB, path string, edits ...Edit) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return applyEdits(t, string(b), edits...)
}

// applyEdits returns text with edits applied, failing the test on an edit that does not apply.
func applyEdits(t testing.TB, text string, edits ...Edit) string {
	t.Helper()
	var err error
	for _, e := range edits {
		if text, err = e(text); err != nil {
			t.Fatal(err)
		}
	}
	return text
}

// EditConfig applies edits to the lab's cgwd.yaml; restore writes the file
// back as it was before.
func EditConfig(t testing.TB, edits ...Edit) (restore func()) {
	t.Helper()
	return EditFile(t, Config, edits...)
}

// EditFile applies edits to the config file at path (e.g. a box's of the
// HA lab); restore writes the file back as it was before.
func EditFile(t testing.TB, path string, edits ...Edit) (restore func()) {
	t.Helper()
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	writeConfig(t, path, EditedFile(t, path, edits...))
	return func() { writeConfig(t, path, string(old)) }
}

func writeConfig(t testing.TB, path, cfg string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// ECMP puts vpn1 in mode ecmp: both tunnels carry traffic at once.
var ECMP = Replace("  - name: vpn1\n", "  - name: vpn1\n    mode: ecmp\n")
