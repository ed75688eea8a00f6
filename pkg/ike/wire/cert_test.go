package wire

import (
	"errors"
	"testing"
)

// sampleCertAuth is an IKE_AUTH request with certificates, as the session
// builds it for certificate authentication.
func sampleCertAuth() *Message {
	m := sampleAuth()
	m.Payloads = append([]Payload{
		&ID{IDType: IDDN, Data: []byte{0x30, 0x0e, 0x31, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x03, 'c', 'g', 'w'}},
		&Cert{Encoding: CertX509Sig, Data: make([]byte, 900)}, &Cert{Encoding: CertX509Sig, Data: make([]byte, 700)},
		&CertReq{Encoding: CertX509Sig, Data: make([]byte, 40)}, &CertReq{Encoding: CertX509Sig},
		&Auth{Method: AuthDigSig, Data: make([]byte, 80)},
		&Notify{NotifyType: NSignatureHashAlgorithms, Data: []byte{0, HashSHA256, 0, HashSHA384, 0, HashSHA512}},
	}, m.Payloads[2:]...)
	return m
}

func TestCertPayloads(t *testing.T) {
	m := sampleCertAuth()
	b, err := m.Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := got.Get(PayloadCert).(*Cert)
	if !ok || c.Encoding != CertX509Sig || len(c.Data) != 900 {
		t.Fatalf("CERT payload: %#v", got.Get(PayloadCert))
	}
	if r, ok := got.Get(PayloadCertReq).(*CertReq); !ok || len(r.Data) != 40 {
		t.Fatalf("CERTREQ payload: %#v", got.Get(PayloadCertReq))
	}
	if NotifyName(NSignatureHashAlgorithms) != "SIGNATURE_HASH_ALGORITHMS" {
		t.Error(NotifyName(NSignatureHashAlgorithms))
	}
	// A CERT payload of only an encoding byte, and a CERTREQ without one.
	for _, p := range []Payload{&Raw{PType: PayloadCert, Body: []byte{CertX509Sig}}, &Raw{PType: PayloadCertReq}} {
		bad := &Message{Header: Header{SPIi: 1, Exchange: IKEAuth}, Payloads: []Payload{p}}
		b, _ := bad.Marshal(nil)
		if _, err := Parse(b, nil); !errors.Is(err, ErrMalformed) {
			t.Errorf("%v: %v", p, err)
		}
	}
}
