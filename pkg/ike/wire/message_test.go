package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"github.com/cgwd/cgwd/pkg/proposal"
)

// idPayload and anyTS are an IPv4 ID and the 0.0.0.0/0 selector, as
// pkg/ike sends them.
func idPayload(a netip.Addr, responder bool) *ID {
	b := a.As4()
	return &ID{Responder: responder, IDType: IDIPv4Addr, Data: b[:]}
}

func anyTS(responder bool) *TS {
	return &TS{Responder: responder, Selectors: []Selector{{StartPort: 0, EndPort: 65535,
		Start: netip.AddrFrom4([4]byte{}), End: netip.AddrFrom4([4]byte{255, 255, 255, 255})}}}
}

func sampleInit() *Message {
	ip, _ := proposal.Parse("aes128-aes256-sha256-sha1-modp2048-ecp384", true)
	ip.Num, ip.Protocol = 1, ProtoIKE
	return &Message{Header: Header{SPIi: 0xabcdef, Exchange: IKESAInit, Flags: FlagInitiator}, Payloads: []Payload{
		&SA{Proposals: []Proposal{ip}}, &KE{Group: 20, Data: make([]byte, 96)}, &Nonce{Data: make([]byte, 32)},
		&Notify{NotifyType: NNATDetectionSourceIP, Data: make([]byte, 20)},
		&Raw{PType: PayloadV, Body: []byte("vendor")},
	}}
}

func sampleAuth() *Message {
	ep, _ := proposal.Parse(proposal.DefaultESP, false)
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
	ep, _ := proposal.Parse(proposal.DefaultESP, false)
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
	return []*Message{sampleInit(), cookie, initResp, sampleAuth(), sampleCertAuth(), child, info, dpd}
}

func TestMarshalParseRoundTrip(t *testing.T) {
	for _, m := range sampleMessages() {
		b, err := m.Marshal(nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Parse(b, nil)
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
	b, _ := m.Marshal(nil)
	if _, err := Parse(b, nil); err == nil {
		t.Fatal("unknown critical payload accepted")
	}
}

// errICV is the class of an integrity-check failure, which testCipher
// never reports.
var errICV = errors.New("integrity check failed")

// testCipher seals in the clear, without an ICV: enough to frame an SK
// payload. pkg/ike's tests parse with real ciphers.
type testCipher struct{}

func (testCipher) SealedLen(n int) int                      { return n }
func (testCipher) Seal(head, plain []byte) []byte           { return append(head, plain...) }
func (testCipher) Open(msg []byte, off int) ([]byte, error) { return msg[off:], nil }

// wantClass fails t unless err is of exactly one of the classes ErrMalformed and errICV.
func wantClass(t *testing.T, err, class error) {
	t.Helper()
	if !errors.Is(err, class) || errors.Is(err, ErrMalformed) && errors.Is(err, errICV) {
		t.Fatalf("error %q: want it to be %v only", err, class)
	}
}

func TestErrorClasses(t *testing.T) {
	for _, c := range codecCases() {
		if _, err := Parse(c.msg, nil); !c.ok {
			t.Run(c.name, func(t *testing.T) { wantClass(t, err, ErrMalformed) })
		}
	}
	crit, _ := (&Message{Header: Header{SPIi: 1}, Payloads: []Payload{&Raw{PType: 200, Critical: true}}}).Marshal(nil)
	_, err := Parse(crit, nil)
	var ec CriticalError
	if !errors.As(err, &ec) || ec != 200 || errors.Is(err, ErrInvalidSyntax) {
		t.Errorf("critical payload: %v", err)
	}
	wantClass(t, err, ErrMalformed)

}

func TestPeekInit(t *testing.T) {
	m := sampleMessages()[1] // IKE_SA_INIT with a COOKIE
	m.Payloads = append(m.Payloads, &KE{Group: 14, Data: []byte{1}}, &Nonce{Data: make([]byte, 16)},
		&Notify{NotifyType: NCookie, Data: []byte{1}})
	b, _ := m.Marshal(nil)
	var p InitPeek
	var err error
	if n := testing.AllocsPerRun(10, func() { p, err = PeekInit(b) }); n != 0 {
		t.Errorf("PeekInit allocates %v times", n)
	}
	if err != nil {
		t.Fatal(err)
	}
	ke := m.Get(PayloadKE).(*KE)
	if !p.HasSA || !bytes.Equal(p.Cookie, make([]byte, 33)) || p.KEGroup != ke.Group || !bytes.Equal(p.KE, ke.Data) ||
		!bytes.Equal(p.Nonce, m.Get(PayloadNonce).(*Nonce).Data) {
		t.Fatalf("peek %+v", p)
	}
	if p, err := PeekInit(rawMsg(IKESAInit)); err != nil || p.HasSA || p.Cookie != nil || p.KE != nil || p.Nonce != nil {
		t.Fatalf("empty IKE_SA_INIT: %+v %v", p, err)
	}

	reject := map[string][]byte{"delete bomb": deleteBomb(64), "critical payload": rawMsg(IKESAInit, &Raw{PType: 200, Critical: true})}
	for _, c := range codecCases() {
		if h, _ := ParseHeader(c.msg); !c.ok && h.Exchange == IKESAInit {
			reject[c.name] = c.msg
		}
	}
	reject["SK payload"] = SealChain(testCipher{}, Header{SPIi: 1, Exchange: IKESAInit}, PayloadNone, nil)
	for what, h := range map[string]Header{
		"response": {SPIi: 1, Exchange: IKESAInit, Flags: FlagResponse}, "IKE_AUTH": {SPIi: 1, Exchange: IKEAuth},
		"message ID 1": {SPIi: 1, Exchange: IKESAInit, MsgID: 1}, "responder SPI": {SPIi: 1, SPIr: 2, Exchange: IKESAInit},
	} {
		reject[what], _ = (&Message{Header: h}).Marshal(nil)
	}
	for what, b := range reject {
		var err error
		if n := testing.AllocsPerRun(10, func() { _, err = PeekInit(b) }); n != 0 {
			t.Errorf("%s: PeekInit allocates %v times to reject it", what, n)
		}
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", what, err)
		}
	}
}
