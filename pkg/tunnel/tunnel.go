// Package tunnel defines what every tunnel kind (WireGuard, IPsec) offers to
// the rest of cgwd. BGP, failover, metrics and status see only this
// interface, never a kind's internals.
package tunnel

import (
	"context"
	"net/netip"
	"time"
)

// Kind names a tunnel implementation.
type Kind string

// Tunnel kinds.
const (
	KindWireGuard Kind = "wireguard"
	KindIPsec     Kind = "ipsec"
)

// State is a tunnel's data-path state.
type State string

// Tunnel states.
const (
	// StateDown: the netdev does not exist or the tunnel was closed.
	StateDown State = "down"
	// StateConnecting: the netdev exists, but no valid session with the peer.
	StateConnecting State = "connecting"
	// StateUp: a session with the peer is established and fresh.
	StateUp State = "up"
)

// Tunnel is one route-based tunnel: a TUN netdev holding the inside address,
// whose packets are carried, encrypted, to one AWS endpoint.
type Tunnel interface {
	// Name is the netdev name (e.g. cgw-t1).
	Name() string
	// Kind is the implementation's kind.
	Kind() Kind
	// Start creates the netdev, assigns the inside address and starts the
	// session. It returns once the netdev is up; the session forms in the
	// background until ctx ends or Close is called, then the tunnel tells
	// its peer if its protocol can and removes its netdev and sockets. On
	// error it leaves nothing behind. This is the lifecycle shape of every
	// long-running part of cgwd (pkg/lifecycle).
	Start(ctx context.Context) error
	// Done is closed once a started tunnel has stopped.
	Done() <-chan struct{}
	// Close stops the tunnel, waits until it has stopped and wipes its
	// keys: it cannot be started again. It may be called on a tunnel that
	// was never started.
	Close() error
	// Status is a snapshot of the tunnel's state and counters.
	Status() Status
}

// Status is a point-in-time view of a tunnel. It never holds secrets.
type Status struct {
	Name          string       `json:"name"`
	Kind          Kind         `json:"kind"`
	State         State        `json:"state"`
	LocalOutside  netip.Addr   `json:"local_outside"`
	RemoteOutside netip.Addr   `json:"remote_outside"`
	Inside        netip.Prefix `json:"inside"`
	PeerInside    netip.Addr   `json:"peer_inside"`
	// LastHandshake is the time of the last completed handshake; zero if none.
	LastHandshake time.Time `json:"last_handshake"`
	RxBytes       uint64    `json:"rx_bytes"`
	TxBytes       uint64    `json:"tx_bytes"`
	// IPsec holds the IKE and Child SAs of an ipsec tunnel; nil for other kinds.
	IPsec *IPsecStatus `json:"ipsec,omitempty"`
}

// IPsecStatus is an ipsec tunnel's SAs and ESP drop counters; never keys.
type IPsecStatus struct {
	IKEState         string            `json:"ike_state"`             // connecting, established
	IKEVersion       string            `json:"ike_version,omitempty"` // ikev2 or ikev1: the one in use
	IKESPIs          string            `json:"ike_spis,omitempty"`
	IKESuite         string            `json:"ike_suite,omitempty"`
	IKEEstablished   time.Time         `json:"ike_established,omitzero"`
	IKERekeyDue      time.Time         `json:"ike_rekey_due,omitzero"`
	ChildSPIs        string            `json:"child_spis,omitempty"` // in/out
	ChildSuite       string            `json:"child_suite,omitempty"`
	ChildEstablished time.Time         `json:"child_established,omitzero"`
	ChildRekeyDue    time.Time         `json:"child_rekey_due,omitzero"`
	ChildRekeys      uint64            `json:"child_rekeys"`
	IKERekeys        uint64            `json:"ike_rekeys"`
	EstablishSeconds float64           `json:"establish_seconds,omitempty"`
	ESPDropped       map[string]uint64 `json:"esp_dropped,omitempty"` // by reason
	// IKEDropped counts IKE messages dropped before they changed any state, by reason.
	IKEDropped map[string]uint64 `json:"ike_dropped,omitempty"`
	LastError  string            `json:"last_error,omitempty"`
	// IKEVersionSwitch is an ike_version any tunnel's last switch between
	// the versions and why; IKEVersionSwitches counts them.
	IKEVersionSwitch   string `json:"ike_version_switch,omitempty"`
	IKEVersionSwitches uint64 `json:"ike_version_switches,omitempty"`
	// IKEFragments counts RFC 7383 fragments: sent and received (verified)
	// fragments, and the messages fragmented and reassembled.
	IKEFragments map[string]uint64 `json:"ike_fragments,omitempty"`
}

// Event reports a tunnel's change of state.
type Event struct {
	Tunnel string
	From   State
	To     State
	At     time.Time
}

// Watch polls t's status every interval and calls fn on each change of
// state, starting from StateDown. It returns when ctx ends.
func Watch(ctx context.Context, t Tunnel, interval time.Duration, fn func(Event)) {
	last := StateDown
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if s := t.Status().State; s != last {
			fn(Event{Tunnel: t.Name(), From: last, To: s, At: time.Now()})
			last = s
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
