package ike

import (
	"bytes"
	"crypto/cipher"
	"encoding/hex"
	"testing"

	"github.com/cgwd/cgwd/pkg/ike/wire"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// HMAC known answers: RFC 2202 test case 2 (SHA-1) and RFC 4231 test case 2.
func TestPRFKnownAnswers(t *testing.T) {
	for _, tc := range []struct {
		id   uint16
		want string
	}{
		{PRFHMACSHA1, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"},
		{PRFHMACSHA256, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
		{PRFHMACSHA384, "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649"},
		{PRFHMACSHA512, "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"},
	} {
		got := prf{prfHash(tc.id)}.sum([]byte("Jefe"), []byte("what do ya want "), []byte("for nothing?"))
		if hex.EncodeToString(got) != tc.want {
			t.Errorf("prf %d: %x", tc.id, got)
		}
	}
}

// The expected values below were computed independently with Python's hmac
// module from RFC 7296's formulas (section 2.13, 2.14, 2.15, 2.17).
func TestPRFPlus(t *testing.T) {
	got := prf{prfHash(PRFHMACSHA1)}.plus([]byte("key"), []byte("seed"), 50)
	if hex.EncodeToString(got) != "0a4dd4d286ae93c5e1d24f24f3756216b533dd67ad15d19cef25f483bcc5300fd5487404a2c5000664d807a67dba048c69ac" {
		t.Fatalf("prf+ = %x", got)
	}
}

func TestKeyScheduleKnownAnswer(t *testing.T) {
	ni, nr := make([]byte, 32), make([]byte, 32)
	for i := range ni {
		ni[i], nr[i] = byte(i), byte(100+i)
	}
	gir := bytes.Repeat([]byte{0x55}, 48)
	s := suite{encr: EncrAESGCM16, encrKeyBits: 256, prf: PRFHMACSHA384, dh: 20}
	k, err := deriveIKEKeys(s, gir, ni, nr, 0x0102030405060708, 0x1112131415161718, nil, prf{})
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		got  []byte
		want string
	}{
		"SK_d":  {k.d, "3c92d83e90a4f776a9950974175ebd003d13409c9029f8719295ac4afd3a108226ad03353f0f2971be20f1fa6697cba7"},
		"SK_ei": {k.ei, "f1bfb5c25912bebe53935c0c7b5a0bcac8a7d42cd39b31801f59f3d968ed22fa8167a278"},
		"SK_er": {k.er, "613a323c417a8e1c76e129dbab393b796d20f8b232621e0baeac58a8fbd7ae0c77a3cef9"},
		"SK_pi": {k.pi, "5367eaf65671d9bd0538d59eb4b5694ca5de9c071a8f477af483fdf6beffed76f9597494bd0245063ddebf291d7b1045"},
		"SK_pr": {k.pr, "bb01ca02bd6b4a6a766c63a2a0e7fe4b2fc903a7975c938bc614e7c9dc1d6013dedd598af038ac859e3e94d3e9370ec6"},
	} {
		if hex.EncodeToString(c.got) != c.want {
			t.Errorf("%s = %x", name, c.got)
		}
	}
	if len(k.ai) != 0 || len(k.ar) != 0 {
		t.Error("AES-GCM IKE SA has SK_a keys")
	}
	iToR, rToI := childKeys(k, suite{encr: EncrAESGCM16, encrKeyBits: 256}, nil, ni, nr)
	want := "2dfc35c1e7c3a5d7c5fb1f8f86e67d2bd76f69150d9b689b69796bf4aa1a2ebf870c4b893b6f43f6ceb59b05a7e4d74d286f9f97508eb1c4d633f805727725706d178b8eab20eeda"
	if hex.EncodeToString(append(iToR, rToI...)) != want || len(iToR) != 36 {
		t.Errorf("KEYMAT = %x | %x", iToR, rToI)
	}
	auth := pskAuth(k.prf, []byte("lab-secret"), []byte("IKE_SA_INIT request bytes"), nr, k.pi, []byte{1, 0, 0, 0, 198, 51, 100, 2})
	if hex.EncodeToString(auth) != "2ffa3ccea08d01464f4d94ea86640ec9c7eae15f321ec897a3d407e6714c0b65dee1c828c5a0ae2c2c069f1965a1af70" {
		t.Errorf("AUTH = %x", auth)
	}
}

// RFC 3602 case 1 (AES-CBC-128) and the GCM specification's test case 3
// (AES-GCM-128), through the SK cipher's key handling.
func TestSKCipherKnownAnswers(t *testing.T) {
	c, err := newSKCipher(EncrAESCBC, unhex(t, "06a9214036b8a15b512e03d534120006"), IntegHMACSHA1_96, make([]byte, 20))
	if err != nil {
		t.Fatal(err)
	}
	ct := make([]byte, 16)
	cipher.NewCBCEncrypter(c.block, unhex(t, "3dafba429d9eb430b422da802c9fac41")).CryptBlocks(ct, []byte("Single block msg"))
	if hex.EncodeToString(ct) != "e353779c1079aeb82708942dbe77181a" {
		t.Errorf("AES-CBC = %x", ct)
	}
	// GCM: SK_e is key | 4-byte salt; the nonce is salt | 8-byte IV.
	g, err := newSKCipher(EncrAESGCM16, unhex(t, "feffe9928665731c6d6a8f9467308308cafebabe"), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	nonce := append(append([]byte(nil), g.salt...), unhex(t, "facedbaddecaf888")...)
	out := g.gcm.Seal(nil, nonce, unhex(t, "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255"), nil)
	want := "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985" + "4d5c2af327cd64a62cf35abd2ba6fab4"
	if hex.EncodeToString(out) != want {
		t.Errorf("AES-GCM = %x", out)
	}
}

func TestSKRoundTrip(t *testing.T) {
	for _, s := range []suite{
		{encr: EncrAESGCM16, encrKeyBits: 128, prf: PRFHMACSHA256},
		{encr: EncrAESCBC, encrKeyBits: 256, prf: PRFHMACSHA512, integ: IntegHMACSHA512256},
	} {
		k, err := deriveIKEKeys(s, []byte("gir"), make([]byte, 16), make([]byte, 16), 1, 2, nil, prf{})
		if err != nil {
			t.Fatal(err)
		}
		m := &wire.Message{Header: wire.Header{SPIi: 1, SPIr: 2, Exchange: wire.Informational, MsgID: 7}, Encrypted: true,
			Payloads: []wire.Payload{&wire.Delete{Protocol: wire.ProtoESP, SPIs: [][]byte{{1, 2, 3, 4}}}, &wire.Notify{NotifyType: wire.NInitialContact}}}
		b, err := marshal(m, k.encI)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parse(b, k.encI)
		if err != nil {
			t.Fatalf("%v: %v", s, err)
		}
		if d, ok := got.Payloads[0].(*wire.Delete); !ok || !bytes.Equal(d.SPIs[0], []byte{1, 2, 3, 4}) || got.Notify(wire.NInitialContact) == nil {
			t.Fatalf("%v: payloads %+v", s, got.Payloads)
		}
		b[len(b)-1] ^= 1
		if _, err := parse(b, k.encI); err == nil {
			t.Fatalf("%v: tampered message accepted", s)
		}
	}
}
