package daemon

// The LAN side (issue 14): BGP sessions with the on-prem routers, their
// BFD sessions, the kernel routes back to the on-prem networks they
// announce, and the export to them of the AWS prefixes the FIB routes,
// with the kind of path each uses now.

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/cgwd/cgwd/pkg/bfd"
	"github.com/cgwd/cgwd/pkg/bgp"
	"github.com/cgwd/cgwd/pkg/config"
	"github.com/cgwd/cgwd/pkg/fib"
	"github.com/cgwd/cgwd/pkg/lifecycle"
)

// lanMaxPrefixes is the most prefixes a LAN peer may send: more tears its
// session down, as max_prefixes does on AWS sessions.
const lanMaxPrefixes = 10000

// lanRouting adds the lan and ha sections to bc: one session per LAN peer,
// the import and export rules, and a standby's extra prepends toward AWS
// and extra MED toward the LAN. local finds cgwd's address on the LAN
// interface for a peer that has no local_address.
func lanRouting(cfg *config.Config, bc *bgp.Config, local func(ifname string, peer netip.Addr) (netip.Addr, error)) error {
	if cfg.HA.Standby() {
		for i := range bc.Peers {
			bc.Peers[i].Prepend += cfg.HA.StandbyPrepend
		}
	}
	l := &cfg.LAN
	med := bgp.KindValues{DX: l.Export.MED.DX, VPN: l.Export.MED.VPN}
	if cfg.HA.Standby() {
		med.DX, med.VPN = addSat(med.DX, cfg.HA.StandbyMED), addSat(med.VPN, cfg.HA.StandbyMED)
	}
	bc.LAN = bgp.LANConfig{
		Allow: config.Prefixes(l.Import.Allow), Replace: cfg.ImportsReplace(), Aggregate: config.Prefixes(l.Import.Aggregate),
		AWSPrefixes: cfg.AWSPrefixList(), MED: med,
		LocalPref: bgp.KindValues{DX: l.Export.LocalPref.DX, VPN: l.Export.LocalPref.VPN},
	}
	for i := range l.Peers {
		p := &l.Peers[i]
		pc := bgp.PeerConfig{
			Name: p.Name, Address: p.Address.Addr(), LocalAddress: p.LocalAddress.Addr(), PeerASN: uint32(p.PeerASN),
			Keepalive: time.Duration(p.Keepalive), HoldTime: time.Duration(p.HoldTime),
			MaxPrefixes: lanMaxPrefixes, MaxPrefixRestart: config.DefaultMaxPrefixRestart, LAN: true,
		}
		if !pc.LocalAddress.IsValid() {
			a, err := local(l.Interface, pc.Address)
			if err != nil {
				return fmt.Errorf("lan.peers[%d] (%s): %w; set local_address", i, p.Name, err)
			}
			pc.LocalAddress = a
		}
		pw, err := readPassword(fmt.Sprintf("lan.peers[%d].password_file", i), p.PasswordFile)
		if err != nil {
			return err
		}
		pc.Password = pw
		bc.Peers = append(bc.Peers, pc)
	}
	return nil
}

func addSat(a, b uint32) uint32 {
	if a+b < a {
		return ^uint32(0)
	}
	return a + b
}

// lanAddress is cgwd's IPv4 address on ifname in the subnet of peer.
func lanAddress(ifname string, peer netip.Addr) (netip.Addr, error) {
	nets, err := ifaceNets(ifname)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, n := range nets {
		if n.Contains(peer) {
			return n.Addr(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("interface %s has no address in the subnet of %s", ifname, peer)
}

// ifaceNets lists the IPv4 addresses of ifname with their prefix lengths.
func ifaceNets(ifname string) ([]netip.Prefix, error) {
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", ifname, err)
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", ifname, err)
	}
	return ipv4Nets(addrs), nil
}

func ipv4Nets(addrs []net.Addr) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().Is4() {
				bits, _ := n.Mask.Size()
				out = append(out, netip.PrefixFrom(ip.Unmap(), bits))
			}
		}
	}
	return out
}

// lanBFD is the BFD session config of each LAN peer that has BFD on, by name.
func lanBFD(cfg *config.Config, bc *bgp.Config, log *slog.Logger) map[string]bfd.Config {
	out := map[string]bfd.Config{}
	for _, p := range cfg.LAN.Peers {
		if !p.BFD.On() {
			continue
		}
		for _, pc := range bc.Peers {
			if pc.LAN && pc.Name == p.Name {
				iv := time.Duration(p.BFD.Interval)
				out[p.Name] = bfd.Config{
					Interface: cfg.LAN.Interface, Local: pc.LocalAddress, Peer: pc.Address,
					Timers: bfd.Timers{DesiredMinTx: iv, RequiredMinRx: iv, DetectMult: uint8(p.BFD.Multiplier)},
					Logger: log.With("component", "bfd", "peer", p.Name),
				}
			}
		}
	}
	return out
}

// pathKinds maps each AWS path's name to its kind.
func pathKinds(cfg *config.Config) map[string]bgp.PathKind {
	out := map[string]bgp.PathKind{}
	for _, d := range cfg.DirectConnect {
		out[d.Name] = bgp.PathDX
	}
	for _, v := range cfg.VPN {
		for _, t := range v.Tunnels {
			out[t.Name] = bgp.PathVPN
		}
	}
	return out
}

// lanSide is the daemon's LAN state.
type lanSide struct {
	mu     sync.Mutex
	on     bool                    // LAN peers are configured
	link   string                  // lan.interface
	kinds  map[string]bgp.PathKind // FIB path name -> kind
	bfdCfg map[string]bfd.Config   // wanted BFD sessions, by peer
	bfd    map[string]*lanBFDSession
	routes *fib.LANRoutes
	ctx    context.Context // runLAN's, while it runs
	kick   chan struct{}
}

type lanBFDSession struct {
	cfg  bfd.Config
	s    *bfd.Session
	stop context.CancelFunc
}

// setLAN takes the LAN settings of cfg (at start and on reload): bc gets
// the callback for imported routes; the BFD sessions follow if running.
func (d *Daemon) setLAN(cfg *config.Config, bc *bgp.Config) {
	bc.LAN.OnRoutes = d.lanImported
	d.lan.mu.Lock()
	d.lan.on = len(cfg.LAN.Peers) > 0
	d.lan.link = cfg.LAN.Interface
	d.lan.kinds = pathKinds(cfg)
	d.lan.bfdCfg = lanBFD(cfg, bc, d.log)
	if d.lan.kick == nil {
		d.lan.kick = make(chan struct{}, 1)
	}
	d.lan.mu.Unlock()
}

// kickLANExport asks runLAN to tell the speaker what the FIB routes now.
func (d *Daemon) kickLANExport() {
	select {
	case d.lan.kick <- struct{}{}:
	default:
	}
}

// lanImported installs kernel routes toward the on-prem networks imported
// from the LAN peers: via the BGP next hop if it is on the LAN, else via
// the peer; none for a network the box is connected to.
func (d *Daemon) lanImported(routes []bgp.LANRoute) {
	d.lan.mu.Lock()
	link, lr := d.lan.link, d.lan.routes
	d.lan.mu.Unlock()
	if lr == nil {
		return
	}
	lanNets, err := ifaceNets(link)
	if err != nil {
		d.log.Error("routes toward the LAN", "err", err)
	}
	var connected []netip.Prefix
	if addrs, err := net.InterfaceAddrs(); err == nil {
		connected = ipv4Nets(addrs)
	}
	var out []fib.LANRoute
	for _, r := range routes {
		if containedIn(r.Prefix, connected) {
			continue
		}
		gw := r.Nexthop
		if !onLink(gw, lanNets) {
			gw = r.PeerAddress
		}
		out = append(out, fib.LANRoute{Prefix: r.Prefix, Link: link, Gateway: gw})
	}
	lr.Set(out)
}

func containedIn(p netip.Prefix, nets []netip.Prefix) bool {
	for _, n := range nets {
		if n.Bits() <= p.Bits() && n.Masked().Contains(p.Addr()) {
			return true
		}
	}
	return false
}

func onLink(a netip.Addr, nets []netip.Prefix) bool {
	for _, n := range nets {
		if n.Contains(a) && n.Addr() != a {
			return true
		}
	}
	return false
}

// startLAN starts the kernel routes toward the LAN (before BGP, so that
// they stop after it).
func (d *Daemon) startLAN(stack *lifecycle.Stack) error {
	lr, err := fib.NewLANRoutes(d.fibCfg.Table, d.fibCfg.Protocol, d.fibCfg.ReconcileInterval, d.fibCfg.StaleTime, d.log)
	if err != nil {
		return err
	}
	d.lan.mu.Lock()
	d.lan.routes = lr
	d.lan.mu.Unlock()
	return stack.Start("lan routes", lifecycle.Go(lr.Run, func(err error) { d.log.Error("lan routes stopped with error", "err", err) }))
}

// runLAN runs the LAN peers' BFD sessions and keeps the speaker's LAN
// export in line with the FIB until ctx ends.
func (d *Daemon) runLAN(ctx context.Context) error {
	d.lan.mu.Lock()
	d.lan.ctx = ctx
	d.lan.mu.Unlock()
	d.syncLANBFD()
	d.kickLANExport()
	for {
		select {
		case <-ctx.Done():
			d.lan.mu.Lock()
			d.lan.ctx = nil
			sessions := d.lan.bfd
			d.lan.bfd = nil
			d.lan.mu.Unlock()
			for _, s := range sessions {
				s.stop()
				<-s.s.Done()
			}
			return nil
		case <-d.lan.kick:
		}
		d.lan.mu.Lock()
		on, kinds := d.lan.on, d.lan.kinds
		d.lan.mu.Unlock()
		sp := d.bgpSpeaker()
		if sp == nil {
			continue
		}
		m := map[netip.Prefix]bgp.PathKind{}
		if on {
			for p, path := range d.fib.Carried() {
				if k, ok := kinds[path]; ok {
					m[p] = k
				}
			}
		}
		sp.SetLANExport(m)
	}
}

// syncLANBFD starts, replaces and stops BFD sessions to match the config.
func (d *Daemon) syncLANBFD() {
	d.lan.mu.Lock()
	defer d.lan.mu.Unlock()
	ctx := d.lan.ctx
	if ctx == nil {
		return
	}
	if d.lan.bfd == nil {
		d.lan.bfd = map[string]*lanBFDSession{}
	}
	for name, s := range d.lan.bfd {
		if c, ok := d.lan.bfdCfg[name]; !ok || c.Interface != s.cfg.Interface || c.Local != s.cfg.Local || c.Peer != s.cfg.Peer || c.Timers != s.cfg.Timers {
			s.stop()
			<-s.s.Done()
			delete(d.lan.bfd, name)
		}
	}
	for name, c := range d.lan.bfdCfg {
		if _, ok := d.lan.bfd[name]; ok {
			continue
		}
		c.OnChange = func(ch bfd.Change) {
			if ch.From == bfd.StateUp && ch.To != bfd.StateUp {
				d.log.Warn("lan: BFD says the peer is gone: closing its BGP session", "peer", name, "to", ch.To, "diag", ch.Diag)
				go func() {
					rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					defer cancel()
					if err := (speakerRef{d}).ShutdownPeer(rctx, name, "BFD down"); err != nil && ctx.Err() == nil {
						d.log.Error("lan: close BGP session after BFD down", "peer", name, "err", err)
					}
				}()
			}
		}
		s, err := bfd.New(c)
		if err == nil {
			sctx, stop := context.WithCancel(ctx)
			if err = s.Start(sctx); err == nil {
				d.lan.bfd[name] = &lanBFDSession{cfg: c, s: s, stop: stop}
				continue
			}
			stop()
		}
		d.log.Error("lan: BFD session", "peer", name, "err", err)
	}
}

// lanBFDState is the state of each LAN peer's BFD session, by peer.
func (d *Daemon) lanBFDState() map[string]string {
	d.lan.mu.Lock()
	defer d.lan.mu.Unlock()
	out := map[string]string{}
	for name, s := range d.lan.bfd {
		out[name] = s.s.Status().State.String()
	}
	return out
}
