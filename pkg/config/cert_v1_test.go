package config

import "testing"

// Certificate authentication is accepted with every IKE version: IKEv1
// signs main mode with the certificate's key as IKEv2 signs IKE_AUTH.
func TestCertWithEveryIKEVersion(t *testing.T) {
	for _, ver := range []IKEVersion{"", IKEv2, IKEv1, IKEAny} {
		v := &validator{}
		v.ipsec("x", &IPsec{Auth: AuthCert, CertFile: "/c.pem", KeyFile: "/c.key", CAFile: "/ca.pem", IKEVersion: ver})
		if len(v.probs) != 0 {
			t.Errorf("auth cert, ike_version %q: %v", ver, v.probs)
		}
	}
}
