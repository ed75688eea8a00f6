package awsimport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// ParseTerraform parses Terraform outputs of an aws_vpn_connection:
// tunnel1_address, tunnel1_cgw_inside_address, tunnel1_vgw_inside_address,
// tunnel1_preshared_key, tunnel1_bgp_asn, tunnel1_bgp_holdtime (and
// tunnel1_inside_cidr if present), the same for tunnel2, and optionally id,
// customer_gateway_id, vpn_gateway_id, transit_gateway_id.
//
// It accepts a JSON object of plain values, the shape of `terraform output
// -json` (every value wrapped as {"value": ...}), and either of those holding
// the whole connection under one key (an output of the resource itself).
// Terraform does not know the customer gateway's own outside address or ASN;
// they come from the caller (Options).
func ParseTerraform(data []byte) (*Connection, error) {
	if len(data) > MaxInputSize {
		return nil, fmt.Errorf("input is %d bytes; more than the %d Terraform outputs can plausibly be", len(data), MaxInputSize)
	}
	m, err := tfObject(data)
	if err != nil {
		return nil, fmt.Errorf("terraform JSON: %w", err)
	}
	if _, ok := m["tunnel1_address"]; !ok {
		// Look for the connection one level down, e.g. output "vpn" = the resource.
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if inner, err := tfObject(m[k]); err == nil {
				if _, ok := inner["tunnel1_address"]; ok {
					m = inner
					break
				}
			}
		}
	}
	if _, ok := m["tunnel1_address"]; !ok {
		return nil, fmt.Errorf("terraform JSON: no tunnel1_address output; want the outputs of an aws_vpn_connection (tunnel1_address, tunnel1_cgw_inside_address, ...)")
	}
	c := &Connection{Format: FormatTerraform}
	for _, f := range []struct {
		dst *string
		key string
	}{{&c.ID, "id"}, {&c.CustomerGatewayID, "customer_gateway_id"}, {&c.GatewayID, "vpn_gateway_id"}, {&c.Type, "type"}} {
		if *f.dst, err = tfString(m, f.key); err != nil {
			return nil, err
		}
	}
	if c.GatewayID == "" {
		if c.GatewayID, err = tfString(m, "transit_gateway_id"); err != nil {
			return nil, err
		}
	}
	for i := range c.Tunnels {
		if c.Tunnels[i], err = tfTunnel(m, fmt.Sprintf("tunnel%d", i+1)); err != nil {
			return nil, err
		}
	}
	if err := c.sameAuth([2]string{"tunnel1", "tunnel2"}, [2]string{"tunnel1_preshared_key", "tunnel2_preshared_key"}); err != nil {
		return nil, err
	}
	if err := tfStatic(m, c); err != nil {
		return nil, err
	}
	if err := tfTelemetry(m, c); err != nil {
		return nil, err
	}
	if err := c.finish(); err != nil {
		return nil, err
	}
	return c, nil
}

func tfTunnel(m map[string]json.RawMessage, where string) (Tunnel, error) {
	var t Tunnel
	get := func(key string) (string, error) { return tfString(m, where+"_"+key) }
	s, err := get("address")
	if err != nil {
		return t, err
	}
	if s == "" {
		return t, fieldErr(where, where+"_address", "is missing")
	}
	if t.AWSOutside, err = ipv4(where, where+"_address", s); err != nil {
		return t, err
	}
	cgw, err := get("cgw_inside_address")
	if err != nil {
		return t, err
	}
	vgw, err := get("vgw_inside_address")
	if err != nil {
		return t, err
	}
	if cgw == "" || vgw == "" {
		return t, fieldErr(where, where+"_cgw_inside_address/"+where+"_vgw_inside_address", "both are required")
	}
	bits := 0
	if cidr, err := get("inside_cidr"); err != nil {
		return t, err
	} else if cidr != "" {
		_, b, ok := strings.Cut(cidr, "/")
		if !ok {
			return t, fieldErr(where, where+"_inside_cidr", "%q is not a CIDR", cidr)
		}
		if bits, err = intField(where, where+"_inside_cidr", b, 0, 32); err != nil {
			return t, err
		}
	}
	if t.Inside, t.CGWInside, t.AWSInside, err = insidePair(where, cgw, vgw, bits); err != nil {
		return t, err
	}
	if s, err = get("bgp_asn"); err != nil {
		return t, err
	} else if s != "" {
		if t.AWSASN, err = asnField(where, where+"_bgp_asn", s); err != nil {
			return t, err
		}
	}
	if s, err = get("bgp_holdtime"); err != nil {
		return t, err
	}
	if t.HoldTime, err = optInt(where, where+"_bgp_holdtime", s, 3, 65535); err != nil {
		return t, err
	}
	psk, err := get("preshared_key")
	if err != nil {
		return t, err
	}
	if err := tunnelAuth(&t, where, where+"_preshared_key", psk); err != nil {
		return t, err
	}
	return t, nil
}

// tfObject decodes a JSON object, unwrapping {"value": ...} if that is its shape.
func tfObject(data []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil {
		return nil, jsonError(err)
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after the JSON object")
	}
	if m == nil {
		return nil, fmt.Errorf("not a JSON object")
	}
	if v, ok := unwrap(m); ok {
		return tfObject(v)
	}
	return m, nil
}

// unwrap returns the value of a terraform output object {"value": v, ...}.
func unwrap(m map[string]json.RawMessage) (json.RawMessage, bool) {
	v, ok := m["value"]
	if !ok {
		return nil, false
	}
	for k := range m {
		switch k {
		case "value", "type", "sensitive":
		default:
			return nil, false
		}
	}
	return v, true
}

// tfString returns m[key] as a string: a JSON string, a number, or the same
// wrapped as {"value": ...}. Absent or null is "". Errors never show the value.
func tfString(m map[string]json.RawMessage, key string) (string, error) {
	raw, ok := m[key]
	if !ok {
		return "", nil
	}
	for range 2 {
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 || raw[0] != '{' {
			break
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return "", fmt.Errorf("%s: %w", key, jsonError(err))
		}
		v, ok := unwrap(obj)
		if !ok {
			return "", fmt.Errorf("%s: is an object, want a string or number (or {\"value\": ...})", key)
		}
		raw = v
	}
	if string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return strings.TrimSpace(s), nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String(), nil
	}
	return "", fmt.Errorf("%s: want a string or number", key)
}

// jsonError keeps a JSON error's position but not any quoted input.
func jsonError(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("JSON ends early (truncated?)")
	}
	switch e := err.(type) {
	case *json.SyntaxError:
		return fmt.Errorf("JSON syntax error at byte %d", e.Offset)
	case *json.UnmarshalTypeError:
		return fmt.Errorf("JSON has a %s where an object was expected (byte %d)", e.Value, e.Offset)
	}
	return err
}
