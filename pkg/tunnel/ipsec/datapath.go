package ipsec

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cgwd/cgwd/pkg/esp"
	"github.com/cgwd/cgwd/pkg/ike"
)

// dataPath holds the ESP SAs the IKE session installs. The TUN reader uses
// the outbound SA and the UDP reader the inbound ones; each is read
// lock-free through an atomic pointer and replaced whole by the session.
type dataPath struct {
	window int

	out  atomic.Pointer[esp.Outbound]
	in   atomic.Pointer[map[uint32]*esp.Inbound]
	last atomic.Int64 // unix nanoseconds of the last authenticated inbound packet
	// unknownSPI counts ESP packets whose SPI names no installed inbound SA
	// (a peer still sending on an SA we removed, or noise).
	unknownSPI atomic.Uint64
	// mss is the TCP MSS SYNs are clamped to in both directions (0: none);
	// the tunnel sets it from the MTU.
	mss atomic.Uint32
	// onSuite, when set, is told the suite of each outbound SA taken into use.
	onSuite func(esp.Suite)
	// log, when set, records each removed SA's counters.
	log *slog.Logger

	mu      sync.Mutex               // serialises the session's changes and retired counters
	outs    map[uint32]*esp.Outbound // outbound SA by the Child SA's inbound SPI
	retired counters
}

type counters struct {
	rxPackets, rxBytes, txPackets, txBytes uint64
	drops                                  [len(esp.DropReasons)]uint64
}

var _ ike.DataPath = (*dataPath)(nil)

func newDataPath(window int) *dataPath {
	d := &dataPath{window: window, outs: map[uint32]*esp.Outbound{}}
	d.in.Store(&map[uint32]*esp.Inbound{})
	return d
}

// AddInbound installs the Child SA's inbound SA and prepares its outbound
// one. The ESP SAs keep their own copies of the keys, so the KEYMAT in c is
// zeroed here: nothing needs it once the SAs exist.
func (d *dataPath) AddInbound(c *ike.ChildSA) error {
	defer clear(c.OutKey)
	defer clear(c.InKey)
	in, err := esp.NewInbound(c.InSPI, c.Suite, c.InKey, d.window, c.LocalTS, c.RemoteTS)
	if err != nil {
		return err
	}
	out, err := esp.NewOutbound(c.OutSPI, c.Suite, c.OutKey)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	old := *d.in.Load()
	if _, dup := old[c.InSPI]; dup {
		return fmt.Errorf("inbound SPI %08x already in use", c.InSPI)
	}
	m := make(map[uint32]*esp.Inbound, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[c.InSPI] = in
	d.in.Store(&m)
	d.outs[c.InSPI] = out
	return nil
}

// UseOutbound makes the Child SA's outbound SA the one packets leave by.
func (d *dataPath) UseOutbound(c *ike.ChildSA) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := d.outs[c.InSPI]
	if out == nil {
		return fmt.Errorf("no Child SA with inbound SPI %08x", c.InSPI)
	}
	d.out.Store(out)
	if d.onSuite != nil {
		d.onSuite(c.Suite)
	}
	return nil
}

// Remove forgets a Child SA, keeping its counters in the totals.
func (d *dataPath) Remove(inSPI uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	old := *d.in.Load()
	m := make(map[uint32]*esp.Inbound, len(old))
	var rx, tx uint64
	for k, v := range old {
		if k == inSPI {
			rx = v.Counters.Packets.Load()
			d.retire(&v.Counters, false)
			continue
		}
		m[k] = v
	}
	d.in.Store(&m)
	out := d.outs[inSPI]
	if out != nil {
		tx = out.Counters.Packets.Load()
		d.retire(&out.Counters, true)
		if d.out.Load() == out {
			d.out.Store(nil)
		}
		delete(d.outs, inSPI)
	}
	if d.log != nil {
		spiOut := ""
		if out != nil {
			spiOut = fmt.Sprintf("%08x", out.SPI)
		}
		d.log.Info("ESP SAs removed", "spi_in", fmt.Sprintf("%08x", inSPI), "packets_in", rx, "spi_out", spiOut, "packets_out", tx)
	}
}

func (d *dataPath) retire(c *esp.Counters, outbound bool) {
	if outbound {
		d.retired.txPackets += c.Packets.Load()
		d.retired.txBytes += c.Bytes.Load()
		return
	}
	d.retired.rxPackets += c.Packets.Load()
	d.retired.rxBytes += c.Bytes.Load()
	for i := range c.Drops {
		d.retired.drops[i] += c.Drops[i].Load()
	}
}

// LastInbound is when the last authenticated ESP packet arrived.
func (d *dataPath) LastInbound() time.Time {
	n := d.last.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// OutboundSeq is the outbound SA's last sequence number.
func (d *dataPath) OutboundSeq() uint64 {
	if o := d.out.Load(); o != nil {
		return o.Seq()
	}
	return 0
}

// totals sums the live and retired SAs' counters.
func (d *dataPath) totals() counters {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.retired
	for _, in := range *d.in.Load() {
		t.rxPackets += in.Counters.Packets.Load()
		t.rxBytes += in.Counters.Bytes.Load()
		for i := range in.Counters.Drops {
			t.drops[i] += in.Counters.Drops[i].Load()
		}
	}
	for _, o := range d.outs {
		t.txPackets += o.Counters.Packets.Load()
		t.txBytes += o.Counters.Bytes.Load()
	}
	return t
}
