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
	DefaultMaxPrefixRestart  = 60 * time.Second
)

// AWS's per-session route quotas, the defaults of max_prefixes (routes AWS
// sends, which cgwd receives) and advertise_limit (routes cgwd sends; AWS
// drops a session that gets more). Sources: the Site-to-Site VPN quotas and
// the Direct Connect quotas pages (README, "AWS rules").
const (
	// DefaultMaxPrefixesVGW: a VPN connection on a virtual private gateway sends up to 1,000 routes.
	DefaultMaxPrefixesVGW = 1000
	// DefaultMaxPrefixesTGW: a VPN connection on a transit gateway sends up to 5,000.
	DefaultMaxPrefixesTGW = 5000
	// DefaultMaxPrefixesDX: AWS publishes no per-session count for what a
	// private VIF sends, and 200 per transit gateway on a transit VIF;
	// cgwd allows as many as a VGW's VPN.
	DefaultMaxPrefixesDX = 1000
	// DefaultAdvertiseLimitVGW: a VPN connection on a virtual private gateway accepts 100 routes.
	DefaultAdvertiseLimitVGW = 100
	// DefaultAdvertiseLimitTGW: a VPN connection on a transit gateway accepts 1,000.
	DefaultAdvertiseLimitTGW = 1000
	// DefaultAdvertiseLimitDX: a private or transit VIF's BGP session accepts 100 per address family.
	DefaultAdvertiseLimitDX = 100
)

// OverLimit is what cgwd does with prefixes beyond a session's advertise_limit.
type OverLimit string

// What to do with prefixes over a session's advertise_limit.
const (
	// OverLimitRefuse refuses a config with more prefixes than a session may send.
	OverLimitRefuse OverLimit = "refuse"
	// OverLimitHoldBack sends the first advertise_limit prefixes, in the
	// order of prefixes, and logs the ones it holds back.
	OverLimitHoldBack OverLimit = "hold-back"
)

// awsQuota is the route quotas of one session toward AWS.
type awsQuota struct{ received, sent int }

// quotaOf is AWS's quota for a VPN tunnel's or (dx) a Direct Connect
// link's session on gateway g.
func quotaOf(dx bool, g Gateway) awsQuota {
	switch {
	case dx:
		return awsQuota{DefaultMaxPrefixesDX, DefaultAdvertiseLimitDX}
	case g == GatewayTGW:
		return awsQuota{DefaultMaxPrefixesTGW, DefaultAdvertiseLimitTGW}
	}
	return awsQuota{DefaultMaxPrefixesVGW, DefaultAdvertiseLimitVGW}
}

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
	// AdvertiseOverLimit is refuse (the default: a config with more prefixes
	// than a session's advertise_limit is invalid) or hold-back (send the
	// first advertise_limit of them and log the rest).
	AdvertiseOverLimit OverLimit `yaml:"advertise_over_limit"`
	// GracefulRestart is BGP graceful restart (RFC 4724) on the sessions (gr.go).
	GracefulRestart GracefulRestart `yaml:"graceful_restart"`
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
	if b.AdvertiseOverLimit == "" {
		b.AdvertiseOverLimit = OverLimitRefuse
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
	// MaxPrefixes tears the session down when the peer sends more than AWS
	// may (VPN: VGW 1000, TGW 5000; DX 1000).
	MaxPrefixes int `yaml:"max_prefixes"`
	// AdvertiseLimit is the most prefixes cgwd sends on the session, AWS's
	// quota by default (VPN: VGW 100, TGW 1000; DX private and transit VIF 100).
	AdvertiseLimit int `yaml:"advertise_limit"`
	// MaxPrefixesRestart re-enables the session this long after the limit tore it
	// down (default 60s); 0s keeps it down until cgwd restarts.
	MaxPrefixesRestart *Duration `yaml:"max_prefixes_restart"`
	// PasswordFile holds the TCP MD5 password (mode 0600).
	PasswordFile string `yaml:"password_file"`
	// GracefulRestart turns graceful restart on or off for this session;
	// unset, bgp.graceful_restart decides (see Config.GracefulRestartOn).
	GracefulRestart *bool `yaml:"graceful_restart"`
}

type peerTimers struct{ keepalive, hold time.Duration }

var (
	vpnTimers = peerTimers{10 * time.Second, 30 * time.Second}
	dxTimers  = peerTimers{30 * time.Second, 90 * time.Second}
)

// applyDefaults fills the peer's defaults: q is AWS's quota for the session
// and prepend the default AS-path prepend (tunnel 2 of an active-standby
// connection prepends more, so it is the standby). A key in given was set in
// the file: its 0 is kept for Validate to refuse.
func (p *PeerBGP) applyDefaults(t peerTimers, q awsQuota, prepend int, given func(key string) bool) {
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
		p.Prepend = &prepend
	}
	if p.MaxPrefixesRestart == nil {
		d := Duration(DefaultMaxPrefixRestart)
		p.MaxPrefixesRestart = &d
	}
	if p.MaxPrefixes == 0 && !given("max_prefixes") {
		p.MaxPrefixes = q.received
	}
	if p.AdvertiseLimit == 0 && !given("advertise_limit") {
		p.AdvertiseLimit = q.sent
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
	v.timers(field, p.Keepalive, p.HoldTime)
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
		v.add(field+".max_prefixes", "0 would mean no limit, which cgwd does not allow; set 1-10000000 or leave it out for AWS's quota (VPN vgw 1000, tgw 5000; DX 1000)")
	} else if p.MaxPrefixes < 1 || p.MaxPrefixes > 10_000_000 {
		v.add(field+".max_prefixes", "%d is outside 1-10000000", p.MaxPrefixes)
	}
	if p.AdvertiseLimit < 1 || p.AdvertiseLimit > 10_000_000 {
		v.add(field+".advertise_limit", "%d is outside 1-10000000 (leave it out for AWS's quota: VPN vgw 100, tgw 1000; DX 100)", p.AdvertiseLimit)
	}
}

// timers checks a session's keepalive and hold_time under field.
func (v *validator) timers(field string, keepalive, holdTime Duration) {
	hold, ka := time.Duration(holdTime), time.Duration(keepalive)
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
}

// session is one BGP session of a config, for the checks across sessions.
type session struct {
	field, name, what string // what: the AWS side, as the quotas name it
	bgp               *PeerBGP
	bfd               *BFD
	dx                bool
	quota             awsQuota
}

// sessions lists the config's BGP sessions: every tunnel's, then every DX link's.
func (c *Config) sessions() []session {
	var out []session
	for i := range c.VPN {
		v := &c.VPN[i]
		what := "a VPN connection on a virtual private gateway"
		if v.Gateway == GatewayTGW {
			what = "a VPN connection on a transit gateway"
		}
		for j := range v.Tunnels {
			if v.Static() {
				break // no BGP session
			}
			t := &v.Tunnels[j]
			out = append(out, session{fmt.Sprintf("vpn[%d].tunnels[%d]", i, j), t.Name, what, &t.BGP, &t.BFD, false, quotaOf(false, v.Gateway)})
		}
	}
	for i := range c.DirectConnect {
		d := &c.DirectConnect[i]
		what := "a Direct Connect private virtual interface"
		if d.Gateway == GatewayTGW {
			what = "a Direct Connect transit virtual interface"
		}
		out = append(out, session{fmt.Sprintf("direct_connect[%d]", i), d.Name, what, &d.BGP, &d.BFD, true, quotaOf(true, d.Gateway)})
	}
	return out
}

// advertiseLimits checks the on-prem prefixes against every session's
// advertise_limit: over it, a config is refused unless
// bgp.advertise_over_limit is hold-back, when it is a warning (w).
func (c *Config) advertiseLimits(v, w *validator) {
	if c.BGP.AdvertiseOverLimit != OverLimitRefuse && c.BGP.AdvertiseOverLimit != OverLimitHoldBack {
		v.add("bgp.advertise_over_limit", "%q is not one of refuse, hold-back", c.BGP.AdvertiseOverLimit)
		return
	}
	n := len(c.Prefixes)
	if c.ImportsReplace() {
		n = 0 // what is learned from the LAN is held back at run time
	}
	for _, s := range c.sessions() {
		limit := s.bgp.AdvertiseLimit
		if limit < 1 || n <= limit {
			continue
		}
		if c.BGP.AdvertiseOverLimit == OverLimitHoldBack {
			w.add("prefixes", "%d prefixes, more than session %s (%s) may send: cgwd sends the first %d and holds back %d (the log names them)",
				n, s.name, s.field, limit, n-limit)
			continue
		}
		v.add("prefixes", "%d prefixes, more than the advertise limit of session %s (%s.bgp.advertise_limit %d): "+
			"AWS drops the BGP session of %s that receives more than %d routes; summarise the prefixes, "+
			"or set bgp.advertise_over_limit: hold-back to send only the first %d",
			n, s.name, s.field, limit, s.what, s.quota.sent, limit)
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
	v.gracefulRestart(&b.GracefulRestart)
}
