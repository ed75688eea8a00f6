package config

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ASN is an autonomous system number. YAML may write it asplain (65000,
// 4200000000) or asdot (RFC 5396: "1.10" is 1*65536+10).
type ASN uint32

// ParseASN parses an asplain or asdot ASN.
func ParseASN(s string) (ASN, error) {
	hi, lo, dot := strings.Cut(s, ".")
	if !dot {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("%q is not an ASN (0-4294967295, or asdot X.Y)", s)
		}
		return ASN(n), nil
	}
	h, err1 := strconv.ParseUint(hi, 10, 16)
	l, err2 := strconv.ParseUint(lo, 10, 16)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%q is not an ASN (asdot X.Y needs X and Y in 0-65535)", s)
	}
	return ASN(h<<16 | l), nil
}

// UnmarshalYAML reads an asplain or asdot ASN from the scalar's text, so
// that 1.10 is not read as the float 1.1.
func (a *ASN) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseASN(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("%q is not an ASN", n.Value)
	}
	*a = v
	return nil
}
