package config

import (
	"fmt"
	"io"
	"time"

	"gopkg.in/yaml.v3"
)

// Effective returns a copy of c with every default the daemon uses filled
// in, including those Parse leaves to the components (IPsec lifetimes,
// proposals and identities, the derived router ID, the pprof listener).
// Secrets stay what the file holds: paths, never their contents.
func (c *Config) Effective() *Config {
	e := *c
	if e.FailClosed == nil {
		on := true
		e.FailClosed = &on
	}
	if !e.Pprof.On() {
		e.Pprof.Listen = "off"
	}
	if !e.RouterID.IsSet() {
		e.RouterID = derivedRouterID(c)
	}
	e.VPN = append([]VPN(nil), c.VPN...)
	for i := range e.VPN {
		v := &e.VPN[i]
		v.Tunnels = append([]Tunnel(nil), v.Tunnels...)
		for j := range v.Tunnels {
			t := &v.Tunnels[j]
			if t.IPsec != nil {
				ip := t.IPsec.WithDefaults()
				if !ip.LocalID.IsSet() {
					ip.LocalID = t.Outside.Local
				}
				if !ip.RemoteID.IsSet() {
					ip.RemoteID = t.Outside.Remote
				}
				if ip.CookieThreshold == 0 {
					ip.CookieThreshold = DefaultCookieThreshold
				}
				if ip.HalfOpenLimit <= 0 {
					ip.HalfOpenLimit = DefaultHalfOpenLimit
				}
				t.IPsec = &ip
			}
			if t.WireGuard != nil {
				wg := *t.WireGuard
				t.WireGuard = &wg
			}
		}
	}
	return &e
}

// Defaults the IKE engine applies when the config leaves them at 0.
const (
	DefaultCookieThreshold = 10
	DefaultHalfOpenLimit   = 16
)

// derivedRouterID is the router ID the daemon derives when none is set: the
// local address of the first BGP session (DX links first, then tunnels).
func derivedRouterID(c *Config) Addr {
	for _, d := range c.DirectConnect {
		if a := d.Local.Prefix().Addr(); a.IsValid() {
			return NewAddr(a.String())
		}
	}
	for i := range c.VPN {
		for j := range c.VPN[i].Tunnels {
			t := &c.VPN[i].Tunnels[j]
			if t.Inside.Prefix().IsValid() {
				_, local := t.InsideAddrs()
				return NewAddr(local.Addr().String())
			}
		}
	}
	return NewAddr("127.0.0.1")
}

// Dump writes c's effective config (see Effective) as YAML that Parse reads
// back to the same config. Nil sections (a tunnel's unused wireguard or
// ipsec block) are left out.
func (c *Config) Dump(w io.Writer) error {
	var n yaml.Node
	if err := n.Encode(c.Effective()); err != nil {
		return fmt.Errorf("config dump: %w", err)
	}
	dropNulls(&n)
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return fmt.Errorf("config dump: %w", err)
	}
	return enc.Close()
}

// dropNulls removes every mapping entry whose value is null.
func dropNulls(n *yaml.Node) {
	if n.Kind == yaml.MappingNode {
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			if v := n.Content[i+1]; v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				continue
			}
			kept = append(kept, n.Content[i], n.Content[i+1])
		}
		n.Content = kept
	}
	for _, c := range n.Content {
		dropNulls(c)
	}
}

// MarshalYAML writes the duration as Go writes it, e.g. 1m30s.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// MarshalYAML writes the ASN as a plain number.
func (a ASN) MarshalYAML() (any, error) { return uint32(a), nil }

// MarshalYAML writes the text the file gave.
func (a Addr) MarshalYAML() (any, error) { return a.text, nil }

// MarshalYAML writes the text the file gave.
func (p Prefix) MarshalYAML() (any, error) { return p.text, nil }

// MarshalYAML writes the text the file gave.
func (c Community) MarshalYAML() (any, error) { return c.text, nil }

// MarshalYAML writes the text the file gave.
func (r Rate) MarshalYAML() (any, error) { return r.text, nil }

// MarshalYAML writes the proposal's text.
func (p parsedProposal) MarshalYAML() (any, error) { return p.text, nil }
