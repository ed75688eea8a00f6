// Package daemon wires cgwd's parts together from a config: tunnels, the
// control socket and the metrics endpoint. It starts them in order and stops
// them in reverse, removing everything it created.
package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/cgwd/cgwd/pkg/config"
	"github.com/cgwd/cgwd/pkg/control"
	"github.com/cgwd/cgwd/pkg/metrics"
	"github.com/cgwd/cgwd/pkg/tunnel"
	"github.com/cgwd/cgwd/pkg/tunnel/ipsec"
	"github.com/cgwd/cgwd/pkg/tunnel/wireguard"
	"github.com/cgwd/cgwd/pkg/version"
)

// Daemon is a configured cgwd instance.
type Daemon struct {
	cfg     *config.Config
	log     *slog.Logger
	tunnels []tunnel.Tunnel
	started time.Time
}

// New builds the daemon's tunnels from cfg (reading their secret files) but
// creates nothing in the kernel yet.
func New(cfg *config.Config, log *slog.Logger) (*Daemon, error) {
	d := &Daemon{cfg: cfg, log: log}
	for _, v := range cfg.VPN {
		for i := range v.Tunnels {
			t, err := newTunnel(&v.Tunnels[i], log.With("vpn", v.Name))
			if err != nil {
				return nil, err
			}
			d.tunnels = append(d.tunnels, t)
		}
	}
	return d, nil
}

func newTunnel(tc *config.Tunnel, log *slog.Logger) (tunnel.Tunnel, error) {
	awsInside, localInside := tc.InsideAddrs()
	localOut, _ := netip.ParseAddr(tc.Outside.Local)
	remoteOut, _ := netip.ParseAddr(tc.Outside.Remote)
	switch tc.Kind {
	case string(tunnel.KindWireGuard):
		key, err := config.ReadSecret(tc.WireGuard.PrivateKeyFile)
		if err != nil {
			return nil, fmt.Errorf("tunnel %s: %w", tc.Name, err)
		}
		return wireguard.New(wireguard.Config{
			Name:                tc.Name,
			MTU:                 tc.MTU,
			Inside:              localInside,
			PeerInside:          awsInside.Addr(),
			LocalOutside:        localOut,
			Endpoint:            netip.AddrPortFrom(remoteOut, uint16(tc.WireGuard.RemotePort)),
			ListenPort:          tc.WireGuard.ListenPort,
			PrivateKey:          key,
			PeerPublicKey:       tc.WireGuard.PeerPublicKey,
			PersistentKeepalive: time.Duration(tc.WireGuard.PersistentKeepalive),
			Logger:              log,
		})
	case string(tunnel.KindIPsec):
		return ipsec.FromConfig(tc, log)
	default:
		return nil, fmt.Errorf("tunnel %s: kind %q is not supported by this build of cgwd", tc.Name, tc.Kind)
	}
}

// Status is a snapshot of the daemon's state.
func (d *Daemon) Status() control.Status {
	st := control.Status{Version: version.String(), Started: d.started}
	for _, v := range d.cfg.VPN {
		vs := control.VPNStatus{Name: v.Name}
		for _, t := range v.Tunnels {
			vs.Tunnels = append(vs.Tunnels, t.Name)
		}
		st.VPN = append(st.VPN, vs)
	}
	for _, t := range d.tunnels {
		st.Tunnels = append(st.Tunnels, t.Status())
	}
	return st
}

// Run starts everything, serves until ctx ends, then stops everything in
// reverse order. If start-up fails, what was started is torn down and the
// error returned.
func (d *Daemon) Run(ctx context.Context) (err error) {
	d.started = time.Now()
	var stack []func() // undo actions, run in reverse
	defer func() {
		for i := len(stack) - 1; i >= 0; i-- {
			stack[i]()
		}
	}()

	ctrl, err := control.Listen(d.cfg.ControlSocket, d.Status)
	if err != nil {
		return err
	}
	var ms *metrics.Server
	if d.cfg.Metrics.Listen != "off" {
		ms, err = metrics.Listen(d.cfg.Metrics.Listen, metrics.NewRegistry(d.Status))
		if err != nil {
			return err
		}
	}

	srvCtx, stopServers := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	serve := func(name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(srvCtx); err != nil {
				d.log.Error("server failed", "server", name, "err", err)
			}
		}()
	}
	serve("control", ctrl.Serve)
	if ms != nil {
		serve("metrics", ms.Serve)
		d.log.Info("metrics listening", "addr", ms.Addr())
	}
	stack = append(stack, func() { stopServers(); wg.Wait() })

	for _, t := range d.tunnels {
		if err := t.Start(ctx); err != nil {
			return err
		}
		stack = append(stack, func() {
			if err := t.Close(); err != nil {
				d.log.Error("tunnel close failed", "tunnel", t.Name(), "err", err)
			}
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			tunnel.Watch(srvCtx, t, time.Second, func(e tunnel.Event) {
				d.log.Info("tunnel state", "tunnel", e.Tunnel, "from", e.From, "to", e.To)
			})
		}()
	}
	d.log.Info("cgwd running", "version", version.String(), "tunnels", len(d.tunnels), "control_socket", d.cfg.ControlSocket)
	<-ctx.Done()
	d.log.Info("cgwd stopping", "cause", context.Cause(ctx))
	return nil
}
