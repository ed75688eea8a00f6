package bfd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cgwd/cgwd/pkg/bfd/packet"
)

// Port is the UDP destination port of single-hop BFD control packets (RFC 5881).
const Port = 3784

// TTL is the IP TTL single-hop BFD packets are sent with and must arrive with.
const TTL = 255

// DefaultTimers are used when Config.Timers is zero: AWS Direct Connect's
// 300 ms x 3.
var DefaultTimers = Timers{DesiredMinTx: 300 * time.Millisecond, RequiredMinRx: 300 * time.Millisecond, DetectMult: 3}

// Config describes one single-hop IPv4 BFD session.
type Config struct {
	// Interface is the link the peer is on; sockets are bound to it.
	Interface string
	// Local is our address on Interface; Peer is the neighbor's.
	Local, Peer netip.Addr
	// Timers are the local timers; the zero value means DefaultTimers.
	Timers Timers
	// LocalDiscr is the session's discriminator; 0 picks a random one
	// (StableDiscr gives one that survives a restart of cgwd).
	LocalDiscr uint32
	// OnChange, when set, is called for every state change, in order, from
	// the session's goroutine. It must not block for long.
	OnChange func(Change)
	// Logger receives state changes (Info) and dropped packets (Debug).
	Logger *slog.Logger
}

// Change reports a state change of a session.
type Change struct {
	Interface string
	Peer      netip.Addr
	From, To  State
	// Diag is the local diagnostic: why the session changed state.
	Diag Diag
	// At is when the change happened.
	At time.Time
}

// Counters are cumulative packet and event counts of a session.
type Counters struct {
	PacketsIn  uint64 // valid control packets accepted from the peer
	PacketsOut uint64 // control packets sent
	Dropped    uint64 // packets discarded: wrong source, TTL, malformed, foreign discriminator
	SendErrors uint64 // failed sends
	// Transitions counts state changes; Downs counts changes from Up to any other state.
	Transitions, Downs uint64
}

// Status is a snapshot of a running session.
type Status struct {
	Interface   string
	Local, Peer netip.Addr
	MachineStatus
	// Since is when the session entered its current state.
	Since time.Time
	Counters
}

// Session runs one BFD session over UDP.
type Session struct {
	cfg  Config
	log  *slog.Logger
	cmds chan func(now time.Time) (Output, error)
	done chan struct{}

	mu      sync.Mutex
	m       *Machine
	status  Status
	dropped atomic.Uint64
}

// New validates cfg and returns a session ready to Start.
func New(cfg Config) (*Session, error) {
	if cfg.Interface == "" {
		return nil, errors.New("bfd: interface is required")
	}
	if !cfg.Local.Is4() || !cfg.Peer.Is4() {
		return nil, fmt.Errorf("bfd: peer %s: local %s and peer must be IPv4 addresses", cfg.Peer, cfg.Local)
	}
	if cfg.Timers == (Timers{}) {
		cfg.Timers = DefaultTimers
	}
	if err := cfg.Timers.Validate(); err != nil {
		return nil, fmt.Errorf("peer %s: %w", cfg.Peer, err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Session{
		cfg:  cfg,
		log:  log.With("bfd_peer", cfg.Peer.String(), "interface", cfg.Interface),
		cmds: make(chan func(time.Time) (Output, error)),
		done: make(chan struct{}),
	}
	s.status = Status{Interface: cfg.Interface, Local: cfg.Local, Peer: cfg.Peer}
	return s, nil
}

// Start opens the session's sockets in the network namespace of the calling
// thread and runs the session until ctx ends. The interface must exist; the
// local address need not be configured yet (IP_FREEBIND). It returns an
// error if the sockets cannot be opened. Start may be called once.
func (s *Session) Start(ctx context.Context) error {
	rx, err := s.listenRX(ctx)
	if err != nil {
		return fmt.Errorf("bfd peer %s: %w", s.cfg.Peer, err)
	}
	tx, err := s.listenTX(ctx)
	if err != nil {
		rx.Close()
		return fmt.Errorf("bfd peer %s: %w", s.cfg.Peer, err)
	}
	now := time.Now()
	m, err := NewMachine(MachineConfig{Timers: s.cfg.Timers, LocalDiscr: s.cfg.LocalDiscr}, now)
	if err != nil {
		rx.Close()
		tx.Close()
		return fmt.Errorf("bfd peer %s: %w", s.cfg.Peer, err)
	}
	s.mu.Lock()
	s.m = m
	s.status.Since = now
	s.status.MachineStatus = m.Status()
	s.mu.Unlock()

	pkts := make(chan Packet, 16)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		s.receive(ctx, rx, pkts)
	}()
	go func() {
		defer wg.Done()
		s.run(ctx, tx, pkts)
	}()
	go func() {
		<-ctx.Done()
		rx.Close() // unblocks receive
		wg.Wait()
		tx.Close()
		close(s.done)
	}()
	return nil
}

// Done is closed when the session has stopped after its context ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// Status returns a snapshot of the session.
func (s *Session) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	st.Dropped = s.dropped.Load()
	return st
}

// SetAdminDown moves the session into or out of AdminDown. It blocks until
// the session has applied it, or ctx ends.
func (s *Session) SetAdminDown(ctx context.Context, down bool) error {
	return s.do(ctx, func(now time.Time) (Output, error) { return s.m.SetAdminDown(now, down), nil })
}

// SetTimers changes the local timers; while Up, a poll sequence negotiates
// them with the peer.
func (s *Session) SetTimers(ctx context.Context, t Timers) error {
	return s.do(ctx, func(now time.Time) (Output, error) { return s.m.SetTimers(now, t) })
}

func (s *Session) do(ctx context.Context, f func(time.Time) (Output, error)) error {
	errc := make(chan error, 1)
	cmd := func(now time.Time) (Output, error) {
		out, err := f(now)
		errc <- err
		return out, err
	}
	select {
	case s.cmds <- cmd:
		return <-errc
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return fmt.Errorf("bfd peer %s: session stopped", s.cfg.Peer)
	}
}

// control binds a socket to the interface and sets IP options.
func (s *Session) control(opts func(fd int) error) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, s.cfg.Interface); serr != nil {
				serr = fmt.Errorf("bind to device %s: %w", s.cfg.Interface, serr)
				return
			}
			// Let the session start before its address is configured.
			if serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_FREEBIND, 1); serr != nil {
				serr = fmt.Errorf("IP_FREEBIND: %w", serr)
				return
			}
			serr = opts(int(fd))
		})
		if err != nil {
			return err
		}
		return serr
	}
}

func (s *Session) listenRX(ctx context.Context) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: s.control(func(fd int) error {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return fmt.Errorf("SO_REUSEADDR: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVTTL, 1); err != nil {
			return fmt.Errorf("IP_RECVTTL: %w", err)
		}
		return nil
	})}
	c, err := lc.ListenPacket(ctx, "udp4", netip.AddrPortFrom(s.cfg.Local, Port).String())
	if err != nil {
		return nil, fmt.Errorf("listen on %s port %d: %w", s.cfg.Local, Port, err)
	}
	return c.(*net.UDPConn), nil
}

// listenTX binds the sending socket to a random source port in
// 49152-65535 (RFC 5881 4) with TTL 255.
func (s *Session) listenTX(ctx context.Context) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: s.control(func(fd int) error {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_TTL, TTL); err != nil {
			return fmt.Errorf("IP_TTL: %w", err)
		}
		return nil
	})}
	var lastErr error
	for range 64 {
		port := uint16(49152 + rand.IntN(65536-49152))
		c, err := lc.ListenPacket(ctx, "udp4", netip.AddrPortFrom(s.cfg.Local, port).String())
		if err == nil {
			return c.(*net.UDPConn), nil
		}
		lastErr = err
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	return nil, fmt.Errorf("bind source port: %w", lastErr)
}

// receive reads packets, applies the checks that need no session state and
// passes the valid ones to run.
func (s *Session) receive(ctx context.Context, c *net.UDPConn, out chan<- Packet) {
	buf := make([]byte, 512)
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		n, oobn, _, from, err := c.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("bfd: receive failed, session stops receiving", "err", err)
			}
			return
		}
		if reason := s.check(from, oob[:oobn]); reason != "" {
			s.dropped.Add(1)
			s.log.Debug("bfd: packet dropped", "from", from.String(), "reason", reason)
			continue
		}
		p, err := packet.Parse(buf[:n])
		if err != nil {
			s.dropped.Add(1)
			s.log.Debug("bfd: packet dropped", "from", from.String(), "err", err)
			continue
		}
		select {
		case out <- p:
		case <-ctx.Done():
			return
		}
	}
}

// check returns why a datagram must be dropped, or "".
func (s *Session) check(from netip.AddrPort, oob []byte) string {
	if from.Addr().Unmap() != s.cfg.Peer {
		return "source is not the peer"
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return "bad control message: " + err.Error()
	}
	for _, m := range msgs {
		if m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_TTL && len(m.Data) >= 4 {
			ttl := int(binary.NativeEndian.Uint32(m.Data)) // a host-order int
			if ttl != TTL {
				return fmt.Sprintf("TTL %d, want %d", ttl, TTL)
			}
			return ""
		}
	}
	return "no TTL control message"
}

// run owns the state machine: it feeds it packets, commands and timer
// expiries and carries out its output.
func (s *Session) run(ctx context.Context, tx *net.UDPConn, pkts <-chan Packet) {
	peer := net.UDPAddrFromAddrPort(netip.AddrPortFrom(s.cfg.Peer, Port))
	timer := time.NewTimer(0)
	defer timer.Stop()
	buf := make([]byte, 0, packet.HeaderLen)
	for {
		var (
			out Output
			now time.Time
		)
		select {
		case <-ctx.Done():
			return
		case p := <-pkts:
			now = time.Now()
			var err error
			if out, err = s.m.Receive(now, &p); err != nil {
				s.dropped.Add(1)
				s.log.Debug("bfd: packet dropped", "err", err)
				continue
			}
			s.mu.Lock()
			s.status.PacketsIn++
			s.mu.Unlock()
		case cmd := <-s.cmds:
			now = time.Now()
			out, _ = cmd(now)
		case <-timer.C:
			now = time.Now()
			out = s.m.Advance(now)
		}
		if out.Send {
			var err error
			buf, err = out.Packet.Append(buf[:0])
			if err == nil {
				_, err = tx.WriteToUDP(buf, peer)
			}
			s.mu.Lock()
			if err != nil {
				s.status.SendErrors++
			} else {
				s.status.PacketsOut++
			}
			s.mu.Unlock()
			if err != nil {
				s.log.Debug("bfd: send failed", "err", err)
			}
		}
		s.mu.Lock()
		s.status.MachineStatus = s.m.Status()
		if out.Changed {
			s.status.Since = now
			s.status.Transitions++
			if out.Transition.From == StateUp {
				s.status.Downs++
			}
		}
		s.mu.Unlock()
		if out.Changed {
			tr := out.Transition
			s.log.Info("bfd: session state changed", "from", tr.From.String(), "to", tr.To.String(), "diag", tr.Diag.String())
			if s.cfg.OnChange != nil {
				s.cfg.OnChange(Change{Interface: s.cfg.Interface, Peer: s.cfg.Peer, From: tr.From, To: tr.To, Diag: tr.Diag, At: now})
			}
		}
		if d := s.m.NextDeadline(); !d.IsZero() {
			timer.Reset(time.Until(d))
		}
	}
}
