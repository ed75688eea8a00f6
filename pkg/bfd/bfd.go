// Package bfd implements Bidirectional Forwarding Detection in asynchronous
// mode (RFC 5880) for single-hop IPv4 sessions (RFC 5881): a clock-free
// session state machine (Machine) and a UDP runner (Session) that reports
// state changes. The control packet codec is package bfd/packet; its
// states, diagnostics and packet type are re-exported here.
package bfd

import "github.com/cgwd/cgwd/pkg/bfd/packet"

// State is a BFD session state (RFC 5880 4.1).
type State = packet.State

// Session states.
const (
	StateAdminDown = packet.StateAdminDown
	StateDown      = packet.StateDown
	StateInit      = packet.StateInit
	StateUp        = packet.StateUp
)

// Diag is a BFD diagnostic code (RFC 5880 4.1): why the session last left Up.
type Diag = packet.Diag

// Diagnostic codes.
const (
	DiagNone                  = packet.DiagNone
	DiagControlDetectExpired  = packet.DiagControlDetectExpired
	DiagEchoFailed            = packet.DiagEchoFailed
	DiagNeighborDown          = packet.DiagNeighborDown
	DiagForwardingReset       = packet.DiagForwardingReset
	DiagPathDown              = packet.DiagPathDown
	DiagConcatPathDown        = packet.DiagConcatPathDown
	DiagAdminDown             = packet.DiagAdminDown
	DiagReverseConcatPathDown = packet.DiagReverseConcatPathDown
)

// Packet is a decoded BFD control packet (see package bfd/packet).
type Packet = packet.Packet
