package ike

// wipe zeroes the keys of an IKE SA that will carry no more messages
// (dropped, deleted after a rekey, or the session stopped). SK_d, SK_a*,
// SK_e* and SK_p* are slices of one KEYMAT, which goes with them. The SK
// ciphers share the GCM salt and the HMAC key with these slices, so the SA
// must not be used afterwards. The AES key schedules inside crypto/aes
// cannot be reached and stay in memory until they are collected.
func (k *ikeKeys) wipe() {
	if k == nil {
		return
	}
	for _, b := range [][]byte{k.d, k.ai, k.ar, k.ei, k.er, k.pi, k.pr} {
		clear(b)
	}
}
