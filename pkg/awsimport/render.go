package awsimport

import (
	"bytes"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/cgwd/cgwd/pkg/proposal"
)

// DefaultPSKDir is where the rendered config expects the PSK files when the
// caller does not say.
const DefaultPSKDir = "/etc/cgwd"

// Options are the facts AWS cannot know, from the command line.
type Options struct {
	// Prefixes are the on-prem prefixes to advertise.
	Prefixes []netip.Prefix
	// LocalAddress is the gateway's own outside address, when it differs from
	// the public address AWS knows (behind NAT), or when the input lacks it.
	LocalAddress netip.Addr
	// ASN is the customer gateway's ASN, overriding the input's.
	ASN uint32
	// PSKDir is the absolute directory of the PSK files (DefaultPSKDir if empty).
	PSKDir string
	// StaticRoutes are the VPC CIDRs of a static-routing connection.
	StaticRoutes []netip.Prefix
	// CertFile, KeyFile and CAFile are the absolute paths a certificate
	// connection's config names (empty: DefaultCertFile, DefaultKeyFile
	// and DefaultCAFile in PSKDir).
	CertFile, KeyFile, CAFile string
}

// TunnelName returns the netdev name of the i-th tunnel (0-based).
func TunnelName(i int) string { return fmt.Sprintf("cgw-t%d", i+1) }

// PSKPath returns the path of the i-th tunnel's PSK file under dir.
func PSKPath(dir string, i int) string { return filepath.Join(dir, TunnelName(i)+".psk") }

// Render returns the cgwd YAML for c: one VPN with two ipsec tunnels and
// their BGP peers. PSKs are referenced by psk_file, never written inline.
// AWS's lifetimes and DPD timers are mapped; the proposals AWS lists and the
// TCP MSS are kept as comments (see proposalComments). Facts that are missing (no prefix, no
// ASN, no local address) are left for `cgwd check-config` to name.
func Render(c *Connection, o Options) ([]byte, error) {
	dir := o.PSKDir
	if dir == "" {
		dir = DefaultPSKDir
	}
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("PSK directory %q is not absolute", dir)
	}
	if err := o.checkCertPaths(); err != nil {
		return nil, err
	}
	certFile, keyFile, caFile := o.CertPaths(dir)
	asn := o.ASN
	if asn == 0 {
		a0, a1 := c.Tunnels[0].CGWASN, c.Tunnels[1].CGWASN
		if a0 != a1 && a0 != 0 && a1 != 0 {
			return nil, fmt.Errorf("the tunnels name different customer gateway ASNs (%d, %d); pass --asn", a0, a1)
		}
		asn = max(a0, a1)
	}

	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# cgwd configuration written by `cgwd import-aws`")
	if c.ID != "" {
		w(" from AWS VPN connection %s", safe(c.ID))
	}
	w(".\n")
	if c.CustomerGatewayID != "" || c.GatewayID != "" {
		w("# customer gateway %s, AWS gateway %s, type %s\n", orDash(c.CustomerGatewayID), orDash(c.GatewayID), orDash(c.Type))
	}
	w("# Tunnels are ordered by AWS outside address (AWS does not list them in a stable\n")
	w("# order): cgw-t1 is %s, cgw-t2 is %s. This need not match the console's Tunnel 1/2.\n",
		c.Tunnels[0].AWSOutside, c.Tunnels[1].AWSOutside)
	if c.Cert() {
		renderCertHeader(w, certFile, keyFile, caFile)
	}
	if asn != 0 {
		w("asn: %d\n", asn)
	} else {
		w("# asn: the customer gateway's ASN is not in the input; pass --asn\n")
	}
	renderPrefixes(w, c, o)
	name := c.ID
	if name == "" {
		name = "vpn1"
	}
	w("vpn:\n")
	w("  - name: %s\n", quote(name))
	if strings.HasPrefix(c.GatewayID, "tgw-") {
		w("    gateway: tgw\n")
	}
	renderStatic(w, c, o)
	w("    tunnels:\n")
	for i := range c.Tunnels {
		t := &c.Tunnels[i]
		local := o.LocalAddress
		if !local.IsValid() {
			local = t.CGWOutside
		}
		w("      - name: %s\n", TunnelName(i))
		w("        kind: ipsec\n")
		if local.IsValid() {
			w("        outside: {local: %s, remote: %s}", local, t.AWSOutside)
			if local != t.CGWOutside && t.CGWOutside.IsValid() {
				w(" # AWS knows the gateway as %s (NAT)", t.CGWOutside)
			}
			w("\n")
		} else {
			w("        outside: {local: \"\", remote: %s} # local: this box's outside address: pass --local-address\n", t.AWSOutside)
		}
		w("        inside: %s # AWS %s, cgwd %s\n", t.Inside, t.AWSInside, t.CGWInside)
		w("        # mtu: unset, the MTU AWS publishes for the negotiated suite (NAT-T) is used\n")
		w("        ipsec:\n")
		if t.Cert {
			renderCertTunnel(w, t, certFile, keyFile, caFile)
		} else {
			w("          psk_file: %s\n", quote(PSKPath(dir, i)))
		}
		if !t.Cert && local.IsValid() && t.CGWOutside.IsValid() && local != t.CGWOutside {
			// Behind NAT AWS still expects the address it knows as the
			// gateway's identity, not the one it sends from.
			w("          local_id: %s # the public address AWS knows (NAT); outside.local is this box's own\n", t.CGWOutside)
			w("          remote_id: %s\n", t.AWSOutside)
		}
		if t.Options != nil {
			renderOptions(w, t)
		} else {
			w("          # ike_version: unset, IKEv2. AWS's input does not say which IKE versions it allows (ikev1 and ikev2\n")
			w("          # unless changed); for a tunnel restricted to ikev1 set ike_version: 1 (any: IKEv2, then IKEv1).\n")
			renderXMLTimers(w, t)
			for _, line := range proposalComments(t) {
				w("          # %s\n", line)
			}
		}
		if c.StaticRoutesOnly {
			w("        # a static connection: no BGP session; probes (on by default) check the tunnel\n")
			continue
		}
		w("        bgp:\n")
		if t.AWSASN != 0 {
			w("          peer_asn: %d\n", t.AWSASN)
		} else {
			w("          # AWS gave no BGP settings (a static-routing connection?); cgwd speaks BGP, peer_asn defaults to 64512\n")
		}
		if t.HoldTime != 0 {
			w("          hold_time: %ds\n", t.HoldTime)
			if ka := t.HoldTime / 3; ka >= 1 {
				w("          keepalive: %ds\n", ka)
			}
		}
	}
	return b.Bytes(), nil
}

// renderXMLTimers writes the lifetimes and DPD timers the XML lists.
func renderXMLTimers(w func(string, ...any), t *Tunnel) {
	if t.IKE.LifetimeSec != 0 {
		w("          ike_lifetime: %ds\n", t.IKE.LifetimeSec)
	}
	if t.IPsec.LifetimeSec != 0 {
		w("          child_lifetime: %ds\n", t.IPsec.LifetimeSec)
	}
	if d := t.IPsec.DPDIntervalSec; d != 0 {
		w("          dpd_delay: %ds\n", d)
		if r := t.IPsec.DPDRetries; r != 0 {
			w("          dpd_timeout: %ds # AWS: %d retries every %ds\n", d*r, r, d)
		}
	}
}

// renderOptions writes the settings that match AWS's tunnel options (AWS
// CLI JSON), which say what AWS accepts, where the XML names one example.
func renderOptions(w func(string, ...any), t *Tunnel) {
	w("          # from AWS's tunnel options (what AWS accepts now):\n")
	for _, s := range t.Options.Settings() {
		if s.Key == "dpd_timeout" && t.IPsec.DPDIntervalSec != 0 {
			w("          dpd_delay: %ds\n", t.IPsec.DPDIntervalSec)
		}
		w("          %s: %s", s.Key, s.Value)
		if s.Comment != "" {
			w(" # %s", s.Comment)
		}
		w("\n")
	}
	if p := t.IPsec; p.TCPMSS != 0 {
		w("          # AWS TCP MSS adjustment: %d\n", p.TCPMSS)
	}
}

// proposalComments records the proposals AWS lists, which cgwd does not
// copy: AWS picks the weakest proposal a peer offers, the listed one is
// usually AWS's weakest default, and cgwd's own default is one AWS accepts
// unless the tunnel options were narrowed.
func proposalComments(t *Tunnel) []string {
	var out []string
	if s := join(t.IKE.Encryption, t.IKE.Authentication, t.IKE.PFS, t.IKE.Mode); s != "" {
		out = append(out, "AWS lists IKE "+s+"; IPsec "+join(t.IPsec.Protocol, t.IPsec.Encryption, t.IPsec.Authentication, t.IPsec.PFS, t.IPsec.Mode)+".")
		out = append(out, "cgwd offers its own default proposals instead (AWS accepts them unless the tunnel")
		out = append(out, "options were narrowed, and AWS picks the weakest proposal it is offered).")
		ikeP, ok1 := strongSwan(t.IKE.Encryption, t.IKE.Authentication, t.IKE.PFS, true)
		espP, ok2 := strongSwan(t.IPsec.Encryption, t.IPsec.Authentication, t.IPsec.PFS, false)
		if ok1 && ok2 {
			out = append(out, "If the tunnel options allow only the listed proposal:")
			out = append(out, "ike_proposals: ["+ikeP+"]")
			out = append(out, "esp_proposals: ["+espP+"]")
		}
	}
	p := t.IPsec
	if p.TCPMSS != 0 {
		out = append(out, fmt.Sprintf("AWS TCP MSS adjustment: %d (clear DF bit: %s, fragment before encryption: %s)", p.TCPMSS, orDash(p.ClearDFBit), orDash(p.FragBeforeEnc)))
	}
	return out
}

// strongSwan translates AWS's algorithm names into cgwd's (strongSwan's)
// proposal notation; ok is false for a name it does not know.
func strongSwan(enc, integ, group string, ike bool) (string, bool) {
	encs := map[string]string{"aes-128-cbc": "aes128", "aes-256-cbc": "aes256", "aes-128-gcm-16": "aes128gcm16", "aes-256-gcm-16": "aes256gcm16"}
	integs := map[string]string{"sha1": "sha1", "hmac-sha1-96": "sha1", "sha": "sha1", "sha2-256": "sha256", "hmac-sha256-128": "sha256",
		"sha2-384": "sha384", "hmac-sha384-192": "sha384", "sha2-512": "sha512", "hmac-sha512-256": "sha512"}
	e, ok := encs[strings.ToLower(enc)]
	if !ok {
		return "", false
	}
	parts := []string{e}
	if strings.Contains(e, "gcm") {
		if ike { // AEAD IKE SAs still need a PRF
			i, ok := integs[strings.ToLower(integ)]
			if !ok {
				return "", false
			}
			parts = append(parts, "prf"+i)
		}
	} else {
		i, ok := integs[strings.ToLower(integ)]
		if !ok {
			return "", false
		}
		parts = append(parts, i)
	}
	if group != "" {
		g := groupName(group)
		if g == "" {
			return "", false
		}
		parts = append(parts, g)
	}
	return strings.Join(parts, "-"), true
}

// awsGroups are the DH group numbers AWS lists for Site-to-Site VPN
// tunnels (Phase 1 and Phase 2).
var awsGroups = []uint16{2, 5, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24}

// groupName translates AWS's "group14" (or "14") into strongSwan's
// "modp2048"; "" for a group cgwd does not speak.
func groupName(s string) string {
	n, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "group"), 10, 16)
	if err != nil {
		return ""
	}
	return proposal.GroupName(uint16(n))
}

func join(parts ...string) string {
	var keep []string
	for _, p := range parts {
		if p = safe(p); p != "" {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, ", ")
}

// safe keeps what can go into a YAML comment from untrusted input.
func safe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("-_.:/ ", r):
			return r
		}
		return -1
	}, s)
}

func orDash(s string) string {
	if s = safe(s); s == "" {
		return "-"
	}
	return s
}

// quote returns s as a YAML scalar that reads back as s.
func quote(s string) string {
	out, err := yaml.Marshal(&yaml.Node{Kind: yaml.ScalarNode, Style: yaml.DoubleQuotedStyle, Value: s})
	if err != nil {
		return `""`
	}
	return strings.TrimSuffix(string(out), "\n")
}
