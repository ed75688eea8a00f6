package metrics

import (
	"testing"

	"github.com/cgwd/cgwd/pkg/control"
	"github.com/cgwd/cgwd/pkg/tunnel"
	"github.com/prometheus/client_golang/prometheus"
)

// TestIKEFragmentsCounter: an ipsec tunnel's RFC 7383 fragment counts are
// exported by direction.
func TestIKEFragmentsCounter(t *testing.T) {
	reg := NewRegistry(func() control.Status {
		return control.Status{Tunnels: []tunnel.Status{{Name: "cgw-t1", Kind: tunnel.KindIPsec,
			IPsec: &tunnel.IPsecStatus{IKEFragments: map[string]uint64{"sent": 2, "fragmented": 1, "received": 5, "reassembled": 1}}}}}
	})
	got := byLabel(t, reg, "cgwd_ike_fragments_total", "direction")
	if got["sent"] != 2 || got["received"] != 5 || len(got) != 2 {
		t.Errorf("cgwd_ike_fragments_total = %v, want sent 2, received 5", got)
	}
}

// byLabel gathers reg and returns metric name's values (gauge or counter)
// by the value of its label.
func byLabel(t *testing.T, reg *prometheus.Registry, name, label string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label {
					got[l.GetValue()] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
				}
			}
		}
	}
	return got
}
