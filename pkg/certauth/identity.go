package certauth

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// IKEv2 identification types (RFC 7296 3.5) a certificate can bind.
const (
	IDIPv4  = 1
	IDFQDN  = 2
	IDEmail = 3
	IDDN    = 9
)

// IDString renders an identity of type t for log lines.
func IDString(t uint8, data []byte) string {
	switch t {
	case IDIPv4:
		if len(data) == 4 {
			return netip.AddrFrom4([4]byte(data)).String()
		}
	case IDFQDN, IDEmail:
		return fmt.Sprintf("%q", data)
	case IDDN:
		var rdn pkix.RDNSequence
		if rest, err := asn1.Unmarshal(data, &rdn); err == nil && len(rest) == 0 {
			var n pkix.Name
			n.FillFromRDNSequence(&rdn)
			return "DN " + fmt.Sprintf("%q", n.String())
		}
	}
	return fmt.Sprintf("type%d:%q", t, data)
}

// BindsID checks that the certificate vouches for the identity the peer
// claimed in its ID payload: its subject DN, or one of its subject
// alternative names.
func BindsID(leaf *x509.Certificate, t uint8, data []byte) error {
	ok := false
	switch t {
	case IDDN:
		ok = bytes.Equal(data, leaf.RawSubject) || DNEqual(IDString(t, data), "DN "+fmt.Sprintf("%q", leaf.Subject.String()))
	case IDFQDN:
		for _, n := range leaf.DNSNames {
			ok = ok || strings.EqualFold(n, string(data))
		}
	case IDEmail:
		for _, n := range leaf.EmailAddresses {
			ok = ok || strings.EqualFold(n, string(data))
		}
	case IDIPv4:
		for _, ip := range leaf.IPAddresses {
			ok = ok || (len(data) == 4 && ip.Equal(net.IP(data)))
		}
	}
	if !ok {
		return fmt.Errorf("peer's identity %s is not in its certificate (subject %q, DNS names %q, addresses %v)",
			IDString(t, data), leaf.Subject.String(), leaf.DNSNames, leaf.IPAddresses)
	}
	return nil
}

// MatchesRemoteID checks the peer's certificate against the configured
// remote_id: a DN ("CN=vpn.example, O=Example", in either order), an FQDN
// in the certificate's DNS names, or an IPv4 address in its addresses.
func MatchesRemoteID(leaf *x509.Certificate, want string) bool {
	if IsDN(want) {
		return DNEqual(want, leaf.Subject.String())
	}
	if a, err := netip.ParseAddr(want); err == nil {
		for _, ip := range leaf.IPAddresses {
			if b, ok := netip.AddrFromSlice(ip); ok && b.Unmap() == a {
				return true
			}
		}
		return false
	}
	for _, n := range leaf.DNSNames {
		if strings.EqualFold(n, want) {
			return true
		}
	}
	return false
}

// IsDN reports whether an identity from the config is a distinguished name.
func IsDN(s string) bool { return strings.Contains(s, "=") }

// DNEqual compares two DNs written as text, whether RDNs are separated by
// "," or "/" and listed leaf-first (RFC 4514) or root-first (as OpenSSL
// and strongSwan print them). A leading "DN " and quotes are ignored.
func DNEqual(a, b string) bool {
	x, y := dnParts(a), dnParts(b)
	if len(x) == 0 || len(x) != len(y) {
		return false
	}
	same, rev := true, true
	for i := range x {
		same = same && x[i] == y[i]
		rev = rev && x[i] == y[len(y)-1-i]
	}
	return same || rev
}

func dnParts(s string) []string {
	s = strings.Trim(strings.TrimPrefix(strings.TrimSpace(s), "DN "), `"`)
	var parts []string
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '/' }) {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok {
			return nil
		}
		k = strings.ToUpper(strings.TrimSpace(k))
		if k == "EMAILADDRESS" {
			k = "E"
		}
		parts = append(parts, k+"="+strings.TrimSpace(v))
	}
	return parts
}
