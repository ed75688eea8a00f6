package bfd

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"github.com/cgwd/cgwd/pkg/bfd/packet"
)

// SlowTxInterval is the minimum transmit interval while a session is not Up
// (RFC 5880 6.8.3).
const SlowTxInterval = time.Second

// MinInterval is the smallest transmit or receive interval Timers accepts.
const MinInterval = 50 * time.Millisecond

// Timers are the local timer parameters of a session.
type Timers struct {
	// DesiredMinTx is how often we want to send once Up (bfd.DesiredMinTxInterval).
	DesiredMinTx time.Duration
	// RequiredMinRx is how often we are able to receive (bfd.RequiredMinRxInterval).
	RequiredMinRx time.Duration
	// DetectMult is the detection time multiplier we ask the peer to use.
	DetectMult uint8
}

// Validate checks the timers, naming the bad field.
func (t Timers) Validate() error {
	if t.DesiredMinTx < MinInterval || t.DesiredMinTx > packet.MaxInterval {
		return fmt.Errorf("bfd: desired min tx %v: must be between %v and %v", t.DesiredMinTx, MinInterval, packet.MaxInterval)
	}
	if t.RequiredMinRx < MinInterval || t.RequiredMinRx > packet.MaxInterval {
		return fmt.Errorf("bfd: required min rx %v: must be between %v and %v", t.RequiredMinRx, MinInterval, packet.MaxInterval)
	}
	if t.DetectMult == 0 {
		return fmt.Errorf("bfd: detect multiplier must be at least 1")
	}
	return nil
}

// Transition is a change of session state and the diagnostic explaining it.
type Transition struct {
	From, To State
	Diag     Diag
}

// Output is what the caller of a Machine method must do next.
type Output struct {
	// Send is true when Packet must be transmitted now.
	Send   bool
	Packet Packet
	// Changed is true when the session state changed; Transition says how.
	Changed    bool
	Transition Transition
}

// Machine is the RFC 5880 session state machine for one asynchronous-mode
// session. It does no I/O and reads no clock: the caller passes the current
// time to every method, transmits the packets it returns, and calls Advance
// at NextDeadline. It is not safe for concurrent use.
type Machine struct {
	state            State
	diag             Diag
	localDiscr       uint32
	remoteDiscr      uint32
	remoteState      State
	remoteDiag       Diag
	remoteDemand     bool
	remoteMinRx      time.Duration
	remoteDesiredTx  time.Duration
	remoteDetectMult uint8

	cfg Timers
	// advTx and advRx are the values we put in outgoing packets; activeTx
	// and activeRx are those in force for our transmit interval and our
	// detection time. They differ only during a poll sequence (6.8.3).
	advTx, advRx       time.Duration
	activeTx, activeRx time.Duration
	polling            bool

	nextTx         time.Time
	detectDeadline time.Time // zero: not armed
	rand           func() float64
}

// MachineConfig configures NewMachine.
type MachineConfig struct {
	Timers Timers
	// LocalDiscr is our discriminator; zero picks a random non-zero one.
	LocalDiscr uint32
	// Rand returns a number in [0, 1) for transmit jitter; nil uses math/rand.
	Rand func() float64
}

// NewMachine returns a session in state Down whose first packet is due at now.
func NewMachine(cfg MachineConfig, now time.Time) (*Machine, error) {
	if err := cfg.Timers.Validate(); err != nil {
		return nil, err
	}
	m := &Machine{
		state:       StateDown,
		remoteState: StateDown,
		localDiscr:  cfg.LocalDiscr,
		remoteMinRx: time.Microsecond, // RFC 5880 6.8.1 initial value
		cfg:         cfg.Timers,
		rand:        cfg.Rand,
		nextTx:      now,
	}
	for m.localDiscr == 0 {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("bfd: discriminator: %w", err)
		}
		m.localDiscr = binary.BigEndian.Uint32(b[:])
	}
	if m.rand == nil {
		m.rand = mrand.Float64
	}
	m.advTx, m.advRx = m.wantTx(), m.cfg.RequiredMinRx
	m.activeTx, m.activeRx = m.advTx, m.advRx
	return m, nil
}

// wantTx is the desired min TX interval to advertise in the current state.
func (m *Machine) wantTx() time.Duration {
	if m.state != StateUp && m.cfg.DesiredMinTx < SlowTxInterval {
		return SlowTxInterval
	}
	return m.cfg.DesiredMinTx
}

// State returns the session state.
func (m *Machine) State() State { return m.state }

// LocalDiscr returns our discriminator.
func (m *Machine) LocalDiscr() uint32 { return m.localDiscr }

// TxInterval is the current periodic transmit interval before jitter, or
// zero when periodic transmission is suspended (RFC 5880 6.8.7).
func (m *Machine) TxInterval() time.Duration {
	if m.remoteMinRx == 0 || (m.remoteDemand && m.state == StateUp && m.remoteState == StateUp) {
		return 0
	}
	return max(m.activeTx, m.remoteMinRx)
}

// DetectionTime is the asynchronous-mode detection time: the remote detect
// multiplier times max(our required min RX, the remote desired min TX). It
// is zero until a packet has been received.
func (m *Machine) DetectionTime() time.Duration {
	return time.Duration(m.remoteDetectMult) * max(m.activeRx, m.remoteDesiredTx)
}

// NextDeadline is when Advance must next be called.
func (m *Machine) NextDeadline() time.Time {
	d := m.detectDeadline
	if m.TxInterval() > 0 && (d.IsZero() || m.nextTx.Before(d)) {
		d = m.nextTx
	}
	return d
}

// jittered applies the transmit jitter of RFC 5880 6.8.7: a reduction of
// 0-25%, or 10-25% with a detect multiplier of 1.
func (m *Machine) jittered(iv time.Duration) time.Duration {
	lo := 0.0
	if m.cfg.DetectMult == 1 {
		lo = 0.10
	}
	red := lo + (0.25-lo)*m.rand()
	return time.Duration(float64(iv) * (1 - red))
}

// packet is the next control packet. Its Control Plane Independent (C)
// bit is clear: BFD runs in cgwd's process and shares fate with its BGP
// speaker, so a peer may take a BFD failure during a restart of cgwd for
// that restart (RFC 5882 4.3; README, "Hitless restart").
func (m *Machine) packet(final bool) Packet {
	return Packet{
		Diag:          m.diag,
		State:         m.state,
		Poll:          m.polling && !final,
		Final:         final,
		DetectMult:    m.cfg.DetectMult,
		MyDiscr:       m.localDiscr,
		YourDiscr:     m.remoteDiscr,
		DesiredMinTx:  m.advTx,
		RequiredMinRx: m.advRx,
	}
}

// send fills out with a packet and schedules the next periodic one.
func (m *Machine) send(now time.Time, out *Output, final bool) {
	out.Send = true
	out.Packet = m.packet(final)
	if iv := m.TxInterval(); iv > 0 {
		m.nextTx = now.Add(m.jittered(iv))
	}
}

// setState changes state, recomputes the advertised timers and records the
// transition in out.
func (m *Machine) setState(to State, diag Diag, out *Output) {
	out.Changed = true
	out.Transition = Transition{From: m.state, To: to, Diag: diag}
	m.state, m.diag = to, diag
	m.applyTimers()
}

// applyTimers moves the advertised values to the configured ones. While Up a
// change starts a poll sequence and the new values come into force as RFC
// 5880 6.8.3 allows: a faster TX and a slower RX at once, the others when the
// peer answers with Final. Outside Up they apply at once.
func (m *Machine) applyTimers() {
	tx, rx := m.wantTx(), m.cfg.RequiredMinRx
	if m.state != StateUp {
		m.advTx, m.advRx, m.activeTx, m.activeRx, m.polling = tx, rx, tx, rx, false
		return
	}
	if tx == m.advTx && rx == m.advRx {
		return
	}
	m.advTx, m.advRx, m.polling = tx, rx, true
	if tx < m.activeTx {
		m.activeTx = tx
	}
	if rx > m.activeRx {
		m.activeRx = rx
	}
}

// Receive processes a packet that Parse accepted and that came from the
// session's peer (RFC 5880 6.8.6). It returns an error, and changes nothing,
// for a packet addressed to another session.
func (m *Machine) Receive(now time.Time, p *Packet) (Output, error) {
	var out Output
	if p.YourDiscr != 0 && p.YourDiscr != m.localDiscr {
		return out, fmt.Errorf("bfd: your discriminator %#x is not ours (%#x)", p.YourDiscr, m.localDiscr)
	}
	m.remoteDiscr = p.MyDiscr
	m.remoteState = p.State
	m.remoteDiag = p.Diag
	m.remoteDemand = p.Demand
	m.remoteMinRx = p.RequiredMinRx
	m.remoteDesiredTx = p.DesiredMinTx
	m.remoteDetectMult = p.DetectMult
	if p.Final && m.polling {
		m.polling = false
		m.activeTx, m.activeRx = m.advTx, m.advRx
	}
	if m.state == StateAdminDown {
		return out, nil
	}
	switch {
	case p.State == StateAdminDown:
		if m.state != StateDown {
			m.setState(StateDown, DiagNeighborDown, &out)
		}
	case m.state == StateDown:
		if p.State == StateDown {
			m.setState(StateInit, DiagNone, &out)
		} else if p.State == StateInit {
			m.setState(StateUp, DiagNone, &out)
		}
	case m.state == StateInit:
		if p.State == StateInit || p.State == StateUp {
			m.setState(StateUp, DiagNone, &out)
		}
	case m.state == StateUp:
		if p.State == StateDown {
			m.setState(StateDown, DiagNeighborDown, &out)
		}
	}
	m.detectDeadline = now.Add(m.DetectionTime())
	switch {
	case p.Poll:
		m.send(now, &out, true)
	case out.Changed:
		m.send(now, &out, false)
	default:
		// The peer may now accept packets sooner than we planned to send.
		if iv := m.TxInterval(); iv > 0 && now.Add(iv).Before(m.nextTx) {
			m.nextTx = now.Add(m.jittered(iv))
		}
	}
	return out, nil
}

// Advance fires the timers that are due at now: the detection timer
// (Init or Up go Down with "control detection time expired", and the remote
// discriminator is forgotten) and the periodic transmission.
func (m *Machine) Advance(now time.Time) Output {
	var out Output
	if !m.detectDeadline.IsZero() && !now.Before(m.detectDeadline) {
		m.detectDeadline = time.Time{}
		m.remoteDiscr = 0
		m.remoteState = StateDown
		m.remoteDemand = false
		m.remoteMinRx = time.Microsecond
		if m.state == StateInit || m.state == StateUp {
			m.setState(StateDown, DiagControlDetectExpired, &out)
			m.send(now, &out, false)
			return out
		}
	}
	if m.TxInterval() > 0 && !now.Before(m.nextTx) {
		m.send(now, &out, false)
	}
	return out
}

// SetAdminDown puts the session into AdminDown (diag "administratively
// down") or takes it out to Down. Packets keep flowing at the slow rate so
// the peer learns the state.
func (m *Machine) SetAdminDown(now time.Time, down bool) Output {
	var out Output
	switch {
	case down && m.state != StateAdminDown:
		m.setState(StateAdminDown, DiagAdminDown, &out)
		m.detectDeadline = time.Time{}
		m.send(now, &out, false)
	case !down && m.state == StateAdminDown:
		m.setState(StateDown, DiagNone, &out)
		m.send(now, &out, false)
	}
	return out
}

// SetTimers changes the local timers. While Up this starts a poll sequence:
// outgoing packets carry Poll until the peer answers with Final.
func (m *Machine) SetTimers(now time.Time, t Timers) (Output, error) {
	var out Output
	if err := t.Validate(); err != nil {
		return out, err
	}
	m.cfg = t
	m.applyTimers()
	if m.polling {
		m.send(now, &out, false)
	}
	return out, nil
}

// MachineStatus is a snapshot of the session variables of RFC 5880 6.8.1.
type MachineStatus struct {
	State, RemoteState      State
	Diag, RemoteDiag        Diag
	LocalDiscr, RemoteDiscr uint32
	// TxInterval is the negotiated periodic transmit interval (before jitter).
	TxInterval time.Duration
	// DetectionTime is how long we wait for a packet before declaring Down.
	DetectionTime time.Duration
	// RemoteMinRx, RemoteDesiredTx and RemoteDetectMult are the peer's timers.
	RemoteMinRx, RemoteDesiredTx time.Duration
	RemoteDetectMult             uint8
	// Polling is true while a poll sequence is outstanding.
	Polling bool
}

// Status returns a snapshot of the session variables.
func (m *Machine) Status() MachineStatus {
	return MachineStatus{
		State: m.state, RemoteState: m.remoteState, Diag: m.diag, RemoteDiag: m.remoteDiag,
		LocalDiscr: m.localDiscr, RemoteDiscr: m.remoteDiscr,
		TxInterval: m.TxInterval(), DetectionTime: m.DetectionTime(),
		RemoteMinRx: m.remoteMinRx, RemoteDesiredTx: m.remoteDesiredTx, RemoteDetectMult: m.remoteDetectMult,
		Polling: m.polling,
	}
}
