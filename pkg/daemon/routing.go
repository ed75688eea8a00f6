package daemon

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/cgwd/cgwd/pkg/bfd"
	"github.com/cgwd/cgwd/pkg/bgp"
	"github.com/cgwd/cgwd/pkg/config"
	"github.com/cgwd/cgwd/pkg/failover"
	"github.com/cgwd/cgwd/pkg/fib"
	"github.com/cgwd/cgwd/pkg/probe"
	"github.com/cgwd/cgwd/pkg/secret"
)

// linkLocal is never accepted from AWS: it holds the tunnels' inside addresses.
var linkLocal = netip.MustParsePrefix("169.254.0.0/16")

// routingConfig derives the BGP speaker's and the FIB's configuration from
// cgwd's config: one session and one path per tunnel and per DX link. DX is
// preferred (rank 0), then each connection's tunnels in order.
func routingConfig(cfg *config.Config, log *slog.Logger) (bgp.Config, fib.Config, failover.Config, error) {
	fo := failover.Config{HoldDown: time.Duration(*cfg.Failover.HoldDown)}
	bc := bgp.Config{ASN: uint32(cfg.ASN), ListenPort: int32(cfg.BGP.ListenPort), GRPCListen: cfg.BGP.GRPCAddr()}
	for _, p := range cfg.Prefixes {
		pp := netip.MustParsePrefix(p)
		bc.Prefixes = append(bc.Prefixes, pp)
		bc.Deny = append(bc.Deny, pp)
	}
	bc.Deny = append(bc.Deny, linkLocal)
	fc := fib.Config{
		Table:             cfg.BGP.RouteTable,
		Protocol:          cfg.BGP.RouteProtocol,
		ReconcileInterval: time.Duration(cfg.BGP.ReconcileInterval),
		StaleTime:         time.Duration(cfg.BGP.StaleTime),
		KeepNexthopCompat: cfg.Failover.NexthopCompatMode,
		FailClosed:        cfg.FailClosedOn(),
		AWSPrefixes:       cfg.AWSPrefixList(),
	}
	for _, d := range cfg.DirectConnect {
		local := netip.MustParsePrefix(d.Local)
		pc, err := peerConfig(d.Name, netip.MustParseAddr(d.Peer), local.Addr(), &d.BGP)
		if err != nil {
			return bc, fc, fo, err
		}
		bc.Peers = append(bc.Peers, pc)
		fo.Paths = append(fo.Paths, pathHealth(d.Name, "dx", "", d.Interface, pc, &d.BFD, log))
		fc.Paths = append(fc.Paths, fib.Path{Name: d.Name, Link: d.Interface, Gateway: pc.Address, Rank: 0})
	}
	for _, v := range cfg.VPN {
		for i := range v.Tunnels {
			t := &v.Tunnels[i]
			aws, local := t.InsideAddrs()
			pc, err := peerConfig(t.Name, aws.Addr(), local.Addr(), &t.BGP)
			if err != nil {
				return bc, fc, fo, err
			}
			bc.Peers = append(bc.Peers, pc)
			ph := pathHealth(t.Name, "tunnel", v.Name, t.Name, pc, &t.BFD, log)
			if ph.BFD == nil && t.Probe.On() {
				ph.Probe = &probe.Config{
					Local: pc.LocalAddress, Peer: pc.Address, ID: uint16(0xC600 + len(fo.Paths)),
					Interval: time.Duration(t.Probe.Interval), LossThreshold: t.Probe.LossThreshold,
					Recovery: t.Probe.Recovery, Logger: log.With("component", "probe", "path", t.Name),
				}
			}
			fo.Paths = append(fo.Paths, ph)
			rank := i + 1 // active/standby: tunnel 1, then tunnel 2
			if v.Mode == config.ModeECMP {
				rank = 1
			}
			fc.Paths = append(fc.Paths, fib.Path{Name: t.Name, Link: t.Name, Gateway: pc.Address, Rank: rank})
		}
	}
	bc.RouterID = routerID(cfg, bc.Peers)
	return bc, fc, fo, nil
}

// pathHealth is a path's health check: BFD to the BGP peer when enabled,
// tearing the session down when BFD says the neighbor is gone.
func pathHealth(name, kind, vpn, link string, pc bgp.PeerConfig, c *config.BFD, log *slog.Logger) failover.PathConfig {
	p := failover.PathConfig{Name: name, Kind: kind, VPN: vpn}
	if c.On() {
		iv := time.Duration(c.Interval)
		p.BFD = &bfd.Config{
			Interface: link, Local: pc.LocalAddress, Peer: pc.Address,
			Timers: bfd.Timers{DesiredMinTx: iv, RequiredMinRx: iv, DetectMult: uint8(c.Multiplier)},
			Logger: log.With("component", "bfd", "path", name),
		}
		p.ResetBGPOnDown = true
	}
	return p
}

func peerConfig(name string, addr, local netip.Addr, c *config.PeerBGP) (bgp.PeerConfig, error) {
	pc := bgp.PeerConfig{
		Name: name, Address: addr, LocalAddress: local, PeerASN: uint32(c.PeerASN),
		Keepalive: time.Duration(c.Keepalive), HoldTime: time.Duration(c.HoldTime),
		MaxPrefixes: c.MaxPrefixes,
	}
	if c.MaxPrefixesRestart != nil {
		pc.MaxPrefixRestart = time.Duration(*c.MaxPrefixesRestart)
	}
	if c.Prepend != nil {
		pc.Prepend = *c.Prepend
	}
	for _, s := range c.Communities {
		v, _ := config.ParseCommunity(s)
		pc.Communities = append(pc.Communities, v)
	}
	for _, a := range c.Allow {
		pc.Allow = append(pc.Allow, netip.MustParsePrefix(a))
	}
	if c.PasswordFile != "" {
		pw, err := secret.Read("bgp.password_file", c.PasswordFile)
		if err != nil {
			return pc, err
		}
		pc.Password = string(pw) // gobgp takes a string, which cannot be wiped
		clear(pw)
	}
	return pc, nil
}

// routerID is the configured router ID, else the first session's local address.
func routerID(cfg *config.Config, peers []bgp.PeerConfig) netip.Addr {
	if cfg.RouterID != "" {
		return netip.MustParseAddr(cfg.RouterID)
	}
	if len(peers) > 0 {
		return peers[0].LocalAddress
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1})
}
