package config

import (
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/esp"
	"github.com/cgwd/cgwd/pkg/ike"
)

func TestIPsecDefaults(t *testing.T) {
	c := IPsec{PSKFile: "/k"}.WithDefaults()
	if c.IKEVersion != IKEv2 || *c.Initiate != true || *c.ForceEncap != true || c.ReplayWindow != 1024 ||
		time.Duration(c.IKELifetime) != 28800*time.Second || time.Duration(c.ChildLifetime) != 3600*time.Second ||
		time.Duration(c.DPDDelay) != 10*time.Second || time.Duration(c.DPDTimeout) != 30*time.Second ||
		c.IKEProposals[0].String() != "aes256gcm16-prfsha384-ecp384" || c.ESPProposals[0].String() != "aes256gcm16-ecp384" {
		t.Fatalf("defaults: %+v", c)
	}
	short := IPsec{ChildLifetime: Duration(30 * time.Second)}.WithDefaults()
	if time.Duration(short.RekeyMargin) != 10*time.Second {
		t.Fatalf("margin for a 30s child lifetime: %v", time.Duration(short.RekeyMargin))
	}
}

func TestIPsecValidation(t *testing.T) {
	f := false
	cases := []struct {
		c    IPsec
		want string
	}{
		{IPsec{PSKFile: "/k", IKEProposals: []IKEProposal{NewIKEProposal("aes256-sha256")}}, "x.ike_proposals[0]: proposal \"aes256-sha256\": IKE needs a DH group"},
		{IPsec{PSKFile: "/k", ESPProposals: []ESPProposal{NewESPProposal("aes256gcm16-sha1")}}, "x.esp_proposals[0]"},
		{IPsec{PSKFile: "/k", ReplayWindow: 100}, "x.replay_window: 100 is not a multiple of 64"},
		{IPsec{PSKFile: "/k", ForceEncap: &f}, "x.force_encap: must be true"},
		{IPsec{PSKFile: "/k", ChildLifetime: Duration(10 * time.Second)}, "x.child_lifetime"},
		{IPsec{PSKFile: "/k", DPDTimeout: Duration(5 * time.Second)}, "x.dpd_timeout"},
		{IPsec{PSKFile: "/k", RemoteID: NewAddr("aws.example")}, "x.remote_id"},
		{IPsec{PSKFile: "/k", CookieThreshold: -2}, "x.cookie_threshold: -2 is not in -1..10000"},
		{IPsec{PSKFile: "/k", IKEVersion: IKEv1, IKEProposals: []IKEProposal{NewIKEProposal("aes256gcm16-prfsha256-modp2048")}},
			"x.ike_proposals: IKEv1 needs an AES-CBC proposal for phase 1"},
		{IPsec{PSKFile: "/k", IKEVersion: "3"}, `x.ike_version: "3" is not 2, 1 or any`},
		{IPsec{PSKFile: "/k", HalfOpenLimit: 5000}, "x.half_open_limit: 5000 is not in 1..1024"},
	}
	for _, tc := range cases {
		v := &validator{}
		v.ipsec("x", &tc.c)
		if !strings.Contains(v.probs.Error(), tc.want) {
			t.Errorf("got %q, want %q", v.probs.Error(), tc.want)
		}
	}
	for _, ver := range []IKEVersion{"", IKEv2, IKEAny, IKEv1} {
		v := &validator{}
		v.ipsec("x", &IPsec{PSKFile: "/k", IKEVersion: ver})
		if len(v.probs) != 0 {
			t.Errorf("ike_version %q: %v", ver, v.probs)
		}
	}
	v := &validator{}
	ok := IPsec{PSKFile: "/k", IKEProposals: []IKEProposal{NewIKEProposal("aes128-aes256-sha1-sha256-modp2048-ecp384")}}
	v.ipsec("x", &ok)
	if len(v.probs) != 0 {
		t.Fatal(v.probs)
	}
}

// TestIPsecBoundsMatchTheEngines: config checks the bounds that the IKE
// engine and the ESP data path enforce, without importing them.
func TestIPsecBoundsMatchTheEngines(t *testing.T) {
	if DefaultReplayWindow != esp.DefaultWindow || MinReplayWindow != esp.MinWindow || MaxReplayWindow != esp.MaxWindow ||
		MaxHalfOpen != ike.MaxHalfOpenTotal {
		t.Fatalf("config bounds %d/%d..%d/%d differ from esp %d/%d..%d and ike %d", DefaultReplayWindow, MinReplayWindow,
			MaxReplayWindow, MaxHalfOpen, esp.DefaultWindow, esp.MinWindow, esp.MaxWindow, ike.MaxHalfOpenTotal)
	}
}
