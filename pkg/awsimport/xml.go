package awsimport

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// The CustomerGatewayConfiguration document, as far as cgwd reads it. Every
// leaf is a string so that a bad value gets cgwd's error, naming the element.
type xmlConnection struct {
	XMLName xml.Name    `xml:"vpn_connection"`
	ID      string      `xml:"id,attr"`
	CGWID   string      `xml:"customer_gateway_id"`
	VGWID   string      `xml:"vpn_gateway_id"`
	TGWID   string      `xml:"transit_gateway_id"`
	Type    string      `xml:"vpn_connection_type"`
	Attrs   string      `xml:"vpn_connection_attributes"`
	Tunnels []xmlTunnel `xml:"ipsec_tunnel"`
}

type xmlTunnel struct {
	CGW   *xmlEnd  `xml:"customer_gateway"`
	VGW   *xmlEnd  `xml:"vpn_gateway"`
	IKE   xmlIKE   `xml:"ike"`
	IPsec xmlIPsec `xml:"ipsec"`
}

type xmlEnd struct {
	Outside xmlAddr `xml:"tunnel_outside_address"`
	Inside  xmlAddr `xml:"tunnel_inside_address"`
	BGP     *xmlBGP `xml:"bgp"`
}

type xmlAddr struct {
	IP   string `xml:"ip_address"`
	Mask string `xml:"network_mask"`
	CIDR string `xml:"network_cidr"`
	Text string `xml:",chardata"` // older documents put the address here
}

func (a xmlAddr) addr() string {
	if s := strings.TrimSpace(a.IP); s != "" {
		return s
	}
	return strings.TrimSpace(a.Text)
}

type xmlBGP struct {
	ASN      string `xml:"asn"`
	HoldTime string `xml:"hold_time"`
}

type xmlIKE struct {
	Authentication string `xml:"authentication_protocol"`
	Encryption     string `xml:"encryption_protocol"`
	Lifetime       string `xml:"lifetime"`
	PFS            string `xml:"perfect_forward_secrecy"`
	Mode           string `xml:"mode"`
	PSK            string `xml:"pre_shared_key"`
}

type xmlIPsec struct {
	Protocol       string `xml:"protocol"`
	Authentication string `xml:"authentication_protocol"`
	Encryption     string `xml:"encryption_protocol"`
	Lifetime       string `xml:"lifetime"`
	PFS            string `xml:"perfect_forward_secrecy"`
	Mode           string `xml:"mode"`
	ClearDFBit     string `xml:"clear_df_bit"`
	FragBeforeEnc  string `xml:"fragmentation_before_encryption"`
	TCPMSS         string `xml:"tcp_mss_adjustment"`
	DPD            struct {
		Interval string `xml:"interval"`
		Delay    string `xml:"delay"`
		Retries  string `xml:"retries"`
	} `xml:"dead_peer_detection"`
}

// ParseXML parses a CustomerGatewayConfiguration document. It refuses
// documents larger than MaxInputSize and any DTD (so no entity can be
// declared, let alone expanded), and checks every value it uses.
func ParseXML(data []byte) (*Connection, error) {
	if len(data) > MaxInputSize {
		return nil, fmt.Errorf("input is %d bytes; more than the %d a CustomerGatewayConfiguration can plausibly be", len(data), MaxInputSize)
	}
	if err := scanXML(data); err != nil {
		return nil, err
	}
	var x xmlConnection
	if err := xml.Unmarshal(data, &x); err != nil {
		return nil, xmlError(data, err)
	}
	return x.connection()
}

// scanXML walks the token stream once, refusing DTDs before anything is decoded.
func scanXML(data []byte) error {
	d := xml.NewDecoder(bytes.NewReader(data))
	for {
		line, _ := d.InputPos()
		tok, err := d.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return xmlError(data, err)
		}
		if dir, ok := tok.(xml.Directive); ok {
			kind := strings.Fields(string(dir))
			name := "a directive"
			if len(kind) > 0 {
				name = "<!" + kind[0]
			}
			if line < 1 {
				line = 1
			}
			return fmt.Errorf("line %d: %s is not allowed: cgwd refuses DTDs and entity declarations in AWS configuration files", line, name)
		}
	}
}

// xmlError reports a decoding error by line, without the text of a line that
// holds a pre-shared key.
func xmlError(data []byte, err error) error {
	var se *xml.SyntaxError
	if !errors.As(err, &se) {
		return fmt.Errorf("XML: %w", err)
	}
	lines := bytes.Split(data, []byte("\n"))
	if se.Line >= 1 && se.Line <= len(lines) && bytes.Contains(lines[se.Line-1], []byte("pre_shared_key")) {
		return fmt.Errorf("XML syntax error on line %d, in the pre-shared key (its text is not shown)", se.Line)
	}
	return fmt.Errorf("XML syntax error on line %d: %s", se.Line, se.Msg)
}

func (x *xmlConnection) connection() (*Connection, error) {
	if len(x.Tunnels) != 2 {
		return nil, fmt.Errorf("vpn_connection has %d ipsec_tunnel elements; an AWS VPN connection has exactly 2", len(x.Tunnels))
	}
	c := &Connection{
		ID:                strings.TrimSpace(x.ID),
		CustomerGatewayID: strings.TrimSpace(x.CGWID),
		GatewayID:         strings.TrimSpace(x.VGWID),
		Type:              strings.TrimSpace(x.Type),
		Format:            FormatXML,
		StaticRoutesOnly:  noBGP(x.Attrs),
	}
	if c.GatewayID == "" {
		c.GatewayID = strings.TrimSpace(x.TGWID)
	}
	for i := range x.Tunnels {
		t, err := x.Tunnels[i].tunnel(fmt.Sprintf("ipsec_tunnel[%d]", i+1))
		if err != nil {
			return nil, err
		}
		c.Tunnels[i] = t
	}
	if err := c.sameAuth([2]string{"ipsec_tunnel[1]", "ipsec_tunnel[2]"}, [2]string{"ike.pre_shared_key", "ike.pre_shared_key"}); err != nil {
		return nil, err
	}
	if err := c.finish(); err != nil {
		return nil, err
	}
	return c, nil
}

func (x *xmlTunnel) tunnel(where string) (Tunnel, error) {
	var t Tunnel
	if x.CGW == nil {
		return t, fieldErr(where, "customer_gateway", "is missing")
	}
	if x.VGW == nil {
		return t, fieldErr(where, "vpn_gateway", "is missing")
	}
	var err error
	// A customer gateway with a private certificate may have no address
	// (AWS then does not check it): outside.local comes from the operator.
	if cgw := x.CGW.Outside.addr(); cgw != "" || strings.TrimSpace(x.IKE.PSK) != "" {
		if t.CGWOutside, err = ipv4(where, "customer_gateway.tunnel_outside_address", cgw); err != nil {
			return t, err
		}
	}
	if t.AWSOutside, err = ipv4(where, "vpn_gateway.tunnel_outside_address", x.VGW.Outside.addr()); err != nil {
		return t, err
	}
	bits := 0
	for _, e := range []struct {
		field string
		s     string
	}{{"customer_gateway.tunnel_inside_address.network_cidr", x.CGW.Inside.CIDR}, {"vpn_gateway.tunnel_inside_address.network_cidr", x.VGW.Inside.CIDR}} {
		if strings.TrimSpace(e.s) == "" {
			continue
		}
		b, err := intField(where, e.field, e.s, 0, 32)
		if err != nil {
			return t, err
		}
		if bits != 0 && b != bits {
			return t, fieldErr(where, e.field, "/%d differs from the other end's /%d", b, bits)
		}
		bits = b
	}
	if t.Inside, t.CGWInside, t.AWSInside, err = insidePair(where, x.CGW.Inside.addr(), x.VGW.Inside.addr(), bits); err != nil {
		return t, err
	}
	if b := x.CGW.BGP; b != nil {
		if t.CGWASN, err = asnField(where, "customer_gateway.bgp.asn", b.ASN); err != nil {
			return t, err
		}
	}
	if b := x.VGW.BGP; b != nil {
		if t.AWSASN, err = asnField(where, "vpn_gateway.bgp.asn", b.ASN); err != nil {
			return t, err
		}
		if strings.TrimSpace(b.HoldTime) != "" {
			if t.HoldTime, err = intField(where, "vpn_gateway.bgp.hold_time", b.HoldTime, 3, 65535); err != nil {
				return t, err
			}
		}
	}
	if err := tunnelAuth(&t, where, "ike.pre_shared_key", strings.TrimSpace(x.IKE.PSK)); err != nil {
		return t, err
	}
	t.IKE = IKE{
		Authentication: strings.TrimSpace(x.IKE.Authentication),
		Encryption:     strings.TrimSpace(x.IKE.Encryption),
		PFS:            strings.TrimSpace(x.IKE.PFS),
		Mode:           strings.TrimSpace(x.IKE.Mode),
	}
	if t.IKE.LifetimeSec, err = optInt(where, "ike.lifetime", x.IKE.Lifetime, 60, 86400*7); err != nil {
		return t, err
	}
	p := &x.IPsec
	t.IPsec = IPsec{
		Protocol:       strings.TrimSpace(p.Protocol),
		Authentication: strings.TrimSpace(p.Authentication),
		Encryption:     strings.TrimSpace(p.Encryption),
		PFS:            strings.TrimSpace(p.PFS),
		Mode:           strings.TrimSpace(p.Mode),
		ClearDFBit:     strings.TrimSpace(p.ClearDFBit),
		FragBeforeEnc:  strings.TrimSpace(p.FragBeforeEnc),
	}
	if t.IPsec.Protocol != "" && t.IPsec.Protocol != "esp" {
		return t, fieldErr(where, "ipsec.protocol", "%q is not esp, the only protocol cgwd speaks", t.IPsec.Protocol)
	}
	if t.IPsec.LifetimeSec, err = optInt(where, "ipsec.lifetime", p.Lifetime, 60, 86400*7); err != nil {
		return t, err
	}
	if t.IPsec.TCPMSS, err = optInt(where, "ipsec.tcp_mss_adjustment", p.TCPMSS, 536, 8960); err != nil {
		return t, err
	}
	interval := p.DPD.Interval
	if strings.TrimSpace(interval) == "" {
		interval = p.DPD.Delay
	}
	if t.IPsec.DPDIntervalSec, err = optInt(where, "ipsec.dead_peer_detection.interval", interval, 1, 3600); err != nil {
		return t, err
	}
	if t.IPsec.DPDRetries, err = optInt(where, "ipsec.dead_peer_detection.retries", p.DPD.Retries, 1, 100); err != nil {
		return t, err
	}
	return t, nil
}

func ipv4(where, field, s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, fieldErr(where, field, "is missing")
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, fieldErr(where, field, "%q is not an IPv4 address", s)
	}
	return a, nil
}

func intField(where, field, s string, lo, hi int) (int, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fieldErr(where, field, "%q is not a number", s)
	}
	if n < lo || n > hi {
		return 0, fieldErr(where, field, "%d is outside %d-%d", n, lo, hi)
	}
	return n, nil
}

// optInt is intField for an element that may be absent (0).
func optInt(where, field, s string, lo, hi int) (int, error) {
	if strings.TrimSpace(s) == "" {
		return 0, nil
	}
	return intField(where, field, s, lo, hi)
}

func asnField(where, field, s string) (uint32, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return 0, fieldErr(where, field, "%q is not an ASN (1-4294967294)", s)
	}
	return uint32(n), nil
}
