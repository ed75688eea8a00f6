// Package probe checks a tunnel by ICMP echo across it: from cgwd's inside
// address to the AWS side's, for peers that do not speak BFD (AWS VPN
// endpoints). A path goes down after LossThreshold probes in a row are lost
// and comes back after Recovery probes in a row are answered.
package probe

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// Config configures one prober.
type Config struct {
	// Local is cgwd's inside address; Peer is the AWS side's.
	Local, Peer netip.Addr
	// ID tells this prober's echo replies from others' (ICMP identifier).
	ID uint16
	// Interval between probes; a probe not answered by the next one is lost.
	Interval time.Duration
	// LossThreshold lost probes in a row take the path down.
	LossThreshold int
	// Recovery answered probes in a row bring it back up.
	Recovery int
	// Window is how many recent probes the loss ratio covers.
	Window int
	// OnChange is called, from the prober's goroutine, when the verdict changes.
	OnChange func(up bool, at time.Time)
	// OnResult is called after every probe: its RTT (0 if lost) and the
	// prober's stats then.
	OnResult func(rtt time.Duration, lost bool, st Stats)
	Logger   *slog.Logger
}

// Stats is a snapshot of a prober.
type Stats struct {
	Up        bool
	Sent      uint64
	Received  uint64
	LossRatio float64       // over the last Window probes
	LastRTT   time.Duration // of the last answered probe
	Jitter    time.Duration // mean absolute difference of consecutive RTTs (RFC 3550 style, smoothed)
}

// tracker is the prober's clock-free verdict: it is fed probe outcomes.
type tracker struct {
	cfg      Config
	up       bool
	lostRun  int
	okRun    int
	window   []bool // true = lost
	next     int
	filled   int
	sent     uint64
	received uint64
	lastRTT  time.Duration
	jitter   float64
}

func newTracker(cfg Config) *tracker {
	return &tracker{cfg: cfg, window: make([]bool, cfg.Window)}
}

// record feeds one probe's outcome and reports whether the verdict changed.
func (t *tracker) record(lost bool, rtt time.Duration) (changed bool) {
	t.sent++
	t.window[t.next] = lost
	t.next = (t.next + 1) % len(t.window)
	if t.filled < len(t.window) {
		t.filled++
	}
	if lost {
		t.lostRun++
		t.okRun = 0
	} else {
		t.received++
		t.okRun++
		t.lostRun = 0
		if t.lastRTT != 0 {
			d := float64(rtt - t.lastRTT)
			if d < 0 {
				d = -d
			}
			t.jitter += (d - t.jitter) / 16
		}
		t.lastRTT = rtt
	}
	switch {
	case t.up && t.lostRun >= t.cfg.LossThreshold:
		t.up = false
		return true
	case !t.up && t.okRun >= t.cfg.Recovery:
		t.up = true
		return true
	}
	return false
}

func (t *tracker) stats() Stats {
	lost := 0
	for i := 0; i < t.filled; i++ {
		if t.window[i] {
			lost++
		}
	}
	s := Stats{Up: t.up, Sent: t.sent, Received: t.received, LastRTT: t.lastRTT, Jitter: time.Duration(t.jitter)}
	if t.filled > 0 {
		s.LossRatio = float64(lost) / float64(t.filled)
	}
	return s
}

// Prober sends echo requests across a tunnel and judges the path.
type Prober struct {
	cfg  Config
	log  *slog.Logger
	mu   sync.Mutex
	tr   *tracker
	conn *icmp.PacketConn
	done chan struct{}
}

// New checks cfg and returns a prober; call Start.
func New(cfg Config) (*Prober, error) {
	if !cfg.Local.Is4() || !cfg.Peer.Is4() {
		return nil, errors.New("probe: local and peer must be IPv4 addresses")
	}
	if cfg.Interval <= 0 || cfg.LossThreshold < 1 || cfg.Recovery < 1 {
		return nil, fmt.Errorf("probe %s: interval, loss threshold and recovery must be positive", cfg.Peer)
	}
	if cfg.Window < 1 {
		cfg.Window = 100
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Prober{cfg: cfg, log: log.With("probe_peer", cfg.Peer), tr: newTracker(cfg), done: make(chan struct{})}, nil
}

// Stats returns the prober's counters and verdict.
func (p *Prober) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tr.stats()
}

// Start opens a raw ICMP socket on the local inside address (CAP_NET_RAW)
// and probes until ctx ends; Done is closed once the socket is closed and
// the prober's goroutines have returned. Start may be called once.
func (p *Prober) Start(ctx context.Context) error {
	c, err := icmp.ListenPacket("ip4:icmp", p.cfg.Local.String())
	if err != nil {
		return fmt.Errorf("probe %s: %w", p.cfg.Peer, err)
	}
	p.conn = c
	replies := make(chan reply, 16)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		p.read(replies)
	}()
	go func() {
		defer wg.Done()
		p.run(ctx, replies)
	}()
	go func() {
		<-ctx.Done()
		c.Close() // unblocks read
		wg.Wait()
		close(p.done)
	}()
	return nil
}

// Done is closed when the prober has stopped after its context ended.
func (p *Prober) Done() <-chan struct{} { return p.done }

type reply struct {
	seq uint16
	at  time.Time
}

// read delivers this prober's echo replies until the socket closes.
func (p *Prober) read(out chan<- reply) {
	buf := make([]byte, 1500)
	for {
		n, from, err := p.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		at := time.Now()
		if a, ok := from.(*net.IPAddr); !ok || !a.IP.Equal(p.cfg.Peer.AsSlice()) {
			continue
		}
		m, err := icmp.ParseMessage(1, buf[:n])
		if err != nil || m.Type != ipv4.ICMPTypeEchoReply {
			continue
		}
		e, ok := m.Body.(*icmp.Echo)
		if !ok || e.ID != int(p.cfg.ID) {
			continue
		}
		select {
		case out <- reply{seq: uint16(e.Seq), at: at}:
		default: // run is behind: the probe counts as lost
		}
	}
}

// run sends a probe every Interval; a probe not answered by the next send is lost.
func (p *Prober) run(ctx context.Context, replies <-chan reply) {
	tick := time.NewTicker(p.cfg.Interval)
	defer tick.Stop()
	var seq uint16
	var sentAt time.Time
	answered := true
	dst := &net.IPAddr{IP: p.cfg.Peer.AsSlice()}
	payload := make([]byte, 8)
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-replies:
			if r.seq == seq && !answered {
				answered = true
				p.outcome(false, r.at.Sub(sentAt))
			}
		case <-tick.C:
			if !answered {
				p.outcome(true, 0)
			}
			seq++
			sentAt = time.Now()
			binary.BigEndian.PutUint64(payload, uint64(sentAt.UnixNano()))
			msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: int(p.cfg.ID), Seq: int(seq), Data: payload}}
			b, _ := msg.Marshal(nil)
			if _, err := p.conn.WriteTo(b, dst); err != nil {
				p.log.Debug("probe: send failed", "err", err)
			}
			answered = false
		}
	}
}

func (p *Prober) outcome(lost bool, rtt time.Duration) {
	p.mu.Lock()
	changed := p.tr.record(lost, rtt)
	up := p.tr.up
	st := p.tr.stats()
	p.mu.Unlock()
	if p.cfg.OnResult != nil {
		p.cfg.OnResult(rtt, lost, st)
	}
	if changed && p.cfg.OnChange != nil {
		p.cfg.OnChange(up, time.Now())
	}
}
