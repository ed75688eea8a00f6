// Package awsimport turns the configuration AWS hands out for a Site-to-Site
// VPN connection into a cgwd config: the CustomerGatewayConfiguration XML of
// CreateVpnConnection / DescribeVpnConnections, or the outputs of Terraform's
// aws_vpn_connection.
//
// Parsing is pure (ParseXML, ParseTerraform) and yields a Connection; Render
// turns a Connection into cgwd YAML and WriteDir writes that YAML plus one
// private PSK file per tunnel. Pre-shared keys are held in a Secret, which
// prints as "[redacted]" and never appears in an error.
//
// AWS does not list the two tunnels in a stable order, so a Connection's
// tunnels are sorted by the AWS endpoint's outside address: cgw-t1 is the
// tunnel whose AWS address is lower. It is not necessarily the console's
// "Tunnel 1".
package awsimport

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
)

// MaxInputSize is the largest input accepted. Real files are a few KiB.
const MaxInputSize = 1 << 20

// Secret is a pre-shared key. Its String and GoString methods hide the value;
// use Reveal to get it for writing a PSK file.
type Secret struct{ v string }

// String returns "[redacted]".
func (s Secret) String() string { return "[redacted]" }

// GoString returns "[redacted]".
func (s Secret) GoString() string { return "[redacted]" }

// Reveal returns the key itself.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether no key was given.
func (s Secret) IsZero() bool { return s.v == "" }

// Connection is one AWS VPN connection as AWS describes it.
type Connection struct {
	// ID is the VPN connection ID (vpn-...), if the input names it.
	ID string
	// CustomerGatewayID is the customer gateway ID (cgw-...), if given.
	CustomerGatewayID string
	// GatewayID is the virtual private gateway or transit gateway ID, if given.
	GatewayID string
	// Type is the connection type, normally ipsec.1.
	Type string
	// Format is the input it was parsed from: FormatXML (also AWS CLI JSON)
	// or FormatTerraform.
	Format string
	// Tunnels are the connection's two tunnels, sorted by AWS outside address.
	Tunnels [2]Tunnel
	// StaticRoutesOnly: the connection routes statically, without BGP (the
	// XML's vpn_connection_attributes NoBGPVPNConnection, the AWS CLI's
	// Options.StaticRoutesOnly, Terraform's static_routes_only).
	StaticRoutesOnly bool
	// Routes are the connection's static routes when the input lists them
	// (the AWS CLI's Routes, Terraform's routes): the customer network's
	// CIDRs, which AWS routes into the tunnels. No input lists the VPC's.
	Routes []netip.Prefix
}

// IKEv1Notice returns a warning for a connection parsed from the
// CustomerGatewayConfiguration XML alone: its ike elements list IKEv1
// phase 1 parameters (mode "main" is an IKEv1 exchange; IKEv2 has no
// modes) as an example, but not which IKE versions the tunnels allow, so
// the config keeps cgwd's default, IKEv2. It returns "" for other inputs
// and for AWS CLI JSON with tunnel options, which set ike_version.
func (c *Connection) IKEv1Notice() string {
	if c.Format != FormatXML || c.Tunnels[0].Options != nil {
		return "" // AWS CLI tunnel options set ike_version themselves
	}
	mode := ""
	if m := c.Tunnels[0].IKE.Mode; m != "" {
		mode = fmt.Sprintf(" (mode %s)", m)
	}
	return "the XML's ike parameters" + mode + " are IKEv1's, but it does not say which IKE versions the tunnels allow; " +
		"the config keeps cgwd's default, IKEv2 (AWS allows ikev1 and ikev2 unless changed): for a tunnel restricted to ikev1 " +
		"set ike_version: 1, or import the JSON of aws ec2 describe-vpn-connections, whose tunnel options set ike_version"
}

// Tunnel is one of a connection's two tunnels.
type Tunnel struct {
	// CGWOutside is the customer gateway's public address as AWS knows it
	// (invalid when the input does not say, as with Terraform outputs).
	CGWOutside netip.Addr
	// AWSOutside is the AWS endpoint's public address.
	AWSOutside netip.Addr
	// Inside is the tunnel's inside /30.
	Inside netip.Prefix
	// CGWInside and AWSInside are the two ends' inside addresses.
	CGWInside, AWSInside netip.Addr
	// CGWASN is the customer gateway's ASN (0 when not given).
	CGWASN uint32
	// AWSASN is the AWS side's ASN (0 when not given, e.g. static routing).
	AWSASN uint32
	// HoldTime is the BGP hold time in seconds AWS uses (0 when not given).
	HoldTime int
	// PSK is the IKE pre-shared key; zero when Cert.
	PSK Secret
	// Cert: the tunnel authenticates with certificates. AWS gives no
	// pre-shared key for a customer gateway created with a private
	// certificate (CertificateArn, from AWS Private CA); cgwd then needs
	// that certificate, its key and the CA, which no input holds.
	Cert bool
	// EndpointCertARN is the ARN of AWS's tunnel endpoint certificate, when
	// the input names it (AWS CLI VgwTelemetry, Terraform vgw_telemetry).
	EndpointCertARN string
	// IKE is the phase 1 proposal.
	IKE IKE
	// IPsec is the phase 2 proposal and ESP settings.
	IPsec IPsec
	// Options are the tunnel options AWS CLI JSON lists (nil when absent).
	Options *TunnelOptions
}

// IKE is the phase 1 proposal AWS lists (empty fields: not given).
type IKE struct {
	Authentication string // e.g. sha1
	Encryption     string // e.g. aes-128-cbc
	LifetimeSec    int    // e.g. 28800
	PFS            string // DH group, e.g. group2
	Mode           string // main
}

// IPsec is the phase 2 proposal and ESP settings AWS lists.
type IPsec struct {
	Protocol       string // esp
	Authentication string // e.g. hmac-sha1-96
	Encryption     string // e.g. aes-128-cbc
	LifetimeSec    int    // e.g. 3600
	PFS            string // e.g. group2
	Mode           string // tunnel
	TCPMSS         int    // tcp_mss_adjustment, e.g. 1379
	ClearDFBit     string // "true"/"false" as given
	FragBeforeEnc  string // fragmentation_before_encryption as given
	DPDIntervalSec int    // dead_peer_detection interval
	DPDRetries     int    // dead_peer_detection retries
}

// fieldErr is an error in the input: where names the tunnel as the input
// does (e.g. "ipsec_tunnel[2]"), field the element or key.
func fieldErr(where, field, format string, args ...any) error {
	return fmt.Errorf("%s: %s: %s", where, field, fmt.Sprintf(format, args...))
}

// checkPSK applies AWS's rules for pre-shared keys: 8-64 characters, only
// letters, digits, '.' and '_', and not starting with '0'. The error never
// contains the key.
func checkPSK(where, field, psk string) error {
	switch {
	case psk == "":
		return fieldErr(where, field, "is missing")
	case len(psk) < 8 || len(psk) > 64:
		return fieldErr(where, field, "is %d characters long; AWS pre-shared keys are 8 to 64", len(psk))
	case psk[0] == '0':
		return fieldErr(where, field, "starts with '0', which AWS does not allow")
	}
	for i := 0; i < len(psk); i++ {
		c := psk[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_'
		if !ok {
			return fieldErr(where, field, "has a character AWS does not allow at position %d (only letters, digits, '.' and '_')", i+1)
		}
	}
	return nil
}

// insidePair checks the two inside addresses of a tunnel and returns their /30.
// AWS's address must be the /30's first usable address and the customer
// gateway's the second. bits is the prefix length the input gives (0: not given).
func insidePair(where string, cgw, aws string, bits int) (netip.Prefix, netip.Addr, netip.Addr, error) {
	c, err := netip.ParseAddr(cgw)
	if err != nil || !c.Is4() {
		return netip.Prefix{}, netip.Addr{}, netip.Addr{}, fieldErr(where, "customer gateway inside address", "%q is not an IPv4 address", cgw)
	}
	a, err := netip.ParseAddr(aws)
	if err != nil || !a.Is4() {
		return netip.Prefix{}, netip.Addr{}, netip.Addr{}, fieldErr(where, "AWS inside address", "%q is not an IPv4 address", aws)
	}
	if bits != 0 && bits != 30 {
		return netip.Prefix{}, netip.Addr{}, netip.Addr{}, fieldErr(where, "inside network_cidr", "/%d is not /30; AWS tunnel inside networks are /30", bits)
	}
	p := netip.PrefixFrom(a, 30).Masked()
	if a != p.Addr().Next() || c != a.Next() {
		return netip.Prefix{}, netip.Addr{}, netip.Addr{}, fieldErr(where, "inside addresses",
			"AWS %s and customer gateway %s are not the first and second usable addresses of one /30", a, c)
	}
	return p, c, a, nil
}

// Cert reports whether the connection's tunnels authenticate with
// certificates (both do or neither: AWS sets it per customer gateway).
func (c *Connection) Cert() bool { return c.Tunnels[0].Cert }

// tunnelAuth checks a tunnel's pre-shared key as the input gives it
// (field names it): none means certificate authentication.
func tunnelAuth(t *Tunnel, where, field, psk string) error {
	if psk == "" {
		t.Cert = true
		return nil
	}
	if err := checkPSK(where, field, psk); err != nil {
		return err
	}
	t.PSK = Secret{psk}
	return nil
}

// sameAuth checks that both tunnels authenticate alike: a customer gateway
// with a certificate has no pre-shared key in either tunnel, one without
// has one in each. where and field name each tunnel's key in the input.
func (c *Connection) sameAuth(where [2]string, field [2]string) error {
	if c.Tunnels[0].Cert == c.Tunnels[1].Cert {
		return nil
	}
	i := 0
	if c.Tunnels[1].Cert {
		i = 1
	}
	return fieldErr(where[i], field[i], "is missing, while %s has one (a customer gateway with a private certificate has none in either tunnel)", where[1-i])
}

// finish checks the connection as a whole and sorts its tunnels.
func (c *Connection) finish() error {
	if c.Tunnels[0].AWSOutside == c.Tunnels[1].AWSOutside {
		return errors.New("both tunnels have the same AWS outside address " + c.Tunnels[0].AWSOutside.String())
	}
	if c.Tunnels[0].Inside.Overlaps(c.Tunnels[1].Inside) {
		return fmt.Errorf("both tunnels use inside network %s", c.Tunnels[0].Inside)
	}
	ts := c.Tunnels[:]
	sort.Slice(ts, func(i, j int) bool { return ts[i].AWSOutside.Less(ts[j].AWSOutside) })
	return nil
}
