package config

import "github.com/cgwd/cgwd/pkg/proposal"

// DefaultIKEv1Proposal is the phase 1 proposal of an ike_version 1 tunnel
// without ike_proposals: IKEv1 has no AEAD in phase 1, so the IKEv2
// default (AES-GCM) cannot serve.
const DefaultIKEv1Proposal = "aes256-sha384-ecp384"

// v1Phase1Usable reports whether some IKE proposal can be an IKEv1 phase
// 1 transform: AES-CBC with a PRF (its hash) and a DH group.
func v1Phase1Usable(ps []IKEProposal) bool {
	for _, p := range ps {
		if p.err != "" {
			continue
		}
		for _, t := range p.Proposal().Transforms {
			if t.Type == proposal.TransformEncr && t.ID == proposal.EncrAESCBC {
				return true
			}
		}
	}
	return false
}
