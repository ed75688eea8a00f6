// Package ipsec is the IPsec tunnel kind: a route-based TUN netdev whose
// packets leave as UDP-encapsulated ESP (RFC 3948), keyed by cgwd's own
// IKEv2 (pkg/ike) against one AWS tunnel endpoint.
//
// Sockets: each tunnel has two UDP sockets, local:500 <-> peer:500 and
// local:4500 <-> peer:4500, bound with SO_REUSEADDR and connected to the
// peer. Two tunnels sharing one outside address therefore share the ports:
// the kernel delivers each datagram to the socket connected to its source.
package ipsec

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/cgwd/cgwd/pkg/esp"
	"github.com/cgwd/cgwd/pkg/ike"
	"github.com/cgwd/cgwd/pkg/netdev"
	"github.com/cgwd/cgwd/pkg/tunnel"
)

// Ports of IKE and of NAT-T (IKE behind the non-ESP marker, and ESP).
const (
	PortIKE  = 500
	PortNATT = 4500
)

// Config is what an IPsec tunnel needs.
type Config struct {
	Name string
	// MTU of the netdev; with AutoMTU it is only the MTU until the first
	// Child SA, whose suite then sets it from AWS's table (esp.AWSTunnelMTU).
	// TCP SYNs crossing the tunnel are clamped to the MTU's MSS either way.
	MTU        int
	AutoMTU    bool
	Inside     netip.Prefix // cgwd's inside address with its /30
	PeerInside netip.Addr   // the AWS side's inside address
	// IKE holds the outside addresses (Local, Remote), the PSK and the
	// negotiation settings. The tunnel owns IKE.PSK and zeroes it on Close.
	IKE ike.Config
	// PortIKE and PortNATT override 500 and 4500 (for tests).
	PortIKE, PortNATT int
	Logger            *slog.Logger
}

// Tunnel is an IPsec tunnel. Create it with New.
type Tunnel struct {
	cfg Config
	log *slog.Logger
	dp  *dataPath

	mu      sync.Mutex
	dev     tun.Device
	ike     *net.UDPConn
	natt    *net.UDPConn
	sess    ike.Runner
	cancel  context.CancelFunc
	wg      sync.WaitGroup // the goroutines Start starts
	done    chan struct{}  // closed once they have returned
	started bool
	closed  bool         // the PSK is wiped: no restart
	workers int          // crypto workers per direction
	mtu     atomic.Int32 // the MTU suiteInUse last set
}

var _ tunnel.Tunnel = (*Tunnel)(nil)

// New checks cfg and returns a tunnel that is not started yet.
func New(cfg Config) (*Tunnel, error) {
	if cfg.PortIKE == 0 {
		cfg.PortIKE = PortIKE
	}
	if cfg.PortNATT == 0 {
		cfg.PortNATT = PortNATT
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	cfg.IKE.Logger = log.With("tunnel", cfg.Name, "kind", tunnel.KindIPsec)
	if cfg.IKE.ReplayWindow == 0 {
		cfg.IKE.ReplayWindow = esp.DefaultWindow
	}
	t := &Tunnel{cfg: cfg, log: cfg.IKE.Logger, dp: newDataPath(cfg.IKE.ReplayWindow), workers: defaultWorkers(), done: make(chan struct{})}
	sess, err := ike.NewRunner(cfg.IKE, t, t.dp)
	if err != nil {
		return nil, fmt.Errorf("tunnel %s: %w", cfg.Name, err)
	}
	for _, p := range append(slices.Clip(cfg.IKE.IKEProposals), cfg.IKE.ESPProposals...) {
		if p.WeakDH() {
			t.log.Warn("proposal offers a weak DH group (modp1024, modp1536 or modp1024s160: under 112 bits)", "proposal", p.String())
		}
	}
	t.sess = sess
	t.dp.mss.Store(uint32(esp.TCPMSS(cfg.MTU)))
	t.dp.onSuite = t.suiteInUse
	t.dp.log = t.log
	return t, nil
}

// Name returns the netdev name.
func (t *Tunnel) Name() string { return t.cfg.Name }

// Kind returns tunnel.KindIPsec.
func (t *Tunnel) Kind() tunnel.Kind { return tunnel.KindIPsec }

// dialUDP opens a UDP socket bound to local:lport and connected to remote:rport.
func dialUDP(local, remote netip.Addr, lport, rport int) (*net.UDPConn, error) {
	d := net.Dialer{
		LocalAddr: net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, uint16(lport))),
		Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			})
			return errors.Join(err, serr)
		},
	}
	c, err := d.Dial("udp4", netip.AddrPortFrom(remote, uint16(rport)).String())
	if err != nil {
		return nil, err
	}
	return c.(*net.UDPConn), nil
}

// Start creates the TUN netdev, opens the sockets and starts IKE and ESP,
// which run until ctx ends or Close: then IKE deletes the SAs and the
// sockets and the netdev are closed.
func (t *Tunnel) Start(ctx context.Context) (err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.started {
		return fmt.Errorf("tunnel %s: already started", t.cfg.Name)
	}
	if t.closed {
		return fmt.Errorf("tunnel %s: closed (its key is wiped)", t.cfg.Name)
	}
	local, remote := t.cfg.IKE.Local, t.cfg.IKE.Remote
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	ikeConn, err := dialUDP(local, remote, t.cfg.PortIKE, t.cfg.PortIKE)
	if err != nil {
		return fmt.Errorf("tunnel %s: UDP %s:%d: %w", t.cfg.Name, local, t.cfg.PortIKE, err)
	}
	undo = append(undo, func() { ikeConn.Close() })
	nattConn, err := dialUDP(local, remote, t.cfg.PortNATT, t.cfg.PortNATT)
	if err != nil {
		return fmt.Errorf("tunnel %s: UDP %s:%d: %w", t.cfg.Name, local, t.cfg.PortNATT, err)
	}
	undo = append(undo, func() { nattConn.Close() })
	dev, err := tun.CreateTUN(t.cfg.Name, t.cfg.MTU)
	if err != nil {
		return fmt.Errorf("tunnel %s: create TUN: %w", t.cfg.Name, err)
	}
	undo = append(undo, func() { dev.Close() })
	if err := netdev.ConfigureUp(t.cfg.Name, t.cfg.Inside, t.cfg.MTU); err != nil {
		return fmt.Errorf("tunnel %s: %w", t.cfg.Name, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	t.dev, t.ike, t.natt, t.cancel, t.started = dev, ikeConn, nattConn, cancel, true
	t.wg.Add(3)
	go func() {
		defer t.wg.Done()
		t.sess.Run(ctx) // returns after sending the peer a Delete
		ikeConn.Close()
		nattConn.Close()
		dev.Close()
	}()
	go func() { defer t.wg.Done(); t.readIKE(ikeConn) }()
	in := newInbound(t.log, t.workers, dev.BatchSize(), dev.Write, &t.dp.last)
	in.mss = &t.dp.mss
	in.start(&t.wg)
	go func() { defer t.wg.Done(); t.readNATT(ctx, nattConn, dev.BatchSize(), in) }()
	s := newSender(nattConn, dev.BatchSize())
	maxMTU := t.cfg.MTU
	if t.cfg.AutoMTU {
		maxMTU = max(maxMTU, esp.MaxAWSTunnelMTU)
	}
	out := newOutbound(t.log, t.workers, dev.BatchSize(), maxMTU, dev.Read, t.dp.out.Load, s.send)
	out.mss = &t.dp.mss
	out.start(ctx, &t.wg)
	go func() {
		t.wg.Wait()
		close(t.done)
	}()
	t.log.Info("tunnel started", "local", local, "remote", remote, "inside", t.cfg.Inside, "initiate", t.cfg.IKE.Initiate, "crypto_workers", t.workers)
	return nil
}

// SendIKE sends an IKE message to the peer (ike.Transport).
func (t *Tunnel) SendIKE(msg []byte, natt bool) error {
	t.mu.Lock()
	ikeConn, nattConn := t.ike, t.natt
	t.mu.Unlock()
	if ikeConn == nil {
		return errors.New("tunnel not started")
	}
	if !natt {
		_, err := ikeConn.Write(msg)
		return err
	}
	// The non-ESP marker, then the message, in a pooled buffer: a flood of
	// IKE_SA_INITs is answered with as many COOKIEs.
	bp := sendPool.Get().(*[]byte)
	b := append(append((*bp)[:0], 0, 0, 0, 0), msg...)
	_, err := nattConn.Write(b)
	if cap(b) <= 2048 {
		*bp = b[:0]
		sendPool.Put(bp)
	}
	return err
}

var sendPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// readIKE passes IKE messages from port 500 to the session.
func (t *Tunnel) readIKE(c *net.UDPConn) {
	buf := make([]byte, 65536)
	for {
		n, err := c.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ECONNREFUSED from an ICMP error: the peer is not there yet
		}
		t.sess.Deliver(buf[:n], false)
	}
}

// readNATT reads port 4500 in batches (recvmmsg, with UDP GRO when the
// kernel has it): IKE goes to the session, ESP to the inbound pipeline,
// which decrypts it on the crypto workers and writes it to the TUN.
func (t *Tunnel) readNATT(ctx context.Context, c *net.UDPConn, batch int, in *inbound) {
	defer in.close()
	if rc, err := c.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_GRO, 1) })
	}
	pc := ipv4.NewPacketConn(c)
	msgs := make([]ipv4.Message, batch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, 65536)}
		msgs[i].OOB = make([]byte, unix.CmsgSpace(4))
	}
	for {
		n, err := pc.ReadBatch(msgs, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ECONNREFUSED from an ICMP error
		}
		for i := 0; i < n; i++ {
			data := msgs[i].Buffers[0][:msgs[i].N]
			seg := groSize(msgs[i].OOB[:msgs[i].NN])
			if seg <= 0 {
				seg = len(data)
			}
			for off := 0; off < len(data); off += seg {
				pkt := data[off:min(off+seg, len(data))]
				switch esp.ClassifyUDP(pkt) {
				case esp.UDPIKE:
					t.sess.Deliver(pkt[4:], true)
				case esp.UDPESP:
					if !t.pushESP(ctx, in, pkt) {
						return
					}
				}
			}
		}
		in.flush()
	}
}

// pushESP passes one ESP packet that passes its SA's pre-check to the
// inbound pipeline; false if ctx ended.
func (t *Tunnel) pushESP(ctx context.Context, in *inbound, pkt []byte) bool {
	spi, _ := esp.PeekSPI(pkt)
	sa := (*t.dp.in.Load())[spi]
	if sa == nil {
		t.dp.unknownSPI.Add(1)
		return true
	}
	if sa.Precheck(pkt) != nil {
		return true
	}
	return in.push(ctx, sa, pkt)
}

// groSize returns the segment size of a UDP GRO datagram from its control
// messages, or 0.
func groSize(oob []byte) int {
	for len(oob) >= unix.CmsgLen(0) {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.CmsgLen(0) || l > len(oob) {
			return 0
		}
		if h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO {
			d := oob[unix.CmsgLen(0):l]
			switch {
			case len(d) >= 4:
				return int(binary.NativeEndian.Uint32(d))
			case len(d) >= 2:
				return int(binary.NativeEndian.Uint16(d))
			}
			return 0
		}
		oob = oob[min(unix.CmsgSpace(l-unix.CmsgLen(0)), len(oob)):]
	}
	return 0
}

// sender sends runs of ESP packets on the 4500 socket.
type sender struct {
	conn *net.UDPConn
	pc   *ipv4.PacketConn
	gso  bool
	msgs []ipv4.Message
	oob  []byte
}

// newSender makes a sender that falls back to sendmmsg batches of up to
// batch datagrams.
func newSender(c *net.UDPConn, batch int) *sender {
	s := &sender{conn: c, pc: ipv4.NewPacketConn(c), gso: true, msgs: make([]ipv4.Message, max(batch, maxGSOSegments)), oob: make([]byte, unix.CmsgSpace(2))}
	for i := range s.msgs {
		s.msgs[i].Buffers = make([][]byte, 1)
	}
	return s
}

// send sends run, packets of seg bytes (the last may be shorter).
func (s *sender) send(run []byte, seg int) {
	if len(run) <= seg {
		s.conn.Write(run)
		return
	}
	if s.gso {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&s.oob[0]))
		h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
		h.SetLen(unix.CmsgLen(2))
		binary.NativeEndian.PutUint16(s.oob[unix.CmsgLen(0):], uint16(seg))
		_, _, err := s.conn.WriteMsgUDP(run, s.oob, nil)
		if err == nil {
			return
		}
		var errno syscall.Errno
		if !errors.As(err, &errno) || (errno != unix.EIO && errno != unix.EINVAL && errno != unix.EOPNOTSUPP) {
			return // e.g. ECONNREFUSED, ENOBUFS: lost like any packet
		}
		s.gso = false // no UDP GSO here: one datagram per packet from now on
	}
	m := 0
	for off := 0; off < len(run); off += seg {
		s.msgs[m].Buffers[0] = run[off:min(off+seg, len(run))]
		m++
	}
	for sent := 0; sent < m; {
		k, err := s.pc.WriteBatch(s.msgs[sent:m], 0)
		if err != nil {
			return
		}
		sent += k
	}
}

// Done is closed when the tunnel has stopped after Start's context ended
// or Close.
func (t *Tunnel) Done() <-chan struct{} { return t.done }

// Close stops the tunnel as the end of Start's context does (IKE deletes
// the SAs, the netdev and sockets are removed), waits until it has stopped
// and zeroes the PSK: the tunnel cannot be started again.
func (t *Tunnel) Close() error {
	t.mu.Lock()
	if !t.started {
		t.wipeLocked()
		t.mu.Unlock()
		return nil
	}
	cancel := t.cancel
	t.mu.Unlock()
	cancel()
	<-t.done
	t.mu.Lock()
	t.started, t.dev, t.ike, t.natt = false, nil, nil, nil
	t.wipeLocked()
	t.mu.Unlock()
	t.log.Info("tunnel stopped")
	return nil
}

// wipeLocked zeroes the PSK, which the IKE session shares (it holds the
// same slice), and marks the tunnel closed. The session must not be running.
func (t *Tunnel) wipeLocked() {
	clear(t.cfg.IKE.PSK)
	t.closed = true
}

// Status reports the tunnel up while a Child SA carries traffic.
func (t *Tunnel) Status() tunnel.Status {
	st := tunnel.Status{
		Name: t.cfg.Name, Kind: tunnel.KindIPsec, State: tunnel.StateDown,
		LocalOutside: t.cfg.IKE.Local, RemoteOutside: t.cfg.IKE.Remote,
		Inside: t.cfg.Inside, PeerInside: t.cfg.PeerInside,
	}
	t.mu.Lock()
	started := t.started
	t.mu.Unlock()
	if !started {
		return st
	}
	st.State = tunnel.StateConnecting
	is := t.sess.Status()
	if is.State == "established" && t.dp.out.Load() != nil {
		st.State = tunnel.StateUp
	}
	st.LastHandshake = is.Established
	c := t.dp.totals()
	st.RxBytes, st.TxBytes = c.rxBytes, c.txBytes
	d := t.Details()
	st.IPsec = &tunnel.IPsecStatus{
		IKEState: is.State, IKEVersion: is.Version, IKEVersionSwitch: is.VersionSwitch, IKEVersionSwitches: is.VersionSwitches,
		IKESuite: is.IKESuite, IKEEstablished: is.Established, IKERekeyDue: is.IKERekeyDue,
		ChildSuite: is.ChildSuite, ChildEstablished: is.ChildSince, ChildRekeyDue: is.ChildRekeyDue,
		ChildRekeys: is.ChildRekeys, IKERekeys: is.IKERekeys, EstablishSeconds: is.EstablishTime,
		ESPDropped: d.Dropped, IKEDropped: is.Dropped, LastError: is.LastError,
		IKEFragments: map[string]uint64{"sent": is.Fragments.Sent, "fragmented": is.Fragments.Fragmented,
			"received": is.Fragments.Received, "reassembled": is.Fragments.Reassembled},
	}
	if is.SPIi != "" {
		st.IPsec.IKESPIs = is.SPIi + "/" + is.SPIr
	}
	if is.ChildInSPI != "" {
		st.IPsec.ChildSPIs = is.ChildInSPI + "/" + is.ChildOutSPI
	}
	return st
}

// Details is the IPsec-specific status: IKE and Child SAs and ESP counters.
// It holds no keys.
type Details struct {
	ike.Status
	RxPackets uint64            `json:"rx_packets"`
	TxPackets uint64            `json:"tx_packets"`
	Dropped   map[string]uint64 `json:"esp_dropped"`
}

// Details returns the IKE session's status and the ESP counters.
func (t *Tunnel) Details() Details {
	c := t.dp.totals()
	d := Details{Status: t.sess.Status(), RxPackets: c.rxPackets, TxPackets: c.txPackets, Dropped: map[string]uint64{}}
	for i, r := range esp.DropReasons {
		d.Dropped[r.String()] = c.drops[i]
	}
	d.Dropped["unknown_spi"] = t.dp.unknownSPI.Load()
	return d
}

// suiteInUse sets the netdev's MTU from the suite of the outbound SA just
// taken into use, as AWS's table has it for ESP in UDP, unless the MTU is
// configured, and the TCP MSS clamp with it. It runs on the IKE session's
// goroutine.
func (t *Tunnel) suiteInUse(s esp.Suite) {
	if !t.cfg.AutoMTU {
		return
	}
	mtu := esp.AWSTunnelMTU(s, true)
	if int(t.mtu.Swap(int32(mtu))) == mtu {
		return
	}
	t.dp.mss.Store(uint32(esp.TCPMSS(mtu)))
	if err := netdev.SetMTU(t.cfg.Name, mtu); err != nil {
		t.log.Error("cannot set the tunnel MTU for the negotiated suite", "mtu", mtu, "suite", s.String(), "err", err)
		return
	}
	t.log.Info("tunnel MTU set for the negotiated suite (AWS's table, NAT-T)", "mtu", mtu, "tcp_mss", esp.TCPMSS(mtu), "suite", s.String())
}
