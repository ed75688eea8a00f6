package proposal

import (
	"strings"
	"testing"
)

func TestParseAndString(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ike  bool
		want string
	}{
		{DefaultIKE, true, "aes256gcm16-prfsha384-ecp384"},
		{DefaultESP, false, "aes256gcm16-ecp384-noesn"},
		{"AES128-sha256-modp2048", true, "aes128-prfsha256-sha256-modp2048"},
		{"aes128-aes256-sha1-sha256-modp2048-ecp384", true, "aes128-aes256-prfsha1-prfsha256-sha1-sha256-modp2048-ecp384"},
		{"aes256-sha256", false, "aes256-sha256-noesn"},
	} {
		p, err := Parse(tc.in, tc.ike)
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		if p.String() != tc.want {
			t.Errorf("%q: %q, want %q", tc.in, p.String(), tc.want)
		}
		if want := map[bool]uint8{true: ProtoIKE, false: ProtoESP}[tc.ike]; p.Protocol != want {
			t.Errorf("%q: protocol %d", tc.in, p.Protocol)
		}
	}
}

func TestParseErrorsNameTheProblem(t *testing.T) {
	for in, want := range map[string]string{
		"aes256-sha256":                       "IKE needs a DH group",
		"aes256gcm16-sha256-prfsha256-ecp384": "AES-GCM takes no integrity algorithm",
		"aes256-ecp384":                       "AES-CBC needs an integrity algorithm",
		"aes256gcm16-ecp384":                  "AES-GCM needs a prf",
		"aes128-aes128gcm16-sha1-ecp256":      "mixes AEAD",
		"des-sha1-modp2048":                   `unknown algorithm "des"`,
		"":                                    "unknown algorithm",
	} {
		if _, err := Parse(in, true); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}

func TestWeakDH(t *testing.T) {
	for _, name := range []string{"modp1024", "modp1536", "modp1024s160"} {
		if weak, err := Parse("aes128-sha1-"+name, true); err != nil || !weak.WeakDH() {
			t.Errorf("%s: not weak (%v)", name, err)
		}
	}
	for _, name := range []string{"modp2048", "modp8192", "modp2048s224", "modp2048s256", "ecp256"} {
		if p, err := Parse("aes128-sha1-"+name, false); err != nil || p.WeakDH() {
			t.Errorf("%s: weak (%v)", name, err)
		}
	}
	if p, _ := Parse(DefaultIKE, true); p.WeakDH() {
		t.Fatal("default is weak")
	}
}

// TestGroupNames: strongSwan's name for every group AWS offers, and back.
func TestGroupNames(t *testing.T) {
	want := map[uint16]string{2: "modp1024", 5: "modp1536", 14: "modp2048", 15: "modp3072", 16: "modp4096",
		17: "modp6144", 18: "modp8192", 19: "ecp256", 20: "ecp384", 21: "ecp521",
		22: "modp1024s160", 23: "modp2048s224", 24: "modp2048s256"}
	for g, name := range want {
		p, err := Parse("aes256gcm16-"+name, false)
		if GroupName(g) != name || err != nil || p.Transforms[1] != (Transform{Type: TransformDH, ID: g}) {
			t.Errorf("group %d: %q, %v, %v", g, GroupName(g), err, p.Transforms)
		}
	}
	if GroupName(1) != "" || GroupName(31) != "" {
		t.Error("names a group cgwd does not speak")
	}
}
