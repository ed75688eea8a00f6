// Package packet is BFD's control packet codec (RFC 5880 section 4.1): pure
// functions from bytes to Packet and back, with the reception checks of RFC
// 5880 6.8.6 that need no session state. It keeps no state, starts nothing
// and allocates nothing for a packet it accepts (AllocBudget bounds what a
// rejected one costs); package bfd runs sessions on top of it.
package packet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Version is the BFD protocol version this package speaks (RFC 5880 4.1).
const Version = 1

// HeaderLen is the length of a control packet without authentication.
const HeaderLen = 24

// State is a BFD session state (RFC 5880 4.1).
type State uint8

// Session states, with their wire values.
const (
	StateAdminDown State = 0
	StateDown      State = 1
	StateInit      State = 2
	StateUp        State = 3
)

func (s State) String() string {
	switch s {
	case StateAdminDown:
		return "AdminDown"
	case StateDown:
		return "Down"
	case StateInit:
		return "Init"
	case StateUp:
		return "Up"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Diag is a BFD diagnostic code (RFC 5880 4.1): why the session last left Up.
type Diag uint8

// Diagnostic codes, with their wire values.
const (
	DiagNone                  Diag = 0
	DiagControlDetectExpired  Diag = 1
	DiagEchoFailed            Diag = 2
	DiagNeighborDown          Diag = 3
	DiagForwardingReset       Diag = 4
	DiagPathDown              Diag = 5
	DiagConcatPathDown        Diag = 6
	DiagAdminDown             Diag = 7
	DiagReverseConcatPathDown Diag = 8
)

var diagNames = [...]string{
	"no diagnostic",
	"control detection time expired",
	"echo function failed",
	"neighbor signaled session down",
	"forwarding plane reset",
	"path down",
	"concatenated path down",
	"administratively down",
	"reverse concatenated path down",
}

func (d Diag) String() string {
	if int(d) < len(diagNames) {
		return diagNames[d]
	}
	return fmt.Sprintf("diag(%d)", uint8(d))
}

// Packet is a decoded BFD control packet. Intervals are carried in
// microseconds on the wire and as time.Duration here.
type Packet struct {
	Diag  Diag
	State State
	// Flags.
	Poll, Final, ControlPlaneIndependent, AuthPresent, Demand, Multipoint bool
	DetectMult                                                            uint8
	MyDiscr, YourDiscr                                                    uint32
	DesiredMinTx, RequiredMinRx, RequiredMinEchoRx                        time.Duration
}

// Errors returned by Parse. They are wrapped with the offending value.
var (
	ErrShort       = errors.New("bfd: packet too short")
	ErrVersion     = errors.New("bfd: unsupported version")
	ErrLength      = errors.New("bfd: bad length field")
	ErrDetectMult  = errors.New("bfd: detect multiplier is zero")
	ErrMultipoint  = errors.New("bfd: multipoint bit set")
	ErrMyDiscr     = errors.New("bfd: my discriminator is zero")
	ErrYourDiscr   = errors.New("bfd: your discriminator is zero in state other than Down or AdminDown")
	ErrAuth        = errors.New("bfd: authentication not supported")
	ErrAuthSection = errors.New("bfd: malformed authentication section")
	ErrInterval    = errors.New("bfd: interval out of range")
)

const (
	flagP = 0x20
	flagF = 0x10
	flagC = 0x08
	flagA = 0x04
	flagD = 0x02
	flagM = 0x01
)

// AllocBudget is the most Parse allocates for any input, in bytes, once
// fmt's buffers are warm: nothing for a packet it accepts, one wrapped
// error (under 100 bytes) otherwise. The fuzz target checks it.
const AllocBudget = 256

// Parse decodes a control packet from b (the UDP payload) and applies the
// reception checks of RFC 5880 6.8.6 that need no session state. A packet
// with the A bit is rejected with ErrAuth after its authentication section
// has been checked for consistency, since cgwd does not use authentication.
func Parse(b []byte) (Packet, error) {
	var p Packet
	if len(b) < HeaderLen {
		return p, fmt.Errorf("%w: %d bytes, need %d", ErrShort, len(b), HeaderLen)
	}
	if v := b[0] >> 5; v != Version {
		return p, fmt.Errorf("%w: %d", ErrVersion, v)
	}
	p.Diag = Diag(b[0] & 0x1f)
	p.State = State(b[1] >> 6)
	f := b[1]
	p.Poll, p.Final = f&flagP != 0, f&flagF != 0
	p.ControlPlaneIndependent, p.AuthPresent = f&flagC != 0, f&flagA != 0
	p.Demand, p.Multipoint = f&flagD != 0, f&flagM != 0
	p.DetectMult = b[2]
	length := int(b[3])
	min := HeaderLen
	if p.AuthPresent {
		min = HeaderLen + 2
	}
	if length < min {
		return p, fmt.Errorf("%w: length %d, minimum %d", ErrLength, length, min)
	}
	if length > len(b) {
		return p, fmt.Errorf("%w: length %d exceeds payload of %d bytes", ErrLength, length, len(b))
	}
	if p.DetectMult == 0 {
		return p, ErrDetectMult
	}
	if p.Multipoint {
		return p, ErrMultipoint
	}
	p.MyDiscr = binary.BigEndian.Uint32(b[4:])
	p.YourDiscr = binary.BigEndian.Uint32(b[8:])
	p.DesiredMinTx = time.Duration(binary.BigEndian.Uint32(b[12:])) * time.Microsecond
	p.RequiredMinRx = time.Duration(binary.BigEndian.Uint32(b[16:])) * time.Microsecond
	p.RequiredMinEchoRx = time.Duration(binary.BigEndian.Uint32(b[20:])) * time.Microsecond
	if p.MyDiscr == 0 {
		return p, ErrMyDiscr
	}
	if p.YourDiscr == 0 && p.State != StateDown && p.State != StateAdminDown {
		return p, fmt.Errorf("%w (state %s)", ErrYourDiscr, p.State)
	}
	if p.AuthPresent {
		// Auth Type (1 byte), Auth Len (1 byte) covering the whole section.
		authType, authLen := b[HeaderLen], int(b[HeaderLen+1])
		if authLen < 2 || HeaderLen+authLen != length {
			return p, fmt.Errorf("%w: auth type %d, auth len %d, packet length %d", ErrAuthSection, authType, authLen, length)
		}
		return p, fmt.Errorf("%w: auth type %d", ErrAuth, authType)
	}
	return p, nil
}

// MaxInterval is the largest interval the 32-bit microsecond fields carry.
const MaxInterval = time.Duration(1<<32-1) * time.Microsecond

// Append encodes p (without authentication) and appends it to b. Flags A and
// M are never set; negative or too large intervals are an error.
func (p *Packet) Append(b []byte) ([]byte, error) {
	for _, iv := range []struct {
		name string
		d    time.Duration
	}{{"desired min tx", p.DesiredMinTx}, {"required min rx", p.RequiredMinRx}, {"required min echo rx", p.RequiredMinEchoRx}} {
		if iv.d < 0 || iv.d > MaxInterval {
			return b, fmt.Errorf("%w: %s %v", ErrInterval, iv.name, iv.d)
		}
	}
	if p.Diag > 0x1f || p.State > 3 {
		return b, fmt.Errorf("bfd: diag %d or state %d out of range", p.Diag, p.State)
	}
	var f byte
	if p.Poll {
		f |= flagP
	}
	if p.Final {
		f |= flagF
	}
	if p.ControlPlaneIndependent {
		f |= flagC
	}
	if p.Demand {
		f |= flagD
	}
	b = append(b, Version<<5|byte(p.Diag), byte(p.State)<<6|f, p.DetectMult, HeaderLen)
	b = binary.BigEndian.AppendUint32(b, p.MyDiscr)
	b = binary.BigEndian.AppendUint32(b, p.YourDiscr)
	b = binary.BigEndian.AppendUint32(b, uint32(p.DesiredMinTx/time.Microsecond))
	b = binary.BigEndian.AppendUint32(b, uint32(p.RequiredMinRx/time.Microsecond))
	b = binary.BigEndian.AppendUint32(b, uint32(p.RequiredMinEchoRx/time.Microsecond))
	return b, nil
}

// String summarises p for logs.
func (p Packet) String() string {
	fl := ""
	for _, x := range []struct {
		on bool
		c  string
	}{{p.Poll, "P"}, {p.Final, "F"}, {p.ControlPlaneIndependent, "C"}, {p.AuthPresent, "A"}, {p.Demand, "D"}, {p.Multipoint, "M"}} {
		if x.on {
			fl += x.c
		}
	}
	return fmt.Sprintf("state=%s diag=%q flags=%s mult=%d my=%#x your=%#x tx=%v rx=%v echo=%v",
		p.State, p.Diag, fl, p.DetectMult, p.MyDiscr, p.YourDiscr, p.DesiredMinTx, p.RequiredMinRx, p.RequiredMinEchoRx)
}
