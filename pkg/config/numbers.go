package config

import (
	"errors"
	"fmt"
	"reflect"
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
		return fmt.Errorf("line %d: %q is not an ASN", n.Line, n.Value)
	}
	*a = v
	return nil
}

var (
	asnType         = reflect.TypeOf(ASN(0))
	unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
)

// inspect walks the YAML document n alongside the Go type t it decodes
// into. It records in given the path of every key whose value is not null,
// so that defaults replace only what was left out, and returns a problem for
// every ASN that does not parse and every fraction written for an integer
// field (the decoder would truncate it silently).
func inspect(n *yaml.Node, t reflect.Type, path string, given map[string]bool) []error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var errs []error
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			errs = append(errs, inspect(c, t, path, given)...)
		}
	case yaml.AliasNode:
		if n.Alias != nil {
			errs = append(errs, inspect(n.Alias, t, path, given)...)
		}
	case yaml.MappingNode:
		if t.Kind() != reflect.Struct {
			break
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := yamlField(t, k.Value)
			if !ok {
				continue // the strict decoder names unknown keys
			}
			p := k.Value
			if path != "" {
				p = path + "." + p
			}
			if v.Tag != "!!null" {
				given[p] = true
			}
			errs = append(errs, inspect(v, f.Type, p, given)...)
		}
	case yaml.SequenceNode:
		if t.Kind() != reflect.Slice {
			break
		}
		for i, c := range n.Content {
			errs = append(errs, inspect(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), given)...)
		}
	case yaml.ScalarNode:
		switch {
		case n.Tag == "!!null":
		case t == asnType:
			if _, err := ParseASN(n.Value); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", path, err))
			}
		case reflect.PointerTo(t).Implements(unmarshalerType):
		case isInteger(t.Kind()) && n.Tag == "!!float":
			errs = append(errs, fmt.Errorf("%s: %s is not a whole number", path, n.Value))
		}
	}
	return errs
}

func isInteger(k reflect.Kind) bool {
	return k >= reflect.Int && k <= reflect.Uint64
}

// yamlField finds the field of struct t that the YAML key decodes into.
func yamlField(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// checkNumbers inspects data for Parse; it returns the keys given in the
// file and every number problem, joined.
func checkNumbers(data []byte) (map[string]bool, error) {
	given := map[string]bool{}
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil {
		return given, nil // the strict decode reports syntax errors
	}
	return given, errors.Join(inspect(&doc, reflect.TypeOf(Config{}), "", given)...)
}

// keysUnder reports whether the file set prefix.key.
func keysUnder(given map[string]bool, prefix string) func(key string) bool {
	return func(key string) bool { return given[prefix+"."+key] }
}
