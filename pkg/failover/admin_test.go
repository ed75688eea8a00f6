package failover

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestAdminDownMovesTrafficAndBack: a path the operator takes down is not
// usable whatever its health and BGP say, traffic moves as on a failure, and
// put back it carries traffic at once, without the hold-down.
func TestAdminDownMovesTrafficAndBack(t *testing.T) {
	m, fib, _ := start(t, time.Hour)
	m.BGPState("dx1", true)
	m.BGPState("cgw-t1", true)
	waitFor(t, "both paths usable", func() bool { return fib.is("dx1") && fib.is("cgw-t1") })
	ctx := context.Background()

	if err := m.SetAdminDown(ctx, "dx1", true); err != nil {
		t.Fatal(err)
	}
	if fib.is("dx1") || !fib.Active()["cgw-t1"] {
		t.Fatalf("after path down dx1: usable %v, active %v", fib.usable, fib.Active())
	}
	if st := m.Status()[0]; !st.AdminDown || st.Usable {
		t.Errorf("status of dx1 taken down: %+v", st)
	}
	if v, ok := failoverCount(t, m, "dx1", "cgw-t1", "admin-down"); !ok || v != 1 {
		t.Errorf("failover dx1 -> cgw-t1 for admin-down counted %v (%v)", v, ok)
	}
	// Its session coming up again does not put it back in service.
	m.BGPState("dx1", false)
	m.BGPState("dx1", true)
	waitFor(t, "events handled", func() bool { return len(m.ev) == 0 })
	if err := m.SetAdminDown(ctx, "cgw-t1", false); err != nil { // a no-op on a path in service
		t.Fatal(err)
	}
	if fib.is("dx1") {
		t.Fatal("a path taken down became usable when its BGP session came up")
	}

	if err := m.SetAdminDown(ctx, "dx1", false); err != nil {
		t.Fatal(err)
	}
	if !fib.is("dx1") || !fib.Active()["dx1"] {
		t.Fatalf("after path up dx1 (hold-down 1h): usable %v, active %v", fib.usable, fib.Active())
	}
	if st := m.Status()[0]; st.AdminDown || !st.Usable {
		t.Errorf("status of dx1 put back: %+v", st)
	}

	if err := m.SetAdminDown(ctx, "dx9", true); !errors.Is(err, ErrNoPath) {
		t.Errorf("unknown path: %v", err)
	}
}
