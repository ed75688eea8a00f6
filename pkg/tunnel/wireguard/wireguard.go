// Package wireguard is the WireGuard tunnel kind: an embedded wireguard-go
// device on its own TUN netdev, with the UAPI socket open so that the stock
// `wg` tool can inspect it.
package wireguard

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
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

// Config is what a WireGuard tunnel needs.
type Config struct {
	Name         string
	MTU          int
	Inside       netip.Prefix // cgwd's inside address with its /30
	PeerInside   netip.Addr   // the AWS side's inside address
	LocalOutside netip.Addr
	Endpoint     netip.AddrPort
	ListenPort   int
	// PrivateKey is the private key in base64, as `wg genkey` prints it.
	// New decodes it and clears this slice: the tunnel keeps the only copy
	// and wipes it on Close.
	PrivateKey          []byte
	PeerPublicKey       string
	PersistentKeepalive time.Duration
	Logger              *slog.Logger
}

// Tunnel is a WireGuard tunnel. Create it with New.
type Tunnel struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	key    device.NoisePrivateKey // zero once closed
	closed bool
	dev    *device.Device
	cancel context.CancelFunc
	done   chan struct{} // closed once run has closed the device

	statsMu sync.Mutex
	stats   statsParser // Status's, reused so that Status copies nothing
}

var _ tunnel.Tunnel = (*Tunnel)(nil)

// New checks cfg and returns a tunnel that is not started yet. It takes
// the private key out of cfg.PrivateKey and clears that slice.
func New(cfg Config) (*Tunnel, error) {
	key, err := decodePrivateKey(cfg.PrivateKey)
	clear(cfg.PrivateKey)
	cfg.PrivateKey = nil
	if err != nil {
		return nil, fmt.Errorf("tunnel %s: private key: %w", cfg.Name, err)
	}
	if _, err := keyHex(cfg.PeerPublicKey); err != nil {
		return nil, fmt.Errorf("tunnel %s: peer public key: %w", cfg.Name, err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Tunnel{cfg: cfg, key: key, log: log.With("tunnel", cfg.Name, "kind", tunnel.KindWireGuard), done: make(chan struct{})}, nil
}

// decodePrivateKey decodes a base64 private key, clearing its scratch copy.
func decodePrivateKey(b64 []byte) (device.NoisePrivateKey, error) {
	var key device.NoisePrivateKey
	b64 = bytes.TrimSpace(b64)
	buf := make([]byte, base64.StdEncoding.DecodedLen(len(b64)))
	defer clear(buf)
	n, err := base64.StdEncoding.Decode(buf, b64)
	if err != nil || n != len(key) {
		return key, errors.New("not a base64 32-byte key")
	}
	copy(key[:], buf)
	return key, nil
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
	if t.closed {
		return fmt.Errorf("tunnel %s: closed (its key is wiped)", t.cfg.Name)
	}
	tdev, err := tun.CreateTUN(t.cfg.Name, t.cfg.MTU)
	if err != nil {
		return fmt.Errorf("tunnel %s: create TUN: %w", t.cfg.Name, err)
	}
	dev, err := t.newDevice(tdev, conn.NewDefaultBind())
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			closeDevice(dev) // closes the TUN, which removes the netdev
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
	if err := dev.Up(); err != nil {
		return fmt.Errorf("tunnel %s: device up: %w", t.cfg.Name, err)
	}
	if err := netdev.ConfigureUp(t.cfg.Name, t.cfg.Inside, t.cfg.MTU); err != nil {
		return fmt.Errorf("tunnel %s: %w", t.cfg.Name, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	t.dev, t.cancel = dev, cancel
	go t.run(ctx, uapi, dev)
	t.log.Info("tunnel started", "endpoint", t.cfg.Endpoint, "inside", t.cfg.Inside, "listen_port", t.cfg.ListenPort)
	return nil
}

// newDevice makes the WireGuard device on tdev and bind and configures it.
// The private key goes in with SetPrivateKey, so it is never written out
// as UAPI text (which would leave copies cgwd cannot wipe).
func (t *Tunnel) newDevice(tdev tun.Device, bind conn.Bind) (*device.Device, error) {
	dev := device.NewDevice(tdev, bind, t.deviceLogger())
	if err := dev.SetPrivateKey(t.key); err != nil {
		closeDevice(dev)
		return nil, fmt.Errorf("tunnel %s: set private key: %w", t.cfg.Name, err)
	}
	if err := dev.IpcSet(t.uapiConfig()); err != nil {
		closeDevice(dev)
		return nil, fmt.Errorf("tunnel %s: configure device: %w", t.cfg.Name, err)
	}
	return dev, nil
}

// closeDevice overwrites the device's copy of the private key with zeros
// (wireguard-go keeps it after Close), then closes the device. The peer's
// session keys are zeroed by wireguard-go itself when Close removes it.
func closeDevice(dev *device.Device) {
	dev.SetPrivateKey(device.NoisePrivateKey{})
	dev.Close()
}

// uapiConfig is the device configuration in UAPI form, all but the private
// key, which newDevice sets on its own.
func (t *Tunnel) uapiConfig() string {
	pub, _ := keyHex(t.cfg.PeerPublicKey)
	var b strings.Builder
	fmt.Fprintf(&b, "listen_port=%d\nreplace_peers=true\n", t.cfg.ListenPort)
	fmt.Fprintf(&b, "public_key=%s\nendpoint=%s\n", pub, t.cfg.Endpoint)
	fmt.Fprintf(&b, "persistent_keepalive_interval=%d\n", int(t.cfg.PersistentKeepalive/time.Second))
	b.WriteString("replace_allowed_ips=true\nallowed_ip=0.0.0.0/0\n")
	return b.String()
}

// run answers `wg` on the UAPI socket until ctx ends, then closes the
// socket and the connections being answered, waits for their handlers and
// closes the device and its TUN, which removes the netdev. l may be nil
// (tests): no UAPI socket.
func (t *Tunnel) run(ctx context.Context, l net.Listener, dev *device.Device) {
	defer close(t.done)
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		if l != nil {
			l.Close() // ends Accept
		}
	}()
	for l != nil {
		c, err := l.Accept()
		if err != nil {
			break
		}
		mu.Lock()
		conns[c] = true
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			dev.IpcHandle(c) // closes c
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
		}()
	}
	<-ctx.Done()
	mu.Lock()
	for c := range conns {
		c.Close()
	}
	mu.Unlock()
	wg.Wait()
	closeDevice(dev)
}

// Done is closed when the tunnel has stopped after Start's context ended
// or Close.
func (t *Tunnel) Done() <-chan struct{} { return t.done }

// Close stops the tunnel as the end of Start's context does (removing the
// UAPI socket, the device and its netdev), waits until it has stopped and
// wipes the private key: the tunnel cannot be started again.
func (t *Tunnel) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	clear(t.key[:])
	if t.dev == nil {
		return nil
	}
	t.cancel()
	<-t.done
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
	t.statsMu.Lock()
	t.stats.reset()
	// wireguard-go's only way to read peer counters is its UAPI dump, which
	// starts with the private key. The dump is parsed as it is written, in
	// wireguard-go's own buffer: cgwd makes no copy of it (IpcGet would make
	// one string per call, which nothing can wipe).
	err := dev.IpcGetOperation(&t.stats)
	if err == nil {
		t.stats.result(&st)
	}
	t.statsMu.Unlock()
	if err != nil {
		return st
	}
	if !st.LastHandshake.IsZero() && time.Since(st.LastHandshake) < rejectAfter {
		st.State = tunnel.StateUp
	}
	return st
}

// statsParser is an io.Writer that reads the handshake time and byte
// counters from a UAPI dump as it is written, without copying it: lines
// may be split across writes, and only the key names and values of the
// lines it wants are buffered, so no part of a key line is ever kept.
type statsParser struct {
	name      [24]byte // the current line's key, while no '=' is seen
	nameLen   int
	val       [20]byte // the value of a wanted line (a uint64 at most)
	valLen    int
	field     int // the wanted line being read, or fieldSkip / fieldName
	sec, nsec int64
	rx, tx    uint64
}

const (
	fieldName = iota // reading a key name
	fieldSkip        // in a line that is not wanted
	fieldSec
	fieldNsec
	fieldRx
	fieldTx
)

func (p *statsParser) reset() { *p = statsParser{} }

// Write parses b. It never fails.
func (p *statsParser) Write(b []byte) (int, error) {
	for _, c := range b {
		switch {
		case c == '\n':
			p.endLine()
		case p.field == fieldSkip:
		case p.field == fieldName && c == '=':
			p.field = wantedField(p.name[:p.nameLen])
		case p.field == fieldName:
			if p.nameLen == len(p.name) {
				p.field = fieldSkip // longer than any wanted name
				continue
			}
			p.name[p.nameLen] = c
			p.nameLen++
		default:
			if p.valLen == len(p.val) {
				p.field = fieldSkip
				continue
			}
			p.val[p.valLen] = c
			p.valLen++
		}
	}
	return len(b), nil
}

func wantedField(name []byte) int {
	switch string(name) { // no allocation: the compiler compares in place
	case "last_handshake_time_sec":
		return fieldSec
	case "last_handshake_time_nsec":
		return fieldNsec
	case "rx_bytes":
		return fieldRx
	case "tx_bytes":
		return fieldTx
	}
	return fieldSkip
}

func (p *statsParser) endLine() {
	if p.field > fieldSkip {
		v := parseUint(p.val[:p.valLen])
		switch p.field {
		case fieldSec:
			p.sec = int64(v)
		case fieldNsec:
			p.nsec = int64(v)
		case fieldRx:
			p.rx = v
		case fieldTx:
			p.tx = v
		}
	}
	p.field, p.nameLen, p.valLen = fieldName, 0, 0
}

// parseUint parses decimal digits; anything else gives 0.
func parseUint(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0
		}
		v = v*10 + uint64(c-'0')
	}
	return v
}

// result puts what was parsed into st.
func (p *statsParser) result(st *tunnel.Status) {
	st.RxBytes, st.TxBytes = p.rx, p.tx
	if p.sec != 0 || p.nsec != 0 {
		st.LastHandshake = time.Unix(p.sec, p.nsec)
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
