package metrics

import (
	"testing"

	"github.com/cgwd/cgwd/pkg/bgp"
	"github.com/cgwd/cgwd/pkg/control"
)

// TestBGPMD5ProblemGauge: 1 for a session cgwd names a TCP MD5 problem
// for, 0 for the others; the reason itself stays in the status.
func TestBGPMD5ProblemGauge(t *testing.T) {
	reg := NewRegistry(func() control.Status {
		return control.Status{BGP: []control.PeerStatus{
			{PeerStatus: bgp.PeerStatus{Name: "dx1", Address: "169.254.255.1", MD5: "bad signature from the peer"}},
			{PeerStatus: bgp.PeerStatus{Name: "cgw-t1", Address: "169.254.10.1", Up: true}},
		}}
	})
	got := byLabel(t, reg, "cgwd_bgp_md5_problem", "peer")
	if got["dx1"] != 1 || got["cgw-t1"] != 0 || len(got) != 2 {
		t.Errorf("cgwd_bgp_md5_problem = %v, want dx1 1, cgw-t1 0", got)
	}
}
