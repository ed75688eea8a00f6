package metrics

import (
	"testing"

	"github.com/cgwd/cgwd/pkg/control"
	"github.com/cgwd/cgwd/pkg/tunnel"
)

// TestIKEVersionInfo: an ipsec tunnel's IKE version in use is a label of
// cgwd_ipsec_ike_version_info, its version switches a counter.
func TestIKEVersionInfo(t *testing.T) {
	reg := NewRegistry(func() control.Status {
		return control.Status{
			VPN: []control.VPNStatus{{Name: "vpn1", Tunnels: []string{"cgw-t1"}}},
			Tunnels: []tunnel.Status{{Name: "cgw-t1", Kind: "ipsec",
				IPsec: &tunnel.IPsecStatus{IKEVersion: "ikev1", IKEVersionSwitches: 1}}},
		}
	})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				switch {
				case mf.GetName() == "cgwd_ipsec_ike_version_info" && l.GetName() == "version" && m.GetGauge().GetValue() == 1:
					got["version"] = l.GetValue()
				case mf.GetName() == "cgwd_ipsec_ike_version_switches_total" && l.GetName() == "tunnel" && m.GetCounter().GetValue() == 1:
					got["switches"] = l.GetValue()
				}
			}
		}
	}
	if got["version"] != "ikev1" || got["switches"] != "cgw-t1" {
		t.Errorf("got %v, want version ikev1 and one switch of cgw-t1", got)
	}
}
