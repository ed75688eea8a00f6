package ike

import "testing"

func TestIKEKeysWipe(t *testing.T) {
	for _, s := range []suite{
		{encr: EncrAESGCM16, encrKeyBits: 128, prf: PRFHMACSHA256},
		{encr: EncrAESCBC, encrKeyBits: 256, prf: PRFHMACSHA512, integ: IntegHMACSHA512256},
	} {
		k, err := deriveIKEKeys(s, []byte("gir"), make([]byte, 16), make([]byte, 16), 1, 2, nil, prf{})
		if err != nil {
			t.Fatal(err)
		}
		keys := map[string][]byte{"SK_d": k.d, "SK_ai": k.ai, "SK_ar": k.ar, "SK_ei": k.ei, "SK_er": k.er, "SK_pi": k.pi, "SK_pr": k.pr}
		k.wipe()
		for name, b := range keys {
			for _, c := range b {
				if c != 0 {
					t.Fatalf("%v: %s not wiped", s, name)
				}
			}
		}
	}
	var none *ikeKeys
	none.wipe() // an SA that never got keys
}
