package metrics

import (
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/control"
	"github.com/cgwd/cgwd/pkg/drain"
	"github.com/cgwd/cgwd/pkg/failover"
)

// gauges gathers reg and returns the value of each unlabelled gauge by name.
func gauges(t *testing.T, st control.Status) map[string]float64 {
	t.Helper()
	mfs, err := NewRegistry(func() control.Status { return st }).Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if m := mf.GetMetric(); len(m) == 1 && m[0].GetGauge() != nil {
			out[mf.GetName()] = m[0].GetGauge().GetValue()
		}
	}
	return out
}

func TestDrainAndUsablePathGauges(t *testing.T) {
	paths := []failover.PathStatus{{Name: "dx1", Usable: true}, {Name: "cgw-t1", Usable: false}, {Name: "cgw-t2", Usable: true}}
	g := gauges(t, control.Status{Paths: paths, Drain: drain.Status{State: drain.Active}})
	if g["cgwd_drained"] != 0 || g["cgwd_drained_since_timestamp_seconds"] != 0 || g["cgwd_aws_paths_usable"] != 2 {
		t.Errorf("in service: %v", g)
	}
	since := time.Unix(1_800_000_000, 0)
	for _, s := range []drain.State{drain.Draining, drain.Drained} {
		g = gauges(t, control.Status{Drain: drain.Status{State: s, Since: since}})
		if g["cgwd_drained"] != 1 || g["cgwd_drained_since_timestamp_seconds"] != 1_800_000_000 || g["cgwd_aws_paths_usable"] != 0 {
			t.Errorf("%s: %v", s, g)
		}
	}
}
