// Package wireguard is the WireGuard tunnel kind: an embedded wireguard-go
// device on its own TUN netdev, with the UAPI socket open so that the stock
// `wg` tool can inspect it.
package wireguard

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/ipc"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/cgwd/cgwd/pkg/netdev"
	"github.com/cgwd/cgwd/pkg/tunnel"
)

// rejectAfter is WireGuard's Reject-After-Time: a session older than this
// carries no traffic, so the tunnel counts as down.
const rejectAfter = 180 * time.Second

// Config is what a WireGuard tunnel needs. PrivateKey is base64, as `wg genkey` prints it.
type Config struct {
	Name                string
	MTU                 int
	Inside              netip.Prefix // cgwd's inside address with its /30
	PeerInside          netip.Addr   // the AWS side's inside address
	LocalOutside        netip.Addr
	Endpoint            netip.AddrPort
	ListenPort          int
	PrivateKey          string
	PeerPublicKey       string
	PersistentKeepalive time.Duration
	Logger              *slog.Logger
}

// Tunnel is a WireGuard tunnel. Create it with New.
type Tunnel struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	dev    *device.Device
	uapi   net.Listener
	cancel context.CancelFunc
	done   chan struct{}
}

var _ tunnel.Tunnel = (*Tunnel)(nil)

// New checks cfg and returns a tunnel that is not started yet.
func New(cfg Config) (*Tunnel, error) {
	if _, err := keyHex(cfg.PrivateKey); err != nil {
		return nil, fmt.Errorf("tunnel %s: private key: %w", cfg.Name, err)
	}
	if _, err := keyHex(cfg.PeerPublicKey); err != nil {
		return nil, fmt.Errorf("tunnel %s: peer public key: %w", cfg.Name, err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Tunnel{cfg: cfg, log: log.With("tunnel", cfg.Name, "kind", tunnel.KindWireGuard)}, nil
}

// keyHex converts a base64 WireGuard key to the hex form UAPI wants.
func keyHex(b64 string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil || len(b) != 32 {
		return "", errors.New("not a base64 32-byte key")
	}
	return hex.EncodeToString(b), nil
}

// Name returns the netdev name.
func (t *Tunnel) Name() string { return t.cfg.Name }

// Kind returns tunnel.KindWireGuard.
func (t *Tunnel) Kind() tunnel.Kind { return tunnel.KindWireGuard }

// Start creates the TUN netdev and the WireGuard device, opens the UAPI
// socket and configures the peer with allowed IPs 0.0.0.0/0.
func (t *Tunnel) Start(ctx context.Context) (err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dev != nil {
		return fmt.Errorf("tunnel %s: already started", t.cfg.Name)
	}
	tdev, err := tun.CreateTUN(t.cfg.Name, t.cfg.MTU)
	if err != nil {
		return fmt.Errorf("tunnel %s: create TUN: %w", t.cfg.Name, err)
	}
	dev := device.NewDevice(tdev, conn.NewDefaultBind(), t.deviceLogger())
	defer func() {
		if err != nil {
			dev.Close() // closes the TUN, which removes the netdev
		}
	}()
	uapiFile, err := ipc.UAPIOpen(t.cfg.Name)
	if err != nil {
		return fmt.Errorf("tunnel %s: open UAPI socket: %w", t.cfg.Name, err)
	}
	uapi, err := ipc.UAPIListen(t.cfg.Name, uapiFile)
	uapiFile.Close()
	if err != nil {
		return fmt.Errorf("tunnel %s: listen UAPI socket: %w", t.cfg.Name, err)
	}
	defer func() {
		if err != nil {
			uapi.Close()
		}
	}()
	if err := dev.IpcSet(t.uapiConfig()); err != nil {
		// Keys were checked in New, so this error names a setting, not a key.
		return fmt.Errorf("tunnel %s: configure device: %w", t.cfg.Name, err)
	}
	if err := dev.Up(); err != nil {
		return fmt.Errorf("tunnel %s: device up: %w", t.cfg.Name, err)
	}
	if err := netdev.ConfigureUp(t.cfg.Name, t.cfg.Inside, t.cfg.MTU); err != nil {
		return fmt.Errorf("tunnel %s: %w", t.cfg.Name, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	t.dev, t.uapi, t.cancel, t.done = dev, uapi, cancel, make(chan struct{})
	go t.serveUAPI(ctx, uapi, dev)
	t.log.Info("tunnel started", "endpoint", t.cfg.Endpoint, "inside", t.cfg.Inside, "listen_port", t.cfg.ListenPort)
	return nil
}

// uapiConfig is the device configuration in UAPI form. It holds the private
// key and must never be logged.
func (t *Tunnel) uapiConfig() string {
	priv, _ := keyHex(t.cfg.PrivateKey)
	pub, _ := keyHex(t.cfg.PeerPublicKey)
	var b strings.Builder
	fmt.Fprintf(&b, "private_key=%s\nlisten_port=%d\nreplace_peers=true\n", priv, t.cfg.ListenPort)
	fmt.Fprintf(&b, "public_key=%s\nendpoint=%s\n", pub, t.cfg.Endpoint)
	fmt.Fprintf(&b, "persistent_keepalive_interval=%d\n", int(t.cfg.PersistentKeepalive/time.Second))
	b.WriteString("replace_allowed_ips=true\nallowed_ip=0.0.0.0/0\n")
	return b.String()
}

// serveUAPI answers `wg` on the UAPI socket until ctx ends.
func (t *Tunnel) serveUAPI(ctx context.Context, l net.Listener, dev *device.Device) {
	defer close(t.done)
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go dev.IpcHandle(c)
	}
}

// Close removes the UAPI socket, the device and its netdev.
func (t *Tunnel) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dev == nil {
		return nil
	}
	t.cancel()
	<-t.done
	t.dev.Close()
	t.dev = nil
	t.log.Info("tunnel stopped")
	return nil
}

// Status reads the device's handshake time and counters.
func (t *Tunnel) Status() tunnel.Status {
	st := tunnel.Status{
		Name:          t.cfg.Name,
		Kind:          tunnel.KindWireGuard,
		State:         tunnel.StateDown,
		LocalOutside:  t.cfg.LocalOutside,
		RemoteOutside: t.cfg.Endpoint.Addr(),
		Inside:        t.cfg.Inside,
		PeerInside:    t.cfg.PeerInside,
	}
	t.mu.Lock()
	dev := t.dev
	t.mu.Unlock()
	if dev == nil {
		return st
	}
	st.State = tunnel.StateConnecting
	dump, err := dev.IpcGet()
	if err != nil {
		return st
	}
	parsePeerStats(dump, &st)
	if !st.LastHandshake.IsZero() && time.Since(st.LastHandshake) < rejectAfter {
		st.State = tunnel.StateUp
	}
	return st
}

// parsePeerStats reads handshake time and byte counters from a UAPI dump.
// Key lines are skipped without being kept.
func parsePeerStats(dump string, st *tunnel.Status) {
	var sec, nsec int64
	sc := bufio.NewScanner(strings.NewReader(dump))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch k {
		case "last_handshake_time_sec":
			sec, _ = strconv.ParseInt(v, 10, 64)
		case "last_handshake_time_nsec":
			nsec, _ = strconv.ParseInt(v, 10, 64)
		case "rx_bytes":
			st.RxBytes, _ = strconv.ParseUint(v, 10, 64)
		case "tx_bytes":
			st.TxBytes, _ = strconv.ParseUint(v, 10, 64)
		}
	}
	if sec != 0 || nsec != 0 {
		st.LastHandshake = time.Unix(sec, nsec)
	}
}

// deviceLogger routes wireguard-go's log through slog: its verbose lines at
// debug, its errors at error.
func (t *Tunnel) deviceLogger() *device.Logger {
	return &device.Logger{
		Verbosef: func(format string, args ...any) { t.log.Debug(fmt.Sprintf(format, args...)) },
		Errorf:   func(format string, args ...any) { t.log.Error(fmt.Sprintf(format, args...)) },
	}
}
