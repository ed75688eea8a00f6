// Package firewall builds and installs cgwd's own nftables table (inet
// family): default deny inbound on the WAN interface except the tunnels'
// underlay from the configured AWS endpoints, return traffic, rate-limited
// ICMP and optional SSH; BGP and BFD only from the configured peers on their
// interfaces; TCP MSS clamping on the tunnel netdevs. The rules are computed
// from a Spec without a kernel (Rules), then installed in one netlink batch
// (Install) and removed by deleting the whole table (Firewall.Remove).
package firewall

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// DefaultTable is the name of cgwd's nftables table.
const DefaultTable = "cgwd"

// Ports the rules refer to.
const (
	PortIKE     = 500
	PortNATT    = 4500
	PortBGP     = 179
	PortBFD     = 3784 // single-hop control (RFC 5881)
	PortBFDEcho = 3785
	PortSSH     = 22
)

// ICMPBurst is how many ICMP packets may pass at once above the rate.
const ICMPBurst = 5

// Spec is everything the rules depend on.
type Spec struct {
	// Table names the nftables table (DefaultTable if empty).
	Table string
	// WAN is the interface facing the internet.
	WAN string
	// Tunnels are the VPN tunnels.
	Tunnels []Tunnel
	// DirectConnect are the DX links.
	DirectConnect []Link
	// LAN are the BGP sessions with on-prem routers (lan.peers).
	LAN []Link
	// AllowSSHFrom may reach TCP 22 over the WAN interface.
	AllowSSHFrom []netip.Prefix
	// ICMPRate packets per ICMPPer pass on the WAN interface.
	ICMPRate uint64
	ICMPPer  time.Duration
	// BGPPort is where cgwd accepts BGP sessions; 0 when it does not listen.
	BGPPort uint16
}

// Tunnel is what the firewall needs to know about one tunnel.
type Tunnel struct {
	// Netdev is the tunnel's interface, e.g. cgw-t1.
	Netdev string
	// Remote is the AWS endpoint's outside address.
	Remote netip.Addr
	// UDPPorts are the local ports its underlay arrives on.
	UDPPorts []uint16
	// Peer is the AWS inside address, the BGP (and BFD) peer.
	Peer netip.Addr
	// BFD is whether BFD runs on the tunnel.
	BFD bool
	// MTU of the netdev; TCP MSS is clamped to MTU-40.
	MTU int
}

// Link is a Direct Connect link: its interface and BGP peer.
type Link struct {
	Interface string
	Peer      netip.Addr
	BFD       bool
}

// Chains of the table.
const (
	ChainInput   = "input"   // filter, hook input
	ChainForward = "forward" // filter, hook forward
	ChainMSS     = "mss"     // filter, hook forward, priority mangle
)

// Verdict is what a rule does with a packet that matches it.
type Verdict int

// Verdicts.
const (
	Accept Verdict = iota
	Drop
	ClampMSS // lower the TCP MSS option to Rule.MSS when it is larger
)

// Layer 4 protocols matched.
const (
	ProtoICMP   = 1
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoICMPv6 = 58
)

// Conntrack states matched by CtState (the kernel's bits).
const (
	CtEstablished = 2
	CtRelated     = 4
)

// Rule is one nftables rule in a protocol-level form. Zero fields match
// anything.
type Rule struct {
	Chain     string
	IIf, OIf  string
	CtState   uint32       // any of these states
	SAddr     netip.Prefix // IPv4 source
	Proto     uint8        // layer 4 protocol
	DPort     uint16       // TCP or UDP destination port
	ICMPType  *uint8       // ICMP/ICMPv6 type (with Proto)
	SYN       bool         // TCP SYN set, RST clear
	Limit     uint64       // packets per LimitPer, with ICMPBurst
	LimitPer  time.Duration
	LimitOver bool // match above the rate instead of below
	Counter   bool
	Verdict   Verdict
	MSS       uint16 // for ClampMSS
	Comment   string
}

// Rules returns the table's rules for s, chain by chain, in order.
func Rules(s Spec) []Rule {
	var rs []Rule
	in := func(r Rule) { r.Chain = ChainInput; rs = append(rs, r) }
	// Echo requests are limited before conntrack would call a ping's later
	// requests established.
	for _, p := range []struct{ proto, typ uint8 }{{ProtoICMP, 8}, {ProtoICMPv6, 128}} {
		in(Rule{IIf: s.WAN, Proto: p.proto, ICMPType: &p.typ, Limit: s.ICMPRate, LimitPer: s.ICMPPer, LimitOver: true,
			Counter: true, Verdict: Drop, Comment: "ICMP echo over the rate limit"})
	}
	in(Rule{CtState: CtEstablished | CtRelated, Verdict: Accept, Comment: "return traffic"})
	in(Rule{IIf: "lo", Verdict: Accept})
	peer := func(iface string, p netip.Addr, bfd bool, what string) {
		src := netip.PrefixFrom(p, 32)
		if s.BGPPort != 0 {
			in(Rule{IIf: iface, SAddr: src, Proto: ProtoTCP, DPort: s.BGPPort, Counter: true, Verdict: Accept, Comment: "BGP from " + what})
		}
		if bfd {
			for _, port := range []uint16{PortBFD, PortBFDEcho} {
				in(Rule{IIf: iface, SAddr: src, Proto: ProtoUDP, DPort: port, Counter: true, Verdict: Accept, Comment: "BFD from " + what})
			}
		}
	}
	for _, t := range s.Tunnels {
		peer(t.Netdev, t.Peer, t.BFD, "tunnel "+t.Netdev)
	}
	for _, d := range s.DirectConnect {
		peer(d.Interface, d.Peer, d.BFD, "Direct Connect "+d.Interface)
	}
	for _, l := range s.LAN {
		peer(l.Interface, l.Peer, l.BFD, "LAN peer "+l.Peer.String())
	}
	bgpPort := s.BGPPort
	if bgpPort == 0 {
		bgpPort = PortBGP
	}
	in(Rule{Proto: ProtoTCP, DPort: bgpPort, Counter: true, Verdict: Drop, Comment: "BGP from anyone else"})
	in(Rule{Proto: ProtoUDP, DPort: PortBFD, Counter: true, Verdict: Drop, Comment: "BFD from anyone else"})
	in(Rule{Proto: ProtoUDP, DPort: PortBFDEcho, Counter: true, Verdict: Drop, Comment: "BFD from anyone else"})
	for _, t := range s.Tunnels {
		for _, port := range t.UDPPorts {
			in(Rule{IIf: s.WAN, SAddr: netip.PrefixFrom(t.Remote, 32), Proto: ProtoUDP, DPort: port, Counter: true, Verdict: Accept, Comment: "underlay of tunnel " + t.Netdev})
		}
	}
	for _, p := range s.AllowSSHFrom {
		in(Rule{IIf: s.WAN, SAddr: p, Proto: ProtoTCP, DPort: PortSSH, Counter: true, Verdict: Accept, Comment: "SSH"})
	}
	// IPv6 neighbour discovery must not be rate-limited away.
	for _, typ := range []uint8{133, 134, 135, 136} {
		in(Rule{IIf: s.WAN, Proto: ProtoICMPv6, ICMPType: &typ, Verdict: Accept})
	}
	for _, proto := range []uint8{ProtoICMP, ProtoICMPv6} {
		in(Rule{IIf: s.WAN, Proto: proto, Limit: s.ICMPRate, LimitPer: s.ICMPPer, Verdict: Accept})
	}
	in(Rule{IIf: s.WAN, Counter: true, Verdict: Drop, Comment: "default deny inbound on WAN"})

	rs = append(rs,
		Rule{Chain: ChainForward, IIf: s.WAN, CtState: CtEstablished | CtRelated, Verdict: Accept},
		Rule{Chain: ChainForward, IIf: s.WAN, Counter: true, Verdict: Drop, Comment: "default deny inbound on WAN"},
	)
	for _, t := range s.Tunnels {
		mss := uint16(t.MTU - 40)
		rs = append(rs,
			Rule{Chain: ChainMSS, OIf: t.Netdev, Proto: ProtoTCP, SYN: true, Verdict: ClampMSS, MSS: mss},
			Rule{Chain: ChainMSS, IIf: t.Netdev, Proto: ProtoTCP, SYN: true, Verdict: ClampMSS, MSS: mss},
		)
	}
	return rs
}

var icmpTypes = map[[2]uint8]string{
	{ProtoICMP, 8}: "echo-request", {ProtoICMPv6, 128}: "echo-request",
	{ProtoICMPv6, 133}: "nd-router-solicit", {ProtoICMPv6, 134}: "nd-router-advert",
	{ProtoICMPv6, 135}: "nd-neighbor-solicit", {ProtoICMPv6, 136}: "nd-neighbor-advert",
}

// String renders r the way `nft list table` prints it (without counters' values).
func (r Rule) String() string {
	var w []string
	add := func(f string, a ...any) { w = append(w, fmt.Sprintf(f, a...)) }
	if r.IIf != "" {
		add("iifname %q", r.IIf)
	}
	if r.OIf != "" {
		add("oifname %q", r.OIf)
	}
	if r.CtState != 0 {
		var st []string
		if r.CtState&CtEstablished != 0 {
			st = append(st, "established")
		}
		if r.CtState&CtRelated != 0 {
			st = append(st, "related")
		}
		add("ct state %s", strings.Join(st, ","))
	}
	if r.SAddr.IsValid() {
		if r.SAddr.IsSingleIP() {
			add("ip saddr %s", r.SAddr.Addr())
		} else {
			add("ip saddr %s", r.SAddr)
		}
	}
	proto := map[uint8]string{ProtoICMP: "icmp", ProtoTCP: "tcp", ProtoUDP: "udp", ProtoICMPv6: "ipv6-icmp"}[r.Proto]
	switch {
	case r.DPort != 0:
		add("%s dport %d", proto, r.DPort)
	case r.ICMPType != nil:
		add("%s type %s", map[uint8]string{ProtoICMP: "icmp", ProtoICMPv6: "icmpv6"}[r.Proto], icmpTypes[[2]uint8{r.Proto, *r.ICMPType}])
	case r.SYN:
		add("tcp flags syn / syn,rst")
	case r.Proto != 0:
		add("meta l4proto %s", proto)
	}
	if r.Limit != 0 {
		over := ""
		if r.LimitOver {
			over = "over "
		}
		add("limit rate %s%d/%s", over, r.Limit, map[time.Duration]string{time.Second: "second", time.Minute: "minute", time.Hour: "hour"}[r.LimitPer])
	}
	if r.Counter {
		add("counter")
	}
	switch r.Verdict {
	case Accept:
		add("accept")
	case Drop:
		add("drop")
	case ClampMSS:
		add("tcp option maxseg size > %d tcp option maxseg size set %d", r.MSS, r.MSS)
	}
	if r.Comment != "" {
		add("comment %q", r.Comment)
	}
	return strings.Join(w, " ")
}
