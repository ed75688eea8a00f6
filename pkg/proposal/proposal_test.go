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
	weak, _ := Parse("aes128-sha1-modp1024", true)
	strong, _ := Parse(DefaultIKE, true)
	if !weak.WeakDH() || strong.WeakDH() {
		t.Fatal("WeakDH wrong")
	}
}
