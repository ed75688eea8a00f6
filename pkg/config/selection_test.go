package config

import (
	"strings"
	"testing"
)

// Preferences default to AWS's order (DX, static VPN, BGP VPN); a tunnel may
// be preferred over DX (a Private IP VPN over Direct Connect); 0 is refused
// by field.
func TestPreferenceDefaultsAndOverride(t *testing.T) {
	c, err := Parse([]byte(goodYAML))
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range c.VPN[0].Tunnels {
		if tn.Preference != PreferenceDynamicVPN {
			t.Errorf("tunnel %s preference %d, want %d", tn.Name, tn.Preference, PreferenceDynamicVPN)
		}
	}
	if p := c.DirectConnect[0].Preference; p != PreferenceDX {
		t.Errorf("DX preference %d, want %d", p, PreferenceDX)
	}
	if s := c.Failover.Symmetry; s.Interval != Duration(DefaultSymmetryInterval) || s.MinPPS != DefaultAWSSendsPPS {
		t.Errorf("symmetry defaults %+v", s)
	}

	c, err = parseEdited(t, "      - name: cgw-t1\n", "      - name: cgw-t1\n        preference: 400\n")
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Validate(); p != nil {
		t.Fatalf("preference 400 refused: %v", p)
	}
	if c.VPN[0].Tunnels[0].Preference != 400 || c.VPN[0].Tunnels[1].Preference != PreferenceDynamicVPN {
		t.Errorf("preferences %d, %d", c.VPN[0].Tunnels[0].Preference, c.VPN[0].Tunnels[1].Preference)
	}

	for _, bad := range []string{"0", "-1", "4294967296"} {
		c, err = parseEdited(t, "  - interface: dx0\n", "  - interface: dx0\n    preference: "+bad+"\n")
		if err != nil {
			t.Fatal(err)
		}
		p := c.Validate()
		if len(p) != 1 || p[0].Field != "direct_connect[0].preference" || !strings.Contains(p[0].Msg, "outside 1-4294967295") {
			t.Errorf("preference %s: problems %v", bad, p)
		}
	}
	c, err = parseEdited(t, "  - name: vpn1\n", "  - name: vpn1\n    follow_aws: true\n")
	if err != nil {
		t.Fatal(err)
	}
	if !c.VPN[0].FollowAWS {
		t.Error("follow_aws not set")
	}
}

func TestSymmetryBounds(t *testing.T) {
	c, err := Parse([]byte(goodYAML + "failover:\n  symmetry: {interval: 100ms, min_pps: -3}\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, p := range c.Validate() {
		got[p.Field] = true
	}
	if !got["failover.symmetry.interval"] || !got["failover.symmetry.min_pps"] {
		t.Errorf("problems %v", c.Validate())
	}
}

// A static connection's tunnels come before BGP ones, after DX (AWS's order).
func TestStaticVPNPreference(t *testing.T) {
	c, err := staticVPN(t, "    static_routes: [10.200.0.0/16]\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range c.VPN[0].Tunnels {
		if tn.Preference != PreferenceStaticVPN {
			t.Errorf("static tunnel %s preference %d, want %d", tn.Name, tn.Preference, PreferenceStaticVPN)
		}
	}
}
