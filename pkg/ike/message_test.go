package ike

import (
	"net/netip"
	"reflect"
	"testing"
)

func sampleInit() *Message {
	ip, _ := ParseProposal("aes128-aes256-sha256-sha1-modp2048-ecp384", true)
	ip.Num, ip.Protocol = 1, ProtoIKE
	return &Message{Header: Header{SPIi: 0xabcdef, Exchange: IKESAInit, Flags: FlagInitiator}, Payloads: []Payload{
		&SA{Proposals: []Proposal{ip}}, &KE{Group: 20, Data: make([]byte, 96)}, &Nonce{Data: make([]byte, 32)},
		&Notify{NotifyType: NNATDetectionSourceIP, Data: make([]byte, 20)},
		&Raw{PType: PayloadV, Body: []byte("vendor")},
	}}
}

func sampleAuth() *Message {
	ep, _ := ParseProposal(DefaultESPProposal, false)
	ep.Num, ep.Protocol, ep.SPI = 1, ProtoESP, []byte{1, 2, 3, 4}
	return &Message{Header: Header{SPIi: 1, SPIr: 2, Exchange: IKEAuth, Flags: FlagInitiator, MsgID: 1}, Payloads: []Payload{
		idPayload(netip.MustParseAddr("198.51.100.2"), false), &Auth{Method: AuthPSK, Data: make([]byte, 48)},
		&SA{Proposals: []Proposal{ep}}, anyTS(false), anyTS(true),
		&Delete{Protocol: ProtoESP, SPIs: [][]byte{{9, 9, 9, 9}}},
	}}
}

func TestMarshalParseRoundTrip(t *testing.T) {
	for _, m := range []*Message{sampleInit(), sampleAuth()} {
		b, err := m.marshal(nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parse(b, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Payloads, m.Payloads) || got.Header != m.Header {
			t.Fatalf("round trip differs:\n%#v\n%#v", got.Payloads, m.Payloads)
		}
	}
}

func TestCriticalUnknownPayload(t *testing.T) {
	m := &Message{Header: Header{SPIi: 1}, Payloads: []Payload{&Raw{PType: 200, Critical: true, Body: []byte{1}}}}
	b, _ := m.marshal(nil)
	if _, err := parse(b, nil); err == nil {
		t.Fatal("unknown critical payload accepted")
	}
}

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

// FuzzParse feeds unencrypted messages to the parser: it must never panic.
func FuzzParse(f *testing.F) {
	for _, m := range []*Message{sampleInit(), sampleAuth()} {
		b, _ := m.marshal(nil)
		f.Add(b)
	}
	f.Add(make([]byte, 28))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parse(b, nil)
		if err == nil {
			if _, err := m.marshal(nil); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzParseEncrypted feeds messages with an SK payload under fixed keys.
func FuzzParseEncrypted(f *testing.F) {
	s := suite{encr: EncrAESCBC, encrKeyBits: 128, prf: PRFHMACSHA256, integ: IntegHMACSHA256128}
	k, err := deriveIKEKeys(s, []byte("gir"), make([]byte, 16), make([]byte, 16), 1, 2, nil, prf{})
	if err != nil {
		f.Fatal(err)
	}
	m := sampleAuth()
	m.Encrypted = true
	b, _ := m.marshal(k.encI)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		parse(b, k.encI)
	})
}
