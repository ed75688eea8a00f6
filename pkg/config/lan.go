package config

// LAN-side routing and the box's role in a pair (issue 14): BGP sessions
// with the on-prem routers over the LAN interface, what is imported from
// them and exported to them, and how a secondary box makes itself the
// less attractive of two.

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// LAN and HA defaults.
const (
	DefaultLANKeepalive = 10 * time.Second
	DefaultLANHoldTime  = 30 * time.Second
	// DefaultMEDDX and DefaultMEDVPN are the MED sent to LAN peers for a
	// prefix whose path in use is a DX link or a VPN tunnel: DX is better.
	DefaultMEDDX  = 0
	DefaultMEDVPN = 100
	// DefaultLocalPrefDX and DefaultLocalPrefVPN are the local preference
	// sent to iBGP LAN peers, by the same rule.
	DefaultLocalPrefDX  = 200
	DefaultLocalPrefVPN = 100
	// DefaultStandbyPrepend is how many more times an active-standby
	// secondary prepends its ASN toward AWS.
	DefaultStandbyPrepend = 3
	// DefaultStandbyMED is added to the MED an active-standby secondary
	// sends its LAN peers.
	DefaultStandbyMED = 1000
)

// ImportMode says how prefixes learned from the LAN go to AWS.
type ImportMode string

// Import modes.
const (
	// ImportAdd advertises them to AWS besides the static prefixes.
	ImportAdd ImportMode = "add"
	// ImportReplace advertises them instead of the static prefixes.
	ImportReplace ImportMode = "replace"
)

// HARole is the box's role in a pair of customer gateways.
type HARole string

// HA roles.
const (
	RolePrimary   HARole = "primary"
	RoleSecondary HARole = "secondary"
)

// HAMode is how a pair of boxes shares the traffic.
type HAMode string

// HA modes.
const (
	// HAActiveStandby: the secondary advertises worse attributes, both to
	// AWS (longer AS paths) and to the LAN (higher MED).
	HAActiveStandby HAMode = "active-standby"
	// HAActiveActive: both advertise equal attributes (ECMP on the transit
	// gateway and on the core).
	HAActiveActive HAMode = "active-active"
)

// LAN configures BGP with the on-prem routers.
type LAN struct {
	// Interface is the LAN netdev the sessions run over.
	Interface string `yaml:"interface"`
	// Peers are the on-prem routers: iBGP when peer_asn equals asn, else eBGP.
	Peers []LANPeer `yaml:"peers"`
	// Import says what is taken from the LAN peers and how it goes to AWS.
	Import LANImport `yaml:"import"`
	// Export says with which attributes the AWS prefixes go to the LAN peers.
	Export LANExport `yaml:"export"`
}

// LANPeer is one BGP session with an on-prem router.
type LANPeer struct {
	// Name labels the session in status, metrics and logs.
	Name string `yaml:"name"`
	// Address is the router's address on the LAN.
	Address Addr `yaml:"address"`
	// PeerASN is the router's ASN (required).
	PeerASN ASN `yaml:"peer_asn"`
	// LocalAddress is cgwd's address on the LAN; by default the kernel picks it.
	LocalAddress Addr `yaml:"local_address"`
	// Keepalive and HoldTime are the session timers (default 10s, 30s).
	Keepalive Duration `yaml:"keepalive"`
	HoldTime  Duration `yaml:"hold_time"`
	// PasswordFile holds the TCP MD5 password (mode 0600).
	PasswordFile string `yaml:"password_file"`
	// BFD checks the router (off by default; 300ms x 3 when on).
	BFD BFD `yaml:"bfd"`
}

// LANImport says what cgwd takes from its LAN peers.
type LANImport struct {
	// Allow lists the on-prem prefixes (and their more specifics) accepted
	// from LAN peers; empty, nothing is. 169.254.0.0/16 and prefixes
	// learned from AWS are never accepted.
	Allow []Prefix `yaml:"allow"`
	// Mode is add (advertised to AWS besides the static prefixes, the
	// default) or replace (instead of them).
	Mode ImportMode `yaml:"mode"`
	// Aggregate lists summaries sent to AWS instead of the learned prefixes
	// they cover, while at least one of those is learned.
	Aggregate []Prefix `yaml:"aggregate"`
}

// LANExport sets the attributes of the AWS prefixes sent to LAN peers
// (next hop: cgwd itself), by the kind of path the FIB uses for the prefix.
type LANExport struct {
	// MED by path kind (default dx 0, vpn 100: lower is better).
	MED PathKindValues `yaml:"med"`
	// LocalPref by path kind, sent to iBGP peers only (default dx 200, vpn 100: higher is better).
	LocalPref PathKindValues `yaml:"local_pref"`
}

// PathKindValues is a value per kind of AWS path.
type PathKindValues struct {
	DX  uint32 `yaml:"dx"`
	VPN uint32 `yaml:"vpn"`
}

// HA is the box's role in a pair of customer gateways.
type HA struct {
	// Role is primary (the default) or secondary.
	Role HARole `yaml:"role"`
	// Mode is active-standby (the default) or active-active.
	Mode HAMode `yaml:"mode"`
	// StandbyPrepend is how many more times an active-standby secondary
	// prepends its ASN on every AWS session (default 3).
	StandbyPrepend int `yaml:"standby_prepend"`
	// StandbyMED is added to the MED an active-standby secondary sends its
	// LAN peers (default 1000).
	StandbyMED uint32 `yaml:"standby_med"`
}

// Standby reports whether the box advertises itself as the standby of a
// pair: a secondary in active-standby mode.
func (h *HA) Standby() bool { return h.Role == RoleSecondary && h.Mode == HAActiveStandby }

// IBGP reports whether the session with p is iBGP for a box of ASN asn.
func (p *LANPeer) IBGP(asn ASN) bool { return p.PeerASN == asn }

// ImportsReplace reports whether prefixes learned from the LAN are
// advertised to AWS instead of the static prefixes.
func (c *Config) ImportsReplace() bool {
	return len(c.LAN.Peers) > 0 && c.LAN.Import.Mode == ImportReplace
}

// applyDefaults fills the LAN section's defaults; given holds the keys
// the file set, so that an explicit 0 is kept.
func (l *LAN) applyDefaults(given map[string]bool) {
	for i := range l.Peers {
		p := &l.Peers[i]
		if p.Keepalive == 0 {
			p.Keepalive = Duration(DefaultLANKeepalive)
		}
		if p.HoldTime == 0 && !given[fmt.Sprintf("lan.peers[%d].hold_time", i)] {
			p.HoldTime = Duration(DefaultLANHoldTime)
		}
		p.BFD.applyDefaults(false)
	}
	if l.Import.Mode == "" {
		l.Import.Mode = ImportAdd
	}
	def := func(v *uint32, key string, d uint32) {
		if !given["lan.export."+key] {
			*v = d
		}
	}
	def(&l.Export.MED.DX, "med.dx", DefaultMEDDX)
	def(&l.Export.MED.VPN, "med.vpn", DefaultMEDVPN)
	def(&l.Export.LocalPref.DX, "local_pref.dx", DefaultLocalPrefDX)
	def(&l.Export.LocalPref.VPN, "local_pref.vpn", DefaultLocalPrefVPN)
}

func (h *HA) applyDefaults(given map[string]bool) {
	if h.Role == "" {
		h.Role = RolePrimary
	}
	if h.Mode == "" {
		h.Mode = HAActiveStandby
	}
	if !given["ha.standby_prepend"] {
		h.StandbyPrepend = DefaultStandbyPrepend
	}
	if !given["ha.standby_med"] {
		h.StandbyMED = DefaultStandbyMED
	}
}

// lan checks the lan and ha sections; names holds the interface names
// already used.
func (v *validator) lan(c *Config, names map[string]string) {
	l := &c.LAN
	if len(l.Peers) > 0 || l.Interface != "" {
		v.ifname("lan.interface", l.Interface, names)
	}
	// Session names and addresses share one space with the AWS sessions:
	// status, metrics and gobgp name every session by them.
	peerNames := map[string]string{}
	addrs := map[netip.Addr]string{}
	for _, s := range c.sessions() {
		peerNames[s.name] = s.field
	}
	for i, d := range c.DirectConnect {
		addrs[d.Peer.Addr()] = fmt.Sprintf("direct_connect[%d].peer", i)
	}
	for i, vpn := range c.VPN {
		for j, t := range vpn.Tunnels {
			if t.Inside.Prefix().IsValid() {
				aws, _ := t.InsideAddrs()
				addrs[aws.Addr()] = fmt.Sprintf("vpn[%d].tunnels[%d].inside", i, j)
			}
		}
	}
	bfdFrom := map[string]string{} // BFD sessions by local address ("" the interface's)
	for i := range l.Peers {
		p := &l.Peers[i]
		field := fmt.Sprintf("lan.peers[%d]", i)
		v.lanPeer(field, p, peerNames, addrs)
		if p.BFD.On() {
			// pkg/bfd receives on port 3784 of the local address: one session each.
			if other, dup := bfdFrom[p.LocalAddress.String()]; dup {
				v.add(field+".bfd", "peer %s: BFD to a second LAN peer from the same local address as %s is not supported; give each a local_address of its own", p.Name, other)
			}
			bfdFrom[p.LocalAddress.String()] = field
		}
	}
	for i, a := range l.Import.Allow {
		v.notLinkLocal(fmt.Sprintf("lan.import.allow[%d]", i), a)
	}
	for i, a := range l.Import.Aggregate {
		v.notLinkLocal(fmt.Sprintf("lan.import.aggregate[%d]", i), a)
	}
	switch l.Import.Mode {
	case ImportAdd:
	case ImportReplace:
		if len(l.Peers) == 0 {
			v.add("lan.import.mode", "replace advertises the prefixes learned from LAN peers instead of `prefixes`, but lan.peers is empty")
		}
	default:
		v.add("lan.import.mode", "%q is not one of add, replace", l.Import.Mode)
	}
	h := &c.HA
	if h.Role != RolePrimary && h.Role != RoleSecondary {
		v.add("ha.role", "%q is not one of primary, secondary", h.Role)
	}
	if h.Mode != HAActiveStandby && h.Mode != HAActiveActive {
		v.add("ha.mode", "%q is not one of active-standby, active-active", h.Mode)
	}
	if h.StandbyPrepend < 0 || h.StandbyPrepend > 10 {
		v.add("ha.standby_prepend", "%d is outside 0-10", h.StandbyPrepend)
	}
}

func (v *validator) lanPeer(field string, p *LANPeer, names map[string]string, addrs map[netip.Addr]string) {
	switch {
	case p.Name == "":
		v.add(field+".name", "is required (it names the session in status, metrics and logs)")
	case len(p.Name) > 64 || strings.IndexFunc(p.Name, func(r rune) bool {
		return !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) >= 0:
		v.add(field+".name", "%q is not a session name (at most 64 of A-Z a-z 0-9 . _ -)", p.Name)
	default:
		if other, dup := names[p.Name]; dup {
			v.add(field+".name", "%q is already the name of %s", p.Name, other)
		}
		names[p.Name] = field
	}
	who := fmt.Sprintf(" (peer %s)", p.Name)
	if p.Address.IsSet() && p.Address.Addr().Is6() {
		v.add(field+".address", "%s is IPv6%s: cgwd's LAN sessions carry IPv4 unicast with next-hop self and need an IPv4 address", p.Address, who)
	} else if a, ok := v.addr(field+".address", p.Address); ok {
		switch {
		case a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
			v.add(field+".address", "%s is not a router's address%s", a, who)
		default:
			if other, dup := addrs[a]; dup {
				v.add(field+".address", "%s is already the peer of %s%s", a, other, who)
			}
			addrs[a] = field
		}
	}
	if p.LocalAddress.IsSet() {
		v.addr(field+".local_address", p.LocalAddress)
	}
	if p.PeerASN == 0 {
		v.add(field+".peer_asn", "is required%s (iBGP when it equals asn, else eBGP)", who)
	} else {
		v.asn(field+".peer_asn", p.PeerASN)
	}
	v.timers(field, p.Keepalive, p.HoldTime)
	v.secretPath(field+".password_file", p.PasswordFile)
	v.bfd(field+".bfd", &p.BFD)
}

// notLinkLocal checks a prefix of the LAN import: valid, and not in
// 169.254.0.0/16, which is never taken from the LAN.
func (v *validator) notLinkLocal(field string, s Prefix) {
	if p, ok := v.prefix(field, s); ok && p.Overlaps(linkLocal) {
		v.add(field, "%s overlaps 169.254.0.0/16 (tunnel inside and Direct Connect addresses), which is never imported from the LAN", p)
	}
}

// lanWarnings warns of a LAN section that does less than it seems to.
func (c *Config) lanWarnings(w *validator) {
	l := &c.LAN
	if len(l.Peers) > 0 && len(l.Import.Allow) == 0 {
		w.add("lan.import.allow", "is empty: nothing is imported from the LAN peers (list the on-prem prefixes to learn from them)")
	}
	if c.ImportsReplace() && len(c.Prefixes) > 0 {
		w.add("prefixes", "are not advertised to AWS with lan.import.mode replace (the prefixes learned from the LAN are); they are still refused from AWS")
	}
	for _, s := range c.sessions() {
		if c.HA.Standby() && s.bgp.Prepend != nil && *s.bgp.Prepend+c.HA.StandbyPrepend > 10 {
			w.add("ha.standby_prepend", "session %s (%s) prepends %d and the standby %d more: an AS path that long may be refused by routers that cap it",
				s.name, s.field, *s.bgp.Prepend, c.HA.StandbyPrepend)
		}
	}
}
