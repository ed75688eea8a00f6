package config

import (
	"fmt"
	"path/filepath"
	"time"
)

// BGP defaults.
const (
	// DefaultGRPCListen is gobgp's API socket when control_socket is left at
	// its default; otherwise the API socket is gobgp.sock next to the control socket.
	DefaultGRPCListen        = "unix:///run/cgwd/gobgp.sock"
	DefaultRouteTable        = 254 // main
	DefaultRouteProtocol     = 200 // "cgwd" in deploy/iproute2/rt_protos.d/cgwd.conf
	DefaultReconcileInterval = 10 * time.Second
	DefaultStaleTime         = 60 * time.Second
	DefaultMaxPrefixesVGW    = 100
	DefaultMaxPrefixesTGW    = 5000
	DefaultMaxPrefixRestart  = 60 * time.Second
)

// BGP holds the speaker's global settings.
type BGP struct {
	// GRPCListen is where gobgp's gRPC API listens, for the stock gobgp CLI:
	// a unix socket (unix:///path, mode 0600, the default), a TCP host:port
	// (any local user gets full control), or "off".
	GRPCListen string `yaml:"grpc_listen"`
	// GRPCAllowRemote lets grpc_listen be a TCP address other than loopback:
	// every host that reaches it gets full, unauthenticated control of BGP.
	GRPCAllowRemote bool `yaml:"grpc_allow_remote"`
	// ListenPort is the TCP port for incoming BGP sessions (179); -1 disables listening.
	ListenPort int `yaml:"listen_port"`
	// RouteTable is the kernel routing table learned routes go into (254 is main).
	RouteTable int `yaml:"route_table"`
	// RouteProtocol marks cgwd's kernel routes (ip route ... proto N); cgwd touches no other routes.
	RouteProtocol int `yaml:"route_protocol"`
	// ReconcileInterval is how often the kernel is compared with what cgwd wants and repaired.
	ReconcileInterval Duration `yaml:"reconcile_interval"`
	// StaleTime is how long routes found in the kernel at start-up are kept while sessions re-establish.
	StaleTime Duration `yaml:"stale_time"`
}

// applyDefaults fills b's defaults; the API socket goes next to controlSocket.
func (b *BGP) applyDefaults(controlSocket string) {
	if b.GRPCListen == "" {
		b.GRPCListen = DefaultGRPCListen
		if filepath.IsAbs(controlSocket) {
			b.GRPCListen = unixScheme + filepath.Join(filepath.Dir(controlSocket), "gobgp.sock")
		}
	}
	if b.ListenPort == 0 {
		b.ListenPort = 179
	}
	if b.RouteTable == 0 {
		b.RouteTable = DefaultRouteTable
	}
	if b.RouteProtocol == 0 {
		b.RouteProtocol = DefaultRouteProtocol
	}
	if b.ReconcileInterval == 0 {
		b.ReconcileInterval = Duration(DefaultReconcileInterval)
	}
	if b.StaleTime == 0 {
		b.StaleTime = Duration(DefaultStaleTime)
	}
}

// PeerBGP holds the settings of one BGP session (a tunnel's or a DX link's).
type PeerBGP struct {
	// PeerASN is the AWS side's ASN (default 64512).
	PeerASN ASN `yaml:"peer_asn"`
	// Keepalive and HoldTime are the session timers (AWS: VPN 10s/30s, DX 30s/90s).
	Keepalive Duration `yaml:"keepalive"`
	HoldTime  Duration `yaml:"hold_time"`
	// Prepend is how many times the local ASN is prepended to advertisements on this session.
	Prepend *int `yaml:"prepend"`
	// Communities are attached to advertisements, e.g. 7224:7100 (DX local preference: low).
	Communities []Community `yaml:"communities"`
	// Allow, when set, accepts only prefixes inside these; by default anything but
	// the on-prem prefixes and 169.254.0.0/16 is accepted.
	Allow []Prefix `yaml:"allow"`
	// MaxPrefixes tears the session down when the peer sends more (VGW 100, TGW 5000).
	MaxPrefixes int `yaml:"max_prefixes"`
	// MaxPrefixesRestart re-enables the session this long after the limit tore it
	// down (default 60s); 0s keeps it down until cgwd restarts.
	MaxPrefixesRestart *Duration `yaml:"max_prefixes_restart"`
	// PasswordFile holds the TCP MD5 password (mode 0600).
	PasswordFile string `yaml:"password_file"`
}

type peerTimers struct{ keepalive, hold time.Duration }

var (
	vpnTimers = peerTimers{10 * time.Second, 30 * time.Second}
	dxTimers  = peerTimers{30 * time.Second, 90 * time.Second}
)

// applyDefaults fills the peer's defaults; tunnelIndex is 1 or 2 for a VPN
// tunnel (tunnel 2 prepends more, so it is the standby) and 0 for DX. A key
// in given was set in the file: its 0 is kept for Validate to refuse.
func (p *PeerBGP) applyDefaults(t peerTimers, gateway Gateway, tunnelIndex int, given func(key string) bool) {
	if p.PeerASN == 0 && !given("peer_asn") {
		p.PeerASN = DefaultAWSASN
	}
	if p.Keepalive == 0 {
		p.Keepalive = Duration(t.keepalive)
	}
	if p.HoldTime == 0 && !given("hold_time") {
		p.HoldTime = Duration(t.hold)
	}
	if p.Prepend == nil {
		n := tunnelIndex // DX 0, tunnel 1 once, tunnel 2 twice
		p.Prepend = &n
	}
	if p.MaxPrefixesRestart == nil {
		d := Duration(DefaultMaxPrefixRestart)
		p.MaxPrefixesRestart = &d
	}
	if p.MaxPrefixes == 0 && !given("max_prefixes") {
		p.MaxPrefixes = DefaultMaxPrefixesVGW
		if gateway == GatewayTGW {
			p.MaxPrefixes = DefaultMaxPrefixesTGW
		}
	}
}

func (v *validator) mode(field string, m Mode) {
	if m != ModeActiveStandby && m != ModeECMP {
		v.add(field, "%q is not one of active-standby, ecmp", m)
	}
}

func (v *validator) gateway(field string, g Gateway) {
	if g != GatewayVGW && g != GatewayTGW {
		v.add(field, "%q is not one of vgw, tgw", g)
	}
}

func (v *validator) peerBGP(field string, p *PeerBGP) {
	v.asn(field+".peer_asn", p.PeerASN)
	hold, ka := time.Duration(p.HoldTime), time.Duration(p.Keepalive)
	// BGP allows hold time 0 (no keepalives), but gobgp's API replaces a 0
	// with 90s, so cgwd refuses it rather than run with another value.
	if hold == 0 {
		v.add(field+".hold_time", "0s is not supported (cgwd's BGP speaker would use 90s); set 3s-65535s or leave it out for the default")
	} else if hold < 3*time.Second || hold > 65535*time.Second {
		v.add(field+".hold_time", "%v is outside 3s-65535s", hold)
	}
	if ka <= 0 || (hold != 0 && ka >= hold) {
		v.add(field+".keepalive", "%v must be positive and shorter than hold_time %v", ka, hold)
	}
	if p.Prepend != nil && (*p.Prepend < 0 || *p.Prepend > 10) {
		v.add(field+".prepend", "%d is outside 0-10", *p.Prepend)
	}
	for i, c := range p.Communities {
		if c.err != "" {
			v.add(fmt.Sprintf("%s.communities[%d]", field, i), "%s", c.err)
		}
	}
	for i, a := range p.Allow {
		v.prefix(fmt.Sprintf("%s.allow[%d]", field, i), a)
	}
	if p.MaxPrefixesRestart != nil && *p.MaxPrefixesRestart < 0 {
		v.add(field+".max_prefixes_restart", "must not be negative")
	}
	if p.MaxPrefixes == 0 {
		v.add(field+".max_prefixes", "0 would mean no limit, which cgwd does not allow; set 1-10000000 or leave it out for the default (vgw 100, tgw 5000)")
	} else if p.MaxPrefixes < 1 || p.MaxPrefixes > 10_000_000 {
		v.add(field+".max_prefixes", "%d is outside 1-10000000", p.MaxPrefixes)
	}
}

func (v *validator) bgpGlobal(b *BGP) {
	if b.ListenPort != -1 && (b.ListenPort < 1 || b.ListenPort > 65535) {
		v.add("bgp.listen_port", "%d is not a TCP port or -1", b.ListenPort)
	}
	if b.RouteTable < 1 || b.RouteTable > 0xFFFFFFFE || b.RouteTable == 255 {
		v.add("bgp.route_table", "%d is not a usable routing table (1-4294967294, not 255 local)", b.RouteTable)
	}
	if b.RouteProtocol < 5 || b.RouteProtocol > 255 {
		v.add("bgp.route_protocol", "%d is outside 5-255 (0-4 belong to the kernel)", b.RouteProtocol)
	}
	if b.ReconcileInterval < Duration(100*time.Millisecond) {
		v.add("bgp.reconcile_interval", "%v is shorter than 100ms", time.Duration(b.ReconcileInterval))
	}
	if b.StaleTime < 0 {
		v.add("bgp.stale_time", "must not be negative")
	}
}
