package ike

import "testing"

func TestSelectProposal(t *testing.T) {
	aws1, _ := ParseProposal("aes128-aes256-sha1-sha256-sha384-sha512-modp2048-ecp384", true)
	aws2, _ := ParseProposal("aes128gcm16-aes256gcm16-prfsha256-prfsha384-modp2048-ecp384", true)
	ours, _ := ParseProposal(DefaultIKEProposal, true)
	c, ok := selectProposal([]Proposal{aws1, aws2}, []Proposal{ours}, true)
	if !ok || c.String() != "aes256gcm16-prfsha384-ecp384" {
		t.Fatalf("chose %v %v", c, ok)
	}
	weak, _ := ParseProposal("aes128-sha1-modp1024", true)
	if _, ok := selectProposal([]Proposal{aws1, aws2}, []Proposal{weak}, true); ok {
		t.Fatal("modp1024 accepted")
	}
	if !weak.WeakDH() || ours.WeakDH() {
		t.Fatal("WeakDH wrong")
	}
	for _, bad := range []string{"aes256gcm16-sha256-prfsha256-ecp384", "aes256-ecp384", "aes256gcm16-ecp384", "aes128-aes128gcm16-sha1-ecp256", "des-sha1-modp2048", ""} {
		if _, err := ParseProposal(bad, true); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
