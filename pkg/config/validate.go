package config

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
)

// Problem is one validation failure, tied to the field it concerns.
type Problem struct {
	// Field is the path of the field, e.g. vpn[0].tunnels[1].inside.
	Field string
	// Msg says what is wrong with it.
	Msg string
	// Line and Column locate the value in the file (1-based); 0 when the
	// problem is not tied to one place, e.g. a missing field.
	Line, Column int
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d", p.Line)
		if p.Column > 0 {
			fmt.Fprintf(&b, ", column %d", p.Column)
		}
		b.WriteString(": ")
	}
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every problem found in a config; it is an error.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// covers reports whether a problem in ps is about field or a field
// enclosing it.
func (ps Problems) covers(field string) bool {
	for _, p := range ps {
		if p.Field == field || strings.HasPrefix(field, p.Field+".") || strings.HasPrefix(field, p.Field+"[") {
			return true
		}
	}
	return false
}

// awsReserved are the inside /30s that AWS refuses for tunnel inside CIDRs.
var awsReserved = func() []netip.Prefix {
	var r []netip.Prefix
	for i := 0; i <= 5; i++ {
		r = append(r, netip.PrefixFrom(netip.AddrFrom4([4]byte{169, 254, byte(i), 0}), 30))
	}
	return append(r, netip.MustParsePrefix("169.254.169.252/30"))
}()

var linkLocal = netip.MustParsePrefix("169.254.0.0/16")

type validator struct{ probs Problems }

func (v *validator) add(field, format string, args ...any) {
	v.probs = append(v.probs, Problem{Field: field, Msg: fmt.Sprintf(format, args...)})
}

// Validate checks the config against cgwd's and AWS's rules and returns every
// problem found, or nil. It does not touch the file system.
func (c *Config) Validate() Problems {
	v := &validator{}
	if c.ASN == 0 && !c.asnGiven {
		v.add("asn", "is required (the customer gateway's ASN, e.g. 65000)")
	} else {
		v.asn("asn", c.ASN)
	}
	if c.RouterID.IsSet() && !c.RouterID.is4() {
		v.add("router_id", "%q is not an IPv4 address", c.RouterID)
	}
	switch {
	case len(c.Prefixes) > 0:
	case len(c.LAN.Peers) == 0:
		v.add("prefixes", "at least one on-prem prefix is required")
	case len(c.LAN.Import.Allow) == 0:
		v.add("prefixes", "at least one on-prem prefix is required, or lan.import.allow to learn them from the LAN peers")
	}
	for i, p := range c.Prefixes {
		v.prefix(fmt.Sprintf("prefixes[%d]", i), p)
	}
	if !strings.HasPrefix(c.ControlSocket, "/") {
		v.add("control_socket", "%q must be an absolute path", c.ControlSocket)
	}
	switch c.Log.Level {
	case LogDebug, LogInfo, LogWarn, LogError:
	default:
		v.add("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case LogText, LogJSON:
	default:
		v.add("log.format", "%q is not one of text, json", c.Log.Format)
	}
	v.listeners(c)
	if len(c.VPN) == 0 && len(c.DirectConnect) == 0 {
		v.add("vpn", "no VPN connection and no Direct Connect link: nothing to do")
	}
	v.bgpGlobal(&c.BGP)
	v.failover(&c.Failover)
	names := map[string]string{}
	insides := map[netip.Prefix]string{}
	for i := range c.VPN {
		v.vpn(fmt.Sprintf("vpn[%d]", i), &c.VPN[i], names, insides)
	}
	for i := range c.DirectConnect {
		v.directConnect(fmt.Sprintf("direct_connect[%d]", i), &c.DirectConnect[i], names)
	}
	v.lan(c, names)
	v.unique(c)
	v.firewall(c)
	v.drain(&c.Drain)
	v.failClosed(c)
	v.selection(c)
	c.advertiseLimits(v, &validator{})
	return v.probs
}

// unique checks what must differ between tunnels and sessions: WireGuard
// listen ports (defaults included), AWS endpoints, and each peer's ASN from
// the gateway's own (cgwd speaks eBGP only).
func (v *validator) unique(c *Config) {
	ports := map[int]string{}
	remotes := map[string]string{}
	for i, vpn := range c.VPN {
		for j, t := range vpn.Tunnels {
			field := fmt.Sprintf("vpn[%d].tunnels[%d]", i, j)
			if w := t.WireGuard; w != nil && t.Kind == KindWireGuard {
				if other, dup := ports[w.ListenPort]; dup {
					v.add(field+".wireguard.listen_port", "%d is already used by %s (tunnel N of every VPN connection defaults to %d+N-1; set listen_port)", w.ListenPort, other, DefaultWireGuardPort)
				} else {
					ports[w.ListenPort] = field
				}
			}
			if r := t.Outside.Remote.String(); r != "" {
				if other, dup := remotes[r]; dup {
					v.add(field+".outside.remote", "%s is already the endpoint of %s; every tunnel goes to its own AWS endpoint", r, other)
				} else {
					remotes[r] = field
				}
			}
			v.ebgp(field+".bgp.peer_asn", c.ASN, t.BGP.PeerASN)
		}
	}
	for i, d := range c.DirectConnect {
		v.ebgp(fmt.Sprintf("direct_connect[%d].bgp.peer_asn", i), c.ASN, d.BGP.PeerASN)
	}
}

func (v *validator) ebgp(field string, asn, peer ASN) {
	if peer != 0 && peer == asn {
		v.add(field, "%d equals asn: cgwd speaks eBGP only, the peer needs another ASN", peer)
	}
}

// secretPath checks the path of a secret file; its content is checked by
// checkSecretFiles.
func (v *validator) secretPath(field, path string) {
	if path != "" && !filepath.IsAbs(path) {
		v.add(field, "%q must be an absolute path", path)
	}
}

func (v *validator) asn(field string, asn ASN) {
	// 0, 23456 (AS_TRANS) and 4294967295 are not usable.
	if asn == 0 || asn == 23456 || asn == 4294967295 {
		v.add(field, "%d is not a usable ASN", asn)
	}
}

func (v *validator) prefix(field string, s Prefix) (netip.Prefix, bool) {
	p := s.Prefix()
	if !s.is4() {
		v.add(field, "%q is not an IPv4 prefix (e.g. 10.10.0.0/16)", s)
		return netip.Prefix{}, false
	}
	if p != p.Masked() {
		v.add(field, "%s has host bits set (did you mean %s?)", s, p.Masked())
		return netip.Prefix{}, false
	}
	return p, true
}

func (v *validator) addr(field string, s Addr) (netip.Addr, bool) {
	a := s.Addr()
	if !s.is4() {
		if !s.IsSet() {
			v.add(field, "is required")
		} else {
			v.add(field, "%q is not an IPv4 address", s)
		}
		return netip.Addr{}, false
	}
	return a, true
}

// ifname checks a Linux interface name and that it is unique in the config.
func (v *validator) ifname(field, name string, names map[string]string) {
	switch {
	case name == "":
		v.add(field, "is required")
	case len(name) > 15:
		v.add(field, "%q is longer than 15 bytes, the Linux limit for interface names", name)
	case strings.ContainsAny(name, "/ \t\n:") || name == "." || name == "..":
		v.add(field, "%q is not a valid interface name", name)
	default:
		if other, dup := names[name]; dup {
			v.add(field, "%q is already used by %s", name, other)
		}
		names[name] = field
	}
}

func (v *validator) vpn(field string, c *VPN, names map[string]string, insides map[netip.Prefix]string) {
	v.gateway(field+".gateway", c.Gateway)
	v.mode(field+".mode", c.Mode)
	if len(c.Tunnels) != 2 {
		v.add(field+".tunnels", "an AWS VPN connection has exactly 2 tunnels, got %d", len(c.Tunnels))
	}
	for j := range c.Tunnels {
		v.tunnel(fmt.Sprintf("%s.tunnels[%d]", field, j), &c.Tunnels[j], names, insides, c.Static())
	}
	v.routing(field, c)
}

func (v *validator) tunnel(field string, t *Tunnel, names map[string]string, insides map[netip.Prefix]string, static bool) {
	v.ifname(field+".name", t.Name, names)
	v.addr(field+".outside.local", t.Outside.Local)
	v.addr(field+".outside.remote", t.Outside.Remote)
	if t.MTU < 576 || t.MTU > 9000 {
		v.add(field+".mtu", "%d is outside 576-9000", t.MTU)
	}
	if !static { // routing checks a static connection's tunnels have no bgp
		v.peerBGP(field+".bgp", &t.BGP)
		v.secretPath(field+".bgp.password_file", t.BGP.PasswordFile)
	}
	v.bfd(field+".bfd", &t.BFD)
	v.probe(field+".probe", &t.Probe)
	v.inside(field+".inside", t.Inside, insides)
	switch t.Kind {
	case KindWireGuard:
		if t.WireGuard == nil {
			v.add(field+".wireguard", "is required for kind wireguard")
			break
		}
		v.wireguard(field+".wireguard", t.WireGuard)
	case KindIPsec:
		if t.IPsec == nil {
			v.add(field+".ipsec", "is required for kind ipsec")
			break
		}
		v.ipsec(field+".ipsec", t.IPsec)
		v.ipsecIDs(field, t)
	case "":
		v.add(field+".kind", "is required (wireguard or ipsec)")
	default:
		v.add(field+".kind", "%q is not one of wireguard, ipsec", t.Kind)
	}
	if t.Kind != KindWireGuard && t.WireGuard != nil {
		v.add(field+".wireguard", "is set but kind is %q", t.Kind)
	}
	if t.Kind != KindIPsec && t.IPsec != nil {
		v.add(field+".ipsec", "is set but kind is %q", t.Kind)
	}
}

// inside applies AWS's rules for tunnel inside CIDRs.
func (v *validator) inside(field string, s Prefix, insides map[netip.Prefix]string) {
	if !s.IsSet() {
		v.add(field, "is required (a /30 from 169.254.0.0/16)")
		return
	}
	p, ok := v.prefix(field, s)
	if !ok {
		return
	}
	if p.Bits() != 30 {
		v.add(field, "%s is not a /30", s)
		return
	}
	if !linkLocal.Contains(p.Addr()) {
		v.add(field, "%s is not inside 169.254.0.0/16", s)
		return
	}
	for _, r := range awsReserved {
		if r.Overlaps(p) {
			v.add(field, "%s is in a range AWS reserves", s)
			return
		}
	}
	if other, dup := insides[p]; dup {
		v.add(field, "%s overlaps %s", s, other)
		return
	}
	insides[p] = field
}

func (v *validator) wireguard(field string, w *WireGuard) {
	if w.PrivateKeyFile == "" {
		v.add(field+".private_key_file", "is required")
	}
	v.secretPath(field+".private_key_file", w.PrivateKeyFile)
	if w.PeerPublicKey == "" {
		v.add(field+".peer_public_key", "is required")
	} else if b, err := base64.StdEncoding.DecodeString(w.PeerPublicKey); err != nil || len(b) != 32 {
		v.add(field+".peer_public_key", "is not a base64 32-byte key")
	}
	if w.ListenPort < 1 || w.ListenPort > 65535 {
		v.add(field+".listen_port", "%d is not a UDP port", w.ListenPort)
	}
	if w.RemotePort < 1 || w.RemotePort > 65535 {
		v.add(field+".remote_port", "%d is not a UDP port", w.RemotePort)
	}
	if w.PersistentKeepalive < 0 || w.PersistentKeepalive > Duration(65535e9) {
		v.add(field+".persistent_keepalive", "must be between 0s and 65535s")
	}
}

func (v *validator) directConnect(field string, d *DirectConnect, names map[string]string) {
	if d.Interface == "" {
		v.add(field+".interface", "is required")
	}
	v.gateway(field+".gateway", d.Gateway)
	v.peerBGP(field+".bgp", &d.BGP)
	v.secretPath(field+".bgp.password_file", d.BGP.PasswordFile)
	v.bfd(field+".bfd", &d.BFD)
	local := d.Local.Prefix()
	if !d.Local.is4() {
		v.add(field+".local", "%q is not an IPv4 address with prefix length (e.g. 169.254.255.2/30)", d.Local)
		return
	}
	peer, ok := v.addr(field+".peer", d.Peer)
	if !ok {
		return
	}
	if !local.Contains(peer) || peer == local.Addr() {
		v.add(field+".peer", "%s is not another address in %s", peer, local.Masked())
	}
}
