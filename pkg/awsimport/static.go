package awsimport

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
)

// A static-routing connection (AWS's StaticRoutesOnly) has no BGP in its
// tunnels. The inputs say so in different ways; the routes AWS lists for it
// are the customer network's CIDRs (CreateVpnConnectionRoute), which AWS
// routes into the tunnels: cgwd's prefixes. The VPC's CIDRs, which cgwd
// routes into the tunnels (static_routes), are in no input.

// maxRoutes bounds the routes read from one input; AWS allows 100 static
// routes per connection.
const maxRoutes = 1000

// noBGP reports whether the XML's vpn_connection_attributes mark a static
// connection ("NoBGPVPNConnection"; absent for BGP connections).
func noBGP(attrs string) bool { return strings.Contains(attrs, "NoBGP") }

// cliConn is one connection of AWS CLI JSON, as far as cgwd reads it.
type cliConn struct {
	ID      string `json:"VpnConnectionId"`
	XML     string `json:"CustomerGatewayConfiguration"`
	Options *struct {
		StaticRoutesOnly *bool              `json:"StaticRoutesOnly"`
		TunnelOptions    []cliTunnelOptions `json:"TunnelOptions"`
	} `json:"Options"`
	Routes []struct {
		CIDR  string `json:"DestinationCidrBlock"`
		State string `json:"State"`
	} `json:"Routes"`
	VgwTelemetry []cliTelemetry `json:"VgwTelemetry"`
}

// apply adds what the JSON says beside the XML to the connection the XML
// made (c, err: ParseXML's results).
func (e *cliConn) apply(c *Connection, err error) (*Connection, error) {
	if err != nil {
		return nil, err
	}
	if o := e.Options; o != nil && o.StaticRoutesOnly != nil {
		c.StaticRoutesOnly = c.StaticRoutesOnly || *o.StaticRoutesOnly
	}
	if o := e.Options; o != nil {
		if err := applyOptions(c, o.TunnelOptions); err != nil {
			return nil, err
		}
	}
	if err := applyTelemetry(c, "VgwTelemetry", "CertificateArn", e.VgwTelemetry); err != nil {
		return nil, err
	}
	var cidrs []string
	for _, r := range e.Routes {
		if r.State != "deleting" && r.State != "deleted" {
			cidrs = append(cidrs, r.CIDR)
		}
	}
	if c.Routes, err = routePrefixes("Routes", "DestinationCidrBlock", cidrs); err != nil {
		return nil, err
	}
	return c, nil
}

// tfStatic reads Terraform's static_routes_only and routes.
func tfStatic(m map[string]json.RawMessage, c *Connection) error {
	if raw, ok := m["static_routes_only"]; ok {
		var b bool
		if err := json.Unmarshal(tfValue(raw), &b); err != nil {
			s, serr := tfString(m, "static_routes_only")
			if serr != nil || (s != "true" && s != "false" && s != "") {
				return fmt.Errorf("static_routes_only: want true or false")
			}
			b = s == "true"
		}
		c.StaticRoutesOnly = b
	}
	var rs []struct {
		CIDR  string `json:"destination_cidr_block"`
		State string `json:"state"`
	}
	if ok, err := tfList(m, "routes", &rs); !ok {
		return err
	}
	var cidrs []string
	for _, r := range rs {
		if r.State != "deleting" && r.State != "deleted" {
			cidrs = append(cidrs, r.CIDR)
		}
	}
	var err error
	c.Routes, err = routePrefixes("routes", "destination_cidr_block", cidrs)
	return err
}

// tfList decodes the list m[key] (plain or wrapped as a Terraform output)
// into dst; ok is false when it is absent or null, or on an error.
func tfList(m map[string]json.RawMessage, key string, dst any) (ok bool, err error) {
	raw, ok := m[key]
	if !ok {
		return false, nil
	}
	raw = tfValue(raw)
	if string(raw) == "null" {
		return false, nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return false, fmt.Errorf("%s: %w", key, jsonError(err))
	}
	return true, nil
}

// tfValue unwraps a Terraform output {"value": v, ...} to v.
func tfValue(raw json.RawMessage) json.RawMessage {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '{' {
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) == nil {
			if v, ok := unwrap(obj); ok {
				return bytes.TrimSpace(v)
			}
		}
	}
	return raw
}

// routePrefixes checks a connection's route CIDRs (IPv4, no host bits, at
// most maxRoutes) and drops repeats; errors name the list and the entry.
func routePrefixes(list, field string, cidrs []string) ([]netip.Prefix, error) {
	if len(cidrs) > maxRoutes {
		return nil, fmt.Errorf("%s: %d routes; AWS allows 100 static routes per VPN connection", list, len(cidrs))
	}
	var out []netip.Prefix
	seen := map[netip.Prefix]bool{}
	for i, s := range cidrs {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil || !p.Addr().Is4() || p != p.Masked() {
			return nil, fmt.Errorf("%s[%d].%s: %q is not an IPv4 CIDR", list, i, field, safe(s))
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}

// renderPrefixes writes the on-prem prefixes: the flags', else a static
// connection's routes in AWS (the customer network's CIDRs), else an empty
// list that check-config names.
func renderPrefixes(w func(string, ...any), c *Connection, o Options) {
	ps, from := o.Prefixes, ""
	if len(ps) == 0 && len(c.Routes) > 0 {
		ps, from = c.Routes, " # the connection's static routes in AWS: the on-prem CIDRs AWS routes into the tunnels"
	}
	if len(ps) == 0 {
		w("prefixes: [] # the on-prem prefixes to advertise: pass --prefix CIDR (repeatable)\n")
		return
	}
	w("prefixes:%s\n", from)
	for _, p := range ps {
		w("  - %s\n", p.Masked())
	}
	if from == "" && len(c.Routes) > 0 {
		w("# the connection's static routes in AWS (routed into the tunnels): %s\n", joinPrefixes(c.Routes))
	}
}

// renderStatic writes a static connection's routing and its VPC CIDRs,
// which come only from the flags: no AWS input lists them.
func renderStatic(w func(string, ...any), c *Connection, o Options) {
	if !c.StaticRoutesOnly {
		return
	}
	w("    routing: static # AWS: static routing (StaticRoutesOnly), no BGP in the tunnels\n")
	if len(o.StaticRoutes) == 0 {
		w("    static_routes: [] # the VPC CIDRs to route over the tunnels, not in AWS's description of the connection: pass --static-route CIDR (repeatable)\n")
		return
	}
	w("    static_routes: [%s] # the VPC CIDRs\n", joinPrefixes(o.StaticRoutes))
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.Masked().String()
	}
	return strings.Join(s, ", ")
}
