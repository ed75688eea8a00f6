// Package config loads and validates cgwd's YAML configuration file.
//
// Loading is two steps: Parse decodes the YAML (unknown keys and values of
// the wrong shape are problems, with their line) and fills in defaults; Validate checks every field against AWS's
// rules and returns all problems at once, each naming its field path.
// Load does both and then reads the secret files, refusing any that group or
// others can read.
package config

import (
	"fmt"
	"net/netip"
	"os"
	"time"

	"gopkg.in/yaml.v3"
)

// Defaults used when a field is left out.
const (
	DefaultControlSocket = "/run/cgwd/cgwd.sock"
	DefaultMetricsListen = "127.0.0.1:9477"
	DefaultTunnelMTU     = 1420
	DefaultAWSASN        = 64512
	DefaultWireGuardPort = 51820
)

// Config is the whole cgwd configuration.
type Config struct {
	// ASN is the local (customer gateway) autonomous system number.
	ASN ASN `yaml:"asn"`
	// asnGiven tells an explicit asn: 0 from a missing asn.
	asnGiven bool
	// RouterID is the BGP router ID; defaults to the first tunnel's inside address.
	RouterID Addr `yaml:"router_id"`
	// Prefixes are the on-prem prefixes advertised to AWS.
	Prefixes []Prefix `yaml:"prefixes"`
	// AWSPrefixes are AWS prefixes (VPC CIDRs) made unreachable, rather
	// than routed by the default route, while no path to AWS is usable, even
	// before BGP has offered them (fail closed).
	AWSPrefixes []Prefix `yaml:"aws_prefixes"`
	// FailClosed keeps an unreachable route below cgwd's own for every AWS
	// prefix, also while cgwd is stopped, so that traffic for AWS never
	// leaves in clear text through the default route (default true).
	FailClosed *bool `yaml:"fail_closed"`
	// ManageForwarding turns IPv4 forwarding on while cgwd runs and
	// reverse-path filtering loose on its tunnel and DX netdevs, and puts
	// both back on stop (default true). Off, they are the operator's.
	ManageForwarding *bool `yaml:"manage_forwarding"`
	// ControlSocket is the unix socket `cgwd status` talks to.
	ControlSocket string `yaml:"control_socket"`
	// Log configures logging.
	Log Log `yaml:"log"`
	// Metrics configures the Prometheus endpoint.
	Metrics Metrics `yaml:"metrics"`
	// Pprof configures Go's profiling endpoint (off by default).
	Pprof Pprof `yaml:"pprof"`
	// VPN lists the AWS Site-to-Site VPN connections.
	VPN []VPN `yaml:"vpn"`
	// DirectConnect lists the Direct Connect links.
	DirectConnect []DirectConnect `yaml:"direct_connect"`
	// BGP holds the speaker's global settings.
	BGP BGP `yaml:"bgp"`
	// Failover configures path selection.
	Failover Failover `yaml:"failover"`
	// Firewall configures the optional nftables lock-down.
	Firewall Firewall `yaml:"firewall"`
	// LAN configures BGP with the on-prem routers (lan.go).
	LAN LAN `yaml:"lan"`
	// HA is the box's role in a pair of customer gateways (lan.go).
	HA HA `yaml:"ha"`
	// Drain configures `cgwd drain` (maintenance).
	Drain Drain `yaml:"drain"`
}

// Log configures the slog handler.
type Log struct {
	// Level is debug, info, warn or error.
	Level LogLevel `yaml:"level"`
	// Format is text or json.
	Format LogFormat `yaml:"format"`
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	// Listen is the host:port to serve /metrics on; "off" disables it.
	Listen string `yaml:"listen"`
	// Pprof is no longer accepted: profiles have their own loopback
	// listener, pprof.listen. Kept only to say so.
	Pprof bool `yaml:"pprof"`
}

// VPN is one AWS VPN connection: exactly two tunnels.
type VPN struct {
	// Name labels the connection in metrics and status.
	Name string `yaml:"name"`
	// Gateway is the AWS side: vgw (virtual private gateway) or tgw (transit gateway).
	Gateway Gateway `yaml:"gateway"`
	// Mode is how traffic uses the tunnels: active-standby (tunnel 1, then
	// tunnel 2; tunnel 2 prepends more) or ecmp (every healthy tunnel, with
	// equal AS paths toward AWS; for a transit gateway with ECMP on).
	Mode Mode `yaml:"mode"`
	// Tunnels are the connection's two tunnels.
	Tunnels []Tunnel `yaml:"tunnels"`
	// Routing is bgp (a BGP session in each tunnel, the default) or static
	// (AWS's StaticRoutesOnly: no BGP; StaticRoutes go over the tunnels).
	Routing Routing `yaml:"routing"`
	// StaticRoutes are the VPC CIDRs routed over a static connection's tunnels.
	StaticRoutes []Prefix `yaml:"static_routes"`
	// FollowAWS makes cgwd send on the tunnel AWS sends on when the
	// tunnels' preference and BGP attributes tie (for stateful firewalls
	// behind the box); off, the tunnel order decides.
	FollowAWS bool `yaml:"follow_aws"`
}

// Tunnel is one tunnel of a VPN connection.
type Tunnel struct {
	// Name is the TUN netdev name, e.g. cgw-t1.
	Name string `yaml:"name"`
	// Kind is wireguard or ipsec.
	Kind TunnelKind `yaml:"kind"`
	// Outside holds the public (outside) endpoint addresses.
	Outside Outside `yaml:"outside"`
	// Inside is the /30 inside CIDR; AWS takes the first usable address, cgwd the second.
	Inside Prefix `yaml:"inside"`
	// MTU of the tunnel netdev. Unset, an ipsec tunnel takes the MTU AWS
	// publishes for the negotiated suite (DefaultTunnelMTU until then).
	MTU int `yaml:"mtu"`
	// mtuDefault: MTU was not in the file (set by applyDefaults).
	mtuDefault bool
	// WireGuard holds the keys and ports of a wireguard tunnel.
	WireGuard *WireGuard `yaml:"wireguard"`
	// IPsec holds the keys of an ipsec tunnel.
	IPsec *IPsec `yaml:"ipsec"`
	// BGP overrides the tunnel's BGP peer settings (none with routing: static).
	BGP PeerBGP `yaml:"bgp,omitempty"`
	// BFD checks the tunnel toward the AWS inside address (off by default).
	BFD BFD `yaml:"bfd"`
	// Probe checks the tunnel with ICMP echo (on by default unless BFD is).
	Probe Probe `yaml:"probe"`
	// Preference orders the tunnel against other paths before BGP's
	// attributes, higher first (default PreferenceDynamicVPN).
	Preference int `yaml:"preference"`
}

// MTUConfigured reports whether the file gave the tunnel's MTU.
func (t *Tunnel) MTUConfigured() bool { return !t.mtuDefault }

// Outside holds a tunnel's outside (underlay) addresses.
type Outside struct {
	// Local is the customer gateway's public address.
	Local Addr `yaml:"local"`
	// Remote is the AWS tunnel endpoint's public address.
	Remote Addr `yaml:"remote"`
}

// WireGuard holds the settings of a wireguard tunnel.
type WireGuard struct {
	// PrivateKeyFile holds the base64 private key (mode 0600).
	PrivateKeyFile string `yaml:"private_key_file"`
	// PeerPublicKey is the AWS side's base64 public key.
	PeerPublicKey string `yaml:"peer_public_key"`
	// ListenPort is the local UDP port.
	ListenPort int `yaml:"listen_port"`
	// RemotePort is the peer's UDP port.
	RemotePort int `yaml:"remote_port"`
	// PersistentKeepalive sends a keepalive after this much silence; 0 disables.
	PersistentKeepalive Duration `yaml:"persistent_keepalive"`
}

// DirectConnect is one Direct Connect link.
type DirectConnect struct {
	// Name labels the link in metrics and status.
	Name string `yaml:"name"`
	// Interface is the netdev carrying the link.
	Interface string `yaml:"interface"`
	// Local is cgwd's address with its /30, e.g. 169.254.255.2/30.
	Local Prefix `yaml:"local"`
	// Peer is the AWS router's address.
	Peer Addr `yaml:"peer"`
	// Gateway is the AWS side: vgw or tgw.
	Gateway Gateway `yaml:"gateway"`
	// BGP overrides the link's BGP peer settings.
	BGP PeerBGP `yaml:"bgp"`
	// BFD checks the link (on by default, 300ms x 3).
	BFD BFD `yaml:"bfd"`
	// Preference orders the link against other paths before BGP's
	// attributes, higher first (default PreferenceDX).
	Preference int `yaml:"preference"`
}

// Duration is a time.Duration that YAML writes as "25s".
type Duration time.Duration

// UnmarshalYAML parses a Go duration string or a bare number of seconds.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	if v, err := time.ParseDuration(s); err == nil {
		*d = Duration(v)
		return nil
	}
	var secs int
	if err := n.Decode(&secs); err == nil {
		*d = Duration(time.Duration(secs) * time.Second)
		return nil
	}
	return fmt.Errorf("%q is not a duration (e.g. 25s)", s)
}

// Parse decodes YAML and applies defaults. It does not validate. Unknown
// keys, values of the wrong shape and YAML syntax errors are refused as
// Problems, each with its field path and line.
func Parse(data []byte) (*Config, error) {
	c, d, err := decode(data)
	if err != nil {
		return nil, err
	}
	if len(d.probs) > 0 {
		return nil, d.probs
	}
	return c, nil
}

// applyDefaults fills what was left out; given holds the paths of the keys
// the file set, so that an explicit 0 is kept for Validate to judge.
func (c *Config) applyDefaults(given map[string]bool) {
	if c.ControlSocket == "" {
		c.ControlSocket = DefaultControlSocket
	}
	if c.Metrics.Listen == "" {
		c.Metrics.Listen = DefaultMetricsListen
	}
	if c.Log.Level == "" {
		c.Log.Level = LogInfo
	}
	if c.Log.Format == "" {
		c.Log.Format = LogText
	}
	for i := range c.VPN {
		v := &c.VPN[i]
		if v.Name == "" {
			v.Name = fmt.Sprintf("vpn%d", i+1)
		}
		if v.Gateway == "" {
			v.Gateway = GatewayVGW
		}
		if v.Mode == "" {
			v.Mode = ModeActiveStandby
		}
		if v.Routing == "" {
			v.Routing = RoutingBGP
		}
		for j := range v.Tunnels {
			t := &v.Tunnels[j]
			if t.MTU == 0 {
				t.MTU, t.mtuDefault = DefaultTunnelMTU, true
			}
			// Active-standby: tunnel 1 prepends once, tunnel 2 twice, so
			// AWS prefers tunnel 1. ECMP: equal AS paths, so a transit
			// gateway with ECMP spreads its traffic over both tunnels.
			prepend := j + 1
			if v.Mode == ModeECMP {
				prepend = 0
			}
			if !v.Static() { // a static connection has no BGP session
				t.BGP.applyDefaults(vpnTimers, quotaOf(false, v.Gateway), prepend, keysUnder(given, fmt.Sprintf("vpn[%d].tunnels[%d].bgp", i, j)))
			}
			t.BFD.applyDefaults(false)
			t.Probe.applyDefaults(!t.BFD.On())
			if w := t.WireGuard; w != nil {
				if w.ListenPort == 0 {
					w.ListenPort = DefaultWireGuardPort + j
				}
				if w.RemotePort == 0 {
					w.RemotePort = DefaultWireGuardPort
				}
			}
		}
	}
	c.BGP.applyDefaults(c.ControlSocket)
	c.Failover.applyDefaults()
	c.Firewall.applyDefaults()
	c.LAN.applyDefaults(given)
	c.HA.applyDefaults(given)
	c.Drain.applyDefaults()
	for i := range c.DirectConnect {
		d := &c.DirectConnect[i]
		if d.Name == "" {
			d.Name = fmt.Sprintf("dx%d", i+1)
		}
		if d.Gateway == "" {
			d.Gateway = GatewayVGW
		}
		d.BGP.applyDefaults(dxTimers, quotaOf(true, d.Gateway), 0, keysUnder(given, fmt.Sprintf("direct_connect[%d].bgp", i)))
		d.BFD.applyDefaults(true)
	}
	c.applyPreferences(given)
}

// ParseFile reads and parses the file at path without validating it.
func ParseFile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Load reads, parses and validates the file at path, then checks that every
// secret file exists and is private. The returned error lists every problem.
func Load(path string) (*Config, error) { return load(path, true) }

// LoadSkipSecrets is Load without the secret-file checks, for checking a
// config away from the gateway that will run it.
func LoadSkipSecrets(path string) (*Config, error) { return load(path, false) }

func load(path string, checkSecrets bool) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, d, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	probs := d.probs
	if c != nil {
		// What did not decode is already reported; Validate checks the
		// rest, and would only repeat a cut field as missing or zero.
		more := c.Validate()
		if checkSecrets {
			more = append(more, c.checkSecretFiles()...)
		}
		for _, p := range more {
			if !d.probs.covers(p.Field) {
				p.Line, p.Column = d.locate(p.Field)
				probs = append(probs, p)
			}
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return c, nil
}

// InsideAddrs returns the AWS side's and cgwd's addresses of a tunnel's inside
// /30: the first and second usable addresses. The CIDR must have passed Validate.
func (t *Tunnel) InsideAddrs() (aws, local netip.Prefix) {
	p := t.Inside.Prefix().Masked()
	a := p.Addr().Next()
	return netip.PrefixFrom(a, 30), netip.PrefixFrom(a.Next(), 30)
}
