package config

import (
	"fmt"

	"github.com/cgwd/cgwd/pkg/proposal"
)

// ike_version any: IKEv2 first, IKEv1 when the peer speaks only that (the
// engine's any.go). Both versions take their proposals from the same
// lists; IKEv1 uses the AES-CBC entries of ike_proposals for phase 1 and
// every esp_proposals entry for phase 2.

// defaultAnyIKEProposals are an ike_version any tunnel's IKE proposals
// without ike_proposals: the IKEv2 default, then the IKEv1 one, so that
// the tunnel can fall back.
var defaultAnyIKEProposals = []string{proposal.DefaultIKE, DefaultIKEv1Proposal}

// anyFallbackProblem is why an ike_version any tunnel (with defaults
// applied) cannot fall back to IKEv1 and speaks IKEv2 only, or "".
func (c IPsec) anyFallbackProblem() string {
	if !v1Phase1Usable(c.IKEProposals) {
		return fmt.Sprintf("ike_version any cannot fall back to IKEv1: no ike_proposals entry can serve IKEv1 phase 1 "+
			"(it needs AES-CBC, e.g. %s; AES-GCM is IKEv2 only), so this tunnel speaks IKEv2 only", DefaultIKEv1Proposal)
	}
	return ""
}

// ikeAnyWarnings warns of ike_version any tunnels that cannot fall back
// to IKEv1.
func (c *Config) ikeAnyWarnings(w *validator) {
	for i, v := range c.VPN {
		for j, t := range v.Tunnels {
			if t.IPsec == nil {
				continue
			}
			ip := t.IPsec.WithDefaults()
			if ip.IKEVersion != IKEAny {
				continue
			}
			if p := ip.anyFallbackProblem(); p != "" {
				w.add(fmt.Sprintf("vpn[%d].tunnels[%d].ipsec.ike_version", i, j), "%s", p)
			}
		}
	}
}
