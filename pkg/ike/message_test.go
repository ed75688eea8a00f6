package ike

import (
	"bytes"
	"encoding/binary"
	"errors"
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

// sampleMessages are one message of each kind cgwd sends, as the session
// builds them.
func sampleMessages() []*Message {
	cookie := sampleInit()
	cookie.Payloads = append([]Payload{&Notify{NotifyType: NCookie, Data: make([]byte, 33)}}, cookie.Payloads...)
	initResp := sampleInit()
	initResp.SPIr, initResp.Flags = 0x1234, FlagResponse
	initResp.Payloads = initResp.Payloads[:4]
	initResp.Payloads[0].(*SA).Proposals[0].Transforms = initResp.Payloads[0].(*SA).Proposals[0].Transforms[:4]
	ep, _ := ParseProposal(DefaultESPProposal, false)
	ep.Num, ep.Protocol, ep.SPI = 1, ProtoESP, []byte{5, 6, 7, 8}
	child := &Message{Header: Header{SPIi: 1, SPIr: 2, Exchange: CreateChildSA, Flags: FlagInitiator, MsgID: 2}, Payloads: []Payload{
		&Notify{Protocol: ProtoESP, SPI: []byte{1, 2, 3, 4}, NotifyType: NRekeySA}, &SA{Proposals: []Proposal{ep}},
		&Nonce{Data: make([]byte, 32)}, &KE{Group: 19, Data: make([]byte, 64)}, anyTS(false), anyTS(true),
	}}
	info := &Message{Header: Header{SPIi: 1, SPIr: 2, Exchange: Informational, Flags: FlagResponse, MsgID: 3}, Payloads: []Payload{
		&Delete{Protocol: ProtoESP, SPIs: [][]byte{{1, 2, 3, 4}, {5, 6, 7, 8}}}, &Delete{Protocol: ProtoIKE},
		&Notify{Protocol: ProtoIKE, SPI: make([]byte, 8), NotifyType: NInvalidIKESPI},
	}}
	dpd := &Message{Header: Header{SPIi: 1, SPIr: 2, Exchange: Informational, MsgID: 4}}
	return []*Message{sampleInit(), cookie, initResp, sampleAuth(), child, info, dpd}
}

func TestMarshalParseRoundTrip(t *testing.T) {
	for _, m := range sampleMessages() {
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

// testCiphers are SK ciphers under fixed keys, one AEAD and one
// encrypt-then-MAC; each seals and opens with the same keys.
func testCiphers(tb testing.TB) []*skCipher {
	var cs []*skCipher
	for _, s := range []suite{
		{encr: EncrAESGCM16, encrKeyBits: 256, prf: PRFHMACSHA256},
		{encr: EncrAESCBC, encrKeyBits: 128, prf: PRFHMACSHA256, integ: IntegHMACSHA256128},
	} {
		k, err := deriveIKEKeys(s, []byte("gir"), make([]byte, 16), make([]byte, 16), 1, 2, nil, prf{})
		if err != nil {
			tb.Fatal(err)
		}
		cs = append(cs, k.encI)
	}
	return cs
}

// sealRaw makes an INFORMATIONAL message whose SK payload holds chain,
// first payload of type first, whatever chain holds.
func sealRaw(sk *skCipher, first PayloadType, chain []byte) []byte {
	return sealChain(sk, Header{SPIi: 1, SPIr: 2, Exchange: Informational, MsgID: 1}, first, chain)
}

// wantClass fails t unless err is of exactly one of the classes errMalformed and errICV.
func wantClass(t *testing.T, err, class error) {
	t.Helper()
	if !errors.Is(err, class) || errors.Is(err, errMalformed) && errors.Is(err, errICV) {
		t.Fatalf("error %q: want it to be %v only", err, class)
	}
}

func TestErrorClasses(t *testing.T) {
	for _, c := range codecCases() {
		if _, err := parse(c.msg, nil); !c.ok {
			t.Run(c.name, func(t *testing.T) { wantClass(t, err, errMalformed) })
		}
	}
	crit, _ := (&Message{Header: Header{SPIi: 1}, Payloads: []Payload{&Raw{PType: 200, Critical: true}}}).marshal(nil)
	_, err := parse(crit, nil)
	var ec errCritical
	if !errors.As(err, &ec) || ec != 200 || errors.Is(err, errInvalidSyntax) {
		t.Errorf("critical payload: %v", err)
	}
	wantClass(t, err, errMalformed)

	for _, sk := range testCiphers(t) {
		good := sealRaw(sk, PayloadN, body(&Notify{NotifyType: NInitialContact}))
		if _, err := parse(good, nil); !errors.Is(err, errMalformed) {
			t.Errorf("SK payload without keys: %v", err)
		}
		bad := append([]byte(nil), good...)
		bad[len(bad)-1] ^= 1
		_, err := parse(bad, sk)
		wantClass(t, err, errICV)
		short := fixLen(append([]byte(nil), good[:headerLen+4+8]...))
		binary.BigEndian.PutUint16(short[headerLen+2:], 4+8)
		_, err = parse(short, sk)
		wantClass(t, err, errMalformed)
		if errors.Is(err, errInvalidSyntax) {
			t.Errorf("a truncated SK payload counts as verified: %v", err)
		}
		bomb := deleteBomb(4)
		_, err = parse(sealRaw(sk, PayloadD, bomb[headerLen:]), sk)
		wantClass(t, err, errMalformed)
		if !errors.Is(err, errInvalidSyntax) {
			t.Errorf("malformed content of a verified SK payload: %v", err)
		}
		_, err = parse(sealRaw(sk, 200, []byte{0, 0x80, 0, 4}), sk)
		if !errors.As(err, &ec) || !errors.Is(err, errInvalidSyntax) {
			t.Errorf("critical payload inside SK: %v", err)
		}
	}
}

func TestPeekInit(t *testing.T) {
	m := sampleMessages()[1] // IKE_SA_INIT with a COOKIE
	m.Payloads = append(m.Payloads, &KE{Group: 14, Data: []byte{1}}, &Nonce{Data: make([]byte, 16)},
		&Notify{NotifyType: NCookie, Data: []byte{1}})
	b, _ := m.marshal(nil)
	var p initPeek
	var err error
	if n := testing.AllocsPerRun(10, func() { p, err = peekInit(b) }); n != 0 {
		t.Errorf("peekInit allocates %v times", n)
	}
	if err != nil {
		t.Fatal(err)
	}
	ke := m.Get(PayloadKE).(*KE)
	if !p.hasSA || !bytes.Equal(p.cookie, make([]byte, 33)) || p.keGroup != ke.Group || !bytes.Equal(p.ke, ke.Data) ||
		!bytes.Equal(p.nonce, m.Get(PayloadNonce).(*Nonce).Data) {
		t.Fatalf("peek %+v", p)
	}
	if p, err := peekInit(rawMsg(IKESAInit)); err != nil || p.hasSA || p.cookie != nil || p.ke != nil || p.nonce != nil {
		t.Fatalf("empty IKE_SA_INIT: %+v %v", p, err)
	}

	reject := map[string][]byte{"delete bomb": deleteBomb(64), "critical payload": rawMsg(IKESAInit, &Raw{PType: 200, Critical: true})}
	for _, c := range codecCases() {
		if h, _ := ParseHeader(c.msg); !c.ok && h.Exchange == IKESAInit {
			reject[c.name] = c.msg
		}
	}
	for _, sk := range testCiphers(t)[:1] {
		enc := sealChain(sk, Header{SPIi: 1, Exchange: IKESAInit}, PayloadNone, nil)
		reject["SK payload"] = enc
	}
	for what, h := range map[string]Header{
		"response": {SPIi: 1, Exchange: IKESAInit, Flags: FlagResponse}, "IKE_AUTH": {SPIi: 1, Exchange: IKEAuth},
		"message ID 1": {SPIi: 1, Exchange: IKESAInit, MsgID: 1}, "responder SPI": {SPIi: 1, SPIr: 2, Exchange: IKESAInit},
	} {
		reject[what], _ = (&Message{Header: h}).marshal(nil)
	}
	for what, b := range reject {
		var err error
		if n := testing.AllocsPerRun(10, func() { _, err = peekInit(b) }); n != 0 {
			t.Errorf("%s: peekInit allocates %v times to reject it", what, n)
		}
		if !errors.Is(err, errMalformed) {
			t.Errorf("%s: %v", what, err)
		}
	}
}
