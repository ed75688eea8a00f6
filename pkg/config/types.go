package config

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cgwd/cgwd/pkg/proposal"
)

// The config's typed values are parsed once, when the file is decoded, so
// that nothing downstream parses or can panic on a string. A value that does
// not parse still decodes, keeping its text: Validate then refuses it,
// quoting the text and naming the field, with every other problem at once.

// TunnelKind is how a tunnel is built.
type TunnelKind string

// Tunnel kinds.
const (
	KindWireGuard TunnelKind = "wireguard"
	KindIPsec     TunnelKind = "ipsec"
)

// Gateway is the kind of the AWS side of a VPN connection or DX link.
type Gateway string

// Gateway kinds on the AWS side.
const (
	GatewayVGW Gateway = "vgw" // virtual private gateway
	GatewayTGW Gateway = "tgw" // transit gateway
)

// Mode is how a VPN connection's traffic uses its tunnels.
type Mode string

// Tunnel modes of a VPN connection.
const (
	ModeActiveStandby Mode = "active-standby"
	ModeECMP          Mode = "ecmp"
)

// LogLevel is the least severe level logged.
type LogLevel string

// Log levels.
const (
	LogDebug LogLevel = "debug"
	LogInfo  LogLevel = "info"
	LogWarn  LogLevel = "warn"
	LogError LogLevel = "error"
)

// Slog is the level for log/slog; info for a level Validate refuses.
func (l LogLevel) Slog() slog.Level {
	switch l {
	case LogDebug:
		return slog.LevelDebug
	case LogWarn:
		return slog.LevelWarn
	case LogError:
		return slog.LevelError
	}
	return slog.LevelInfo
}

// LogFormat is how log lines are written.
type LogFormat string

// Log formats.
const (
	LogText LogFormat = "text"
	LogJSON LogFormat = "json"
)

// scalar decodes n as a string, so that a value of the wrong shape (a list
// or a mapping) fails as it would for a string field.
func scalar(n *yaml.Node) (string, error) {
	var s string
	err := n.Decode(&s)
	return s, err
}

// Addr is an IP address field (Validate requires IPv4).
type Addr struct {
	addr netip.Addr
	text string
}

// NewAddr is the field the decoder makes of the text s.
func NewAddr(s string) Addr {
	a, _ := netip.ParseAddr(s)
	return Addr{a, s}
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (a *Addr) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalar(n)
	*a = NewAddr(s)
	return err
}

// Addr is the address; the zero Addr when the field is empty or invalid.
func (a Addr) Addr() netip.Addr { return a.addr }

// IsSet reports whether the file gave the field.
func (a Addr) IsSet() bool { return a.text != "" }

// String is the text the file gave.
func (a Addr) String() string { return a.text }

// is4 reports whether the field is an IPv4 address.
func (a Addr) is4() bool { return a.addr.Is4() }

// Prefix is an IP prefix field (Validate requires IPv4); for an interface
// address (e.g. 169.254.255.2/30) the host bits are kept.
type Prefix struct {
	prefix netip.Prefix
	text   string
}

// NewPrefix is the field the decoder makes of the text s.
func NewPrefix(s string) Prefix {
	p, _ := netip.ParsePrefix(s)
	return Prefix{p, s}
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (p *Prefix) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalar(n)
	*p = NewPrefix(s)
	return err
}

// Prefix is the prefix; the zero Prefix when the field is empty or invalid.
func (p Prefix) Prefix() netip.Prefix { return p.prefix }

// IsSet reports whether the file gave the field.
func (p Prefix) IsSet() bool { return p.text != "" }

// String is the text the file gave.
func (p Prefix) String() string { return p.text }

// is4 reports whether the field is an IPv4 prefix.
func (p Prefix) is4() bool { return p.prefix.IsValid() && p.prefix.Addr().Is4() }

// Prefixes returns the fields' prefixes.
func Prefixes(ps []Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.prefix)
	}
	return out
}

// Community is a standard BGP community field, "ASN:value".
type Community struct {
	value uint32
	err   string // why the text is not a community; "" when it is
	text  string
}

// NewCommunity is the field the decoder makes of the text s.
func NewCommunity(s string) Community {
	v, err := ParseCommunity(s)
	c := Community{value: v, text: s}
	if err != nil {
		c.err = err.Error()
	}
	return c
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (c *Community) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalar(n)
	*c = NewCommunity(s)
	return err
}

// Value is the community's 32-bit form.
func (c Community) Value() uint32 { return c.value }

// String is the text the file gave.
func (c Community) String() string { return c.text }

// ParseCommunity parses a standard community "ASN:value" into its 32-bit form.
func ParseCommunity(s string) (uint32, error) {
	a, b, ok := strings.Cut(s, ":")
	hi, err1 := strconv.ParseUint(a, 10, 16)
	lo, err2 := strconv.ParseUint(b, 10, 16)
	if !ok || err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%q is not a community (e.g. 7224:7100)", s)
	}
	return uint32(hi)<<16 | uint32(lo), nil
}

// Rate is a packet rate field, "N/second", "N/minute" or "N/hour".
type Rate struct {
	// N packets pass per Per.
	N    uint64
	Per  time.Duration
	err  string // why the text is not a rate; "" when it is
	text string
}

// NewRate is the field the decoder makes of the text s.
func NewRate(s string) Rate {
	n, per, err := ParseRate(s)
	r := Rate{N: n, Per: per, text: s}
	if err != nil {
		r.err = err.Error()
	}
	return r
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (r *Rate) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalar(n)
	*r = NewRate(s)
	return err
}

// String is the text the file gave.
func (r Rate) String() string { return r.text }

// ParseRate parses a packet rate "N/second", "N/minute" or "N/hour" (N from
// 1 to 1000000) into a count and its period.
func ParseRate(s string) (n uint64, per time.Duration, err error) {
	num, unit, ok := strings.Cut(s, "/")
	n, perr := strconv.ParseUint(num, 10, 64)
	units := map[string]time.Duration{"second": time.Second, "minute": time.Minute, "hour": time.Hour}
	per, uok := units[unit]
	if !ok || perr != nil || !uok || n < 1 || n > 1_000_000 {
		return 0, 0, fmt.Errorf("%q is not a rate like 10/second (1-1000000 per second, minute or hour)", s)
	}
	return n, per, nil
}

// IKEProposal is an IKE SA proposal field in strongSwan notation, e.g.
// aes256gcm16-prfsha384-ecp384.
type IKEProposal struct{ parsedProposal }

// ESPProposal is a Child SA (ESP) proposal field in strongSwan notation,
// e.g. aes256gcm16-ecp384; a DH group means PFS on rekey.
type ESPProposal struct{ parsedProposal }

type parsedProposal struct {
	p    proposal.Proposal
	err  string // why the text is not a proposal; "" when it is
	text string
}

func parseProposal(s string, ike bool) parsedProposal {
	p, err := proposal.Parse(s, ike)
	pp := parsedProposal{p: p, text: s}
	if err != nil {
		pp.err = err.Error()
	}
	return pp
}

// NewIKEProposal is the field the decoder makes of the text s.
func NewIKEProposal(s string) IKEProposal { return IKEProposal{parseProposal(s, true)} }

// NewESPProposal is the field the decoder makes of the text s.
func NewESPProposal(s string) ESPProposal { return ESPProposal{parseProposal(s, false)} }

// UnmarshalYAML implements yaml.Unmarshaler.
func (p *IKEProposal) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalar(n)
	*p = NewIKEProposal(s)
	return err
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (p *ESPProposal) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalar(n)
	*p = NewESPProposal(s)
	return err
}

// Proposal is a copy of the parsed proposal, which its user may change.
func (p parsedProposal) Proposal() proposal.Proposal {
	c := p.p
	c.SPI = slices.Clone(c.SPI)
	c.Transforms = slices.Clone(c.Transforms)
	return c
}

// String is the text the file gave.
func (p parsedProposal) String() string { return p.text }
