package config

import (
	"strings"
	"testing"
)

// TestIKEAnyFallbackWarning: an ike_version any tunnel gets an IKEv1
// phase 1 proposal by default; one whose ike_proposals have none for
// IKEv1 is valid but warned of (it cannot fall back).
func TestIKEAnyFallbackWarning(t *testing.T) {
	anyv := IPsec{PSKFile: "/k", IKEVersion: IKEAny}
	if !v1Phase1Usable(anyv.WithDefaults().IKEProposals) {
		t.Fatalf("ike_version any's default IKE proposals %v have none for IKEv1", anyv.WithDefaults().IKEProposals)
	}
	for _, tc := range []struct {
		ike  []string
		warn bool
	}{
		{nil, false},
		{[]string{"aes256gcm16-prfsha384-ecp384", "aes256-sha256-modp2048"}, false},
		{[]string{"aes256gcm16-prfsha384-ecp384"}, true},
	} {
		ip := anyv
		for _, p := range tc.ike {
			ip.IKEProposals = append(ip.IKEProposals, NewIKEProposal(p))
		}
		v := &validator{}
		v.ipsec("x", &ip)
		if len(v.probs) != 0 {
			t.Errorf("%v: rejected: %v", tc.ike, v.probs)
		}
		c := &Config{VPN: []VPN{{Tunnels: []Tunnel{{IPsec: &ip}}}}}
		w := c.Warnings()
		got := len(w) == 1 && w[0].Field == "vpn[0].tunnels[0].ipsec.ike_version" && strings.Contains(w[0].Msg, "cannot fall back to IKEv1")
		if got != tc.warn || (!tc.warn && len(w) != 0) {
			t.Errorf("%v: warnings %v, want a fallback warning: %v", tc.ike, w, tc.warn)
		}
	}
}
