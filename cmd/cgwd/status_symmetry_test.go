package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/control"
	"github.com/cgwd/cgwd/pkg/symmetry"
)

// Status names a path AWS sends on and cgwd does not use, and only that one.
func TestStatusNamesAsymmetricPaths(t *testing.T) {
	now := time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC)
	st := &control.Status{Symmetry: map[string]symmetry.State{
		"cgw-t1": {AWSSends: true, CgwdSends: true, RxPPS: 80, Since: now.Add(-time.Hour)},
		"cgw-t2": {AWSSends: true, RxPPS: 120, Since: now.Add(-90 * time.Second)},
		"dx1":    {CgwdSends: true, Since: now.Add(-time.Hour)},
	}}
	var b bytes.Buffer
	printAsymmetric(&b, st, now)
	out := b.String()
	if strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "asymmetric: AWS sends on cgw-t2 (120 packets/s), which cgwd does not use, for 1m30s") {
		t.Errorf("status says:\n%s", out)
	}
}
