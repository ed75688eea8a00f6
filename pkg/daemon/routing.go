package daemon

import (
	"net/netip"
	"time"

	"github.com/cgwd/cgwd/pkg/bgp"
	"github.com/cgwd/cgwd/pkg/config"
	"github.com/cgwd/cgwd/pkg/fib"
)

// linkLocal is never accepted from AWS: it holds the tunnels' inside addresses.
var linkLocal = netip.MustParsePrefix("169.254.0.0/16")

// routingConfig derives the BGP speaker's and the FIB's configuration from
// cgwd's config: one session and one path per tunnel and per DX link. DX is
// preferred (rank 0), then each connection's tunnels in order.
func routingConfig(cfg *config.Config) (bgp.Config, fib.Config, error) {
	bc := bgp.Config{ASN: cfg.ASN, ListenPort: int32(cfg.BGP.ListenPort)}
	if cfg.BGP.GRPCListen != "off" {
		bc.GRPCListen = cfg.BGP.GRPCListen
	}
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
	}
	for _, d := range cfg.DirectConnect {
		local := netip.MustParsePrefix(d.Local)
		pc, err := peerConfig(d.Name, netip.MustParseAddr(d.Peer), local.Addr(), &d.BGP)
		if err != nil {
			return bc, fc, err
		}
		bc.Peers = append(bc.Peers, pc)
		fc.Paths = append(fc.Paths, fib.Path{Name: d.Name, Link: d.Interface, Gateway: pc.Address, Rank: 0})
	}
	for _, v := range cfg.VPN {
		for i := range v.Tunnels {
			t := &v.Tunnels[i]
			aws, local := t.InsideAddrs()
			pc, err := peerConfig(t.Name, aws.Addr(), local.Addr(), &t.BGP)
			if err != nil {
				return bc, fc, err
			}
			bc.Peers = append(bc.Peers, pc)
			rank := i + 1 // active/standby: tunnel 1, then tunnel 2
			if v.Mode == config.ModeECMP {
				rank = 1
			}
			fc.Paths = append(fc.Paths, fib.Path{Name: t.Name, Link: t.Name, Gateway: pc.Address, Rank: rank})
		}
	}
	bc.RouterID = routerID(cfg, bc.Peers)
	return bc, fc, nil
}

func peerConfig(name string, addr, local netip.Addr, c *config.PeerBGP) (bgp.PeerConfig, error) {
	pc := bgp.PeerConfig{
		Name: name, Address: addr, LocalAddress: local, PeerASN: c.PeerASN,
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
		pw, err := config.ReadSecret(c.PasswordFile)
		if err != nil {
			return pc, err
		}
		pc.Password = pw
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
