package daemon

// This file is the one place where cgwd's config becomes the settings of
// its components: tunnels, the BGP speaker, the FIB, failover and its health
// checks, and the firewall. The components take their own small config
// structs and know nothing of the config file; the config's values are
// already parsed and validated, so nothing here parses a string.

import (
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/cgwd/cgwd/pkg/bfd"
	"github.com/cgwd/cgwd/pkg/bgp"
	"github.com/cgwd/cgwd/pkg/certauth"
	"github.com/cgwd/cgwd/pkg/config"
	"github.com/cgwd/cgwd/pkg/failover"
	"github.com/cgwd/cgwd/pkg/fib"
	"github.com/cgwd/cgwd/pkg/firewall"
	"github.com/cgwd/cgwd/pkg/ike"
	"github.com/cgwd/cgwd/pkg/netdev"
	"github.com/cgwd/cgwd/pkg/probe"
	"github.com/cgwd/cgwd/pkg/secret"
	"github.com/cgwd/cgwd/pkg/symmetry"
	"github.com/cgwd/cgwd/pkg/tunnel"
	"github.com/cgwd/cgwd/pkg/tunnel/ipsec"
	"github.com/cgwd/cgwd/pkg/tunnel/wireguard"
)

// linkLocal is never accepted from AWS: it holds the tunnels' inside addresses.
var linkLocal = netip.PrefixFrom(netip.AddrFrom4([4]byte{169, 254, 0, 0}), 16)

// routingConfig derives the BGP speaker's and the FIB's configuration from
// cgwd's config: one session and one path per tunnel and per DX link (a
// static connection's tunnels have no session). Paths are ordered by
// preference (AWS's order: DX, then static VPN connections, then dynamic
// ones, unless configured otherwise; also the local preference of the
// session's routes, so gobgp agrees), then BGP's attributes, then rank
// (see tunnelRank).
func routingConfig(cfg *config.Config, log *slog.Logger) (bgp.Config, fib.Config, failover.Config, error) {
	fo := failover.Config{HoldDown: time.Duration(*cfg.Failover.HoldDown), Links: netdev.LinkWatch{OnError: func(err error) {
		log.Error("watch links", "component", "failover", "err", err)
	}}}
	bc := bgp.Config{ASN: uint32(cfg.ASN), ListenPort: int32(cfg.BGP.ListenPort), GRPCListen: cfg.BGP.GRPCAddr()}
	bc.Prefixes = config.Prefixes(cfg.Prefixes)
	bc.Deny = append(config.Prefixes(cfg.Prefixes), linkLocal)
	fc := fib.Config{
		Table:             cfg.BGP.RouteTable,
		Protocol:          cfg.BGP.RouteProtocol,
		ReconcileInterval: time.Duration(cfg.BGP.ReconcileInterval),
		StaleTime:         time.Duration(cfg.BGP.StaleTime),
		KeepNexthopCompat: cfg.Failover.NexthopCompatMode,
		ManageForwarding:  cfg.ManageForwardingOn(),
		SettingsFile:      fib.SettingsFile(cfg.ControlSocket),
		FailClosed:        cfg.FailClosedOn(),
		AWSPrefixes:       cfg.AWSPrefixList(),
	}
	for _, d := range cfg.DirectConnect {
		pc, err := peerConfig(d.Name, d.Peer.Addr(), d.Local.Prefix().Addr(), &d.BGP)
		if err != nil {
			return bc, fc, fo, err
		}
		pc.LocalPref = uint32(d.Preference)
		pc.GracefulRestart = gracefulRestart(cfg, &d.BGP, true, d.BFD.On())
		bc.Peers = append(bc.Peers, pc)
		ph := pathHealth(d.Name, "dx", "", d.Interface, pc, &d.BFD, log)
		ph.Link = d.Interface // a DX link without carrier is down at once, BFD or not
		fo.Paths = append(fo.Paths, ph)
		fc.Paths = append(fc.Paths, fib.Path{Name: d.Name, Link: d.Interface, Gateway: pc.Address, Preference: d.Preference, Rank: 0})
	}
	for _, v := range cfg.VPN {
		for i := range v.Tunnels {
			t := &v.Tunnels[i]
			pc, err := tunnelPeer(&v, t)
			if err != nil {
				return bc, fc, fo, err
			}
			pc.LocalPref = uint32(t.Preference)
			pc.GracefulRestart = gracefulRestart(cfg, &t.BGP, false, t.BFD.On())
			if !v.Static() { // a static connection has no BGP session
				bc.Peers = append(bc.Peers, pc)
			}
			ph := pathHealth(t.Name, "tunnel", v.Name, t.Name, pc, &t.BFD, log)
			ph.Static = v.Static()
			ph.ResetBGPOnDown = ph.ResetBGPOnDown && !ph.Static
			if ph.BFD == nil && t.Probe.On() {
				ph.Probe = &probe.Config{
					Local: pc.LocalAddress, Peer: pc.Address, ID: uint16(0xC600 + len(fo.Paths)),
					Interval: time.Duration(t.Probe.Interval), LossThreshold: t.Probe.LossThreshold,
					Recovery: t.Probe.Recovery, Logger: log.With("component", "probe", "path", t.Name),
				}
			}
			fo.Paths = append(fo.Paths, ph)
			fc.Paths = append(fc.Paths, fib.Path{Name: t.Name, Link: t.Name, Gateway: pc.Address, Preference: t.Preference, Rank: tunnelRank(&v, i), FollowAWS: v.FollowAWS})
		}
	}
	bc.RouterID = routerID(cfg, bc.Peers)
	if err := lanRouting(cfg, &bc, lanAddress); err != nil {
		return bc, fc, fo, err
	}
	return bc, fc, fo, nil
}

// symmetryConfig is the symmetry guard's configuration: every path of the
// routing configuration, by the netdev AWS's traffic arrives on.
func symmetryConfig(cfg *config.Config, fc fib.Config, fo failover.Config, log *slog.Logger) symmetry.Config {
	return symmetry.Config{
		Paths:    symmetryPaths(fc.Paths, fo.Paths),
		Interval: time.Duration(cfg.Failover.Symmetry.Interval),
		MinPPS:   cfg.Failover.Symmetry.MinPPS,
		Logger:   log,
	}
}

// symmetryPaths pairs the FIB's paths (name, link) with their connection.
func symmetryPaths(fp []fib.Path, hp []failover.PathConfig) []symmetry.Path {
	vpn := map[string]string{}
	for _, p := range hp {
		vpn[p.Name] = p.VPN
	}
	out := make([]symmetry.Path, len(fp))
	for i, p := range fp {
		out[i] = symmetry.Path{Name: p.Name, VPN: vpn[p.Name], Link: p.Link}
	}
	return out
}

// pathHealth is a path's health check: BFD to the BGP peer when enabled,
// tearing the session down when BFD says the neighbor is gone.
func pathHealth(name, kind, vpn, link string, pc bgp.PeerConfig, c *config.BFD, log *slog.Logger) failover.PathConfig {
	p := failover.PathConfig{Name: name, Kind: kind, VPN: vpn}
	if c.On() {
		iv := time.Duration(c.Interval)
		p.BFD = &bfd.Config{
			Interface: link, Local: pc.LocalAddress, Peer: pc.Address,
			Timers:     bfd.Timers{DesiredMinTx: iv, RequiredMinRx: iv, DetectMult: uint8(c.Multiplier)},
			LocalDiscr: bfd.StableDiscr(pc.LocalAddress, pc.Address), // a restart keeps it (README, "Hitless restart")
			Logger:     log.With("component", "bfd", "path", name),
		}
		p.ResetBGPOnDown = true
	}
	return p
}

func peerConfig(name string, addr, local netip.Addr, c *config.PeerBGP) (bgp.PeerConfig, error) {
	pc := bgp.PeerConfig{
		Name: name, Address: addr, LocalAddress: local, PeerASN: uint32(c.PeerASN),
		Keepalive: time.Duration(c.Keepalive), HoldTime: time.Duration(c.HoldTime),
		MaxPrefixes: c.MaxPrefixes, AdvertiseLimit: c.AdvertiseLimit,
	}
	if c.MaxPrefixesRestart != nil {
		pc.MaxPrefixRestart = time.Duration(*c.MaxPrefixesRestart)
	}
	if c.Prepend != nil {
		pc.Prepend = *c.Prepend
	}
	for _, cm := range c.Communities {
		pc.Communities = append(pc.Communities, cm.Value())
	}
	pc.Allow = config.Prefixes(c.Allow)
	var err error
	pc.Password, err = readPassword("bgp.password_file", c.PasswordFile)
	return pc, err
}

// readPassword reads a TCP MD5 password file; "" for no file.
func readPassword(field, path string) (string, error) {
	if path == "" {
		return "", nil
	}
	pw, err := secret.Read(field, path)
	if err != nil {
		return "", err
	}
	defer clear(pw)
	return string(pw), nil // gobgp takes a string, which cannot be wiped
}

// routerID is the configured router ID, else the first session's local address.
func routerID(cfg *config.Config, peers []bgp.PeerConfig) netip.Addr {
	if cfg.RouterID.IsSet() {
		return cfg.RouterID.Addr()
	}
	if len(peers) > 0 {
		return peers[0].LocalAddress
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1})
}

// newTunnel builds a tunnel from its config, reading its key file.
func newTunnel(tc *config.Tunnel, log *slog.Logger) (tunnel.Tunnel, error) {
	switch tc.Kind {
	case config.KindWireGuard:
		c, err := wireGuardConfig(tc, log)
		if err != nil {
			return nil, err
		}
		return wireguard.New(c)
	case config.KindIPsec:
		c, err := ipsecConfig(tc, log)
		if err != nil {
			return nil, err
		}
		return ipsec.New(c)
	default:
		return nil, fmt.Errorf("tunnel %s: kind %q is not supported by this build of cgwd", tc.Name, tc.Kind)
	}
}

// wireGuardConfig is a WireGuard tunnel's config, with its private key read.
func wireGuardConfig(tc *config.Tunnel, log *slog.Logger) (wireguard.Config, error) {
	key, err := secret.Read("private_key_file", tc.WireGuard.PrivateKeyFile)
	if err != nil {
		return wireguard.Config{}, fmt.Errorf("tunnel %s: %w", tc.Name, err)
	}
	awsInside, localInside := tc.InsideAddrs()
	return wireguard.Config{
		Name:                tc.Name,
		MTU:                 tc.MTU,
		Inside:              localInside,
		PeerInside:          awsInside.Addr(),
		LocalOutside:        tc.Outside.Local.Addr(),
		Endpoint:            netip.AddrPortFrom(tc.Outside.Remote.Addr(), uint16(tc.WireGuard.RemotePort)),
		ListenPort:          tc.WireGuard.ListenPort,
		PrivateKey:          key,
		PeerPublicKey:       tc.WireGuard.PeerPublicKey,
		PersistentKeepalive: time.Duration(tc.WireGuard.PersistentKeepalive),
		Logger:              log,
	}, nil
}

// ipsecConfig is an IPsec tunnel's config, with its pre-shared key read.
func ipsecConfig(tc *config.Tunnel, log *slog.Logger) (ipsec.Config, error) {
	c := tc.IPsec.WithDefaults()
	ikeP, espP := c.Proposals()
	psk, creds, err := ipsecCreds(c)
	if err != nil {
		return ipsec.Config{}, fmt.Errorf("tunnel %s: %w", tc.Name, err)
	}
	version := 2
	switch c.IKEVersion {
	case config.IKEAny:
		version = ike.VersionAny
	case config.IKEv1:
		version = 1
	}
	awsInside, localInside := tc.InsideAddrs()
	return ipsec.Config{
		Name:       tc.Name,
		MTU:        tc.MTU,
		AutoMTU:    !tc.MTUConfigured(),
		Inside:     localInside,
		PeerInside: awsInside.Addr(),
		Logger:     log,
		IKE: ike.Config{
			Local: tc.Outside.Local.Addr(), Remote: tc.Outside.Remote.Addr(),
			LocalID: c.LocalID.Addr(), RemoteID: c.RemoteID.Addr(),
			PSK:  psk, // the tunnel wipes it on Close
			Cert: creds, RemoteCertID: c.CertRemoteID(),
			FragmentSize: c.FragmentSize,
			IKEProposals: ikeP, ESPProposals: espP,
			Initiate:      *c.Initiate,
			Version:       version,
			IKELifetime:   time.Duration(c.IKELifetime),
			ChildLifetime: time.Duration(c.ChildLifetime),
			RekeyMargin:   time.Duration(c.RekeyMargin),
			RekeyFuzz:     float64(*c.RekeyFuzz) / 100,
			DPDDelay:      time.Duration(c.DPDDelay),
			DPDTimeout:    time.Duration(c.DPDTimeout),
			ForceEncap:    *c.ForceEncap,
			ReplayWindow:  c.ReplayWindow,
			// 0 takes ike's defaults.
			CookieThreshold: c.CookieThreshold,
			HalfOpenLimit:   c.HalfOpenLimit,
		},
	}, nil
}

// ipsecCreds reads a tunnel's pre-shared key or, with certificate
// authentication, its certificate, key and trust anchors.
func ipsecCreds(c config.IPsec) ([]byte, *certauth.Creds, error) {
	if c.UsesCert() {
		creds, err := certauth.Load(c.CertFile, c.KeyFile, c.CAFile, time.Now())
		return nil, creds, err
	}
	psk, err := secret.Read("psk_file", c.PSKFile)
	return psk, nil, err
}

// firewallSpec is the firewall's table for a config.
func firewallSpec(c *config.Config) firewall.Spec {
	f := c.Firewall
	s := firewall.Spec{
		Table: firewall.DefaultTable, WAN: f.WANInterface,
		AllowSSHFrom: config.Prefixes(f.AllowSSHFrom),
		ICMPRate:     f.ICMPRate.N, ICMPPer: f.ICMPRate.Per,
	}
	if c.BGP.ListenPort > 0 {
		s.BGPPort = uint16(c.BGP.ListenPort)
	}
	for _, v := range c.VPN {
		for _, t := range v.Tunnels {
			aws, _ := t.InsideAddrs()
			ft := firewall.Tunnel{Netdev: t.Name, Remote: t.Outside.Remote.Addr(), Peer: aws.Addr(), BFD: t.BFD.On(), MTU: t.MTU}
			switch {
			case t.WireGuard != nil:
				ft.UDPPorts = []uint16{uint16(t.WireGuard.ListenPort)}
			case t.IPsec != nil:
				ft.UDPPorts = []uint16{firewall.PortIKE, firewall.PortNATT}
			}
			s.Tunnels = append(s.Tunnels, ft)
		}
	}
	for _, d := range c.DirectConnect {
		s.DirectConnect = append(s.DirectConnect, firewall.Link{Interface: d.Interface, Peer: d.Peer.Addr(), BFD: d.BFD.On()})
	}
	for _, p := range c.LAN.Peers {
		s.LAN = append(s.LAN, firewall.Link{Interface: c.LAN.Interface, Peer: p.Address.Addr(), BFD: p.BFD.On()})
	}
	return s
}
