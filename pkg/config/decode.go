package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Decoding is two passes. The first walks the YAML tree alongside Config's
// type and reports, with its field path and line, every unknown key and
// every value of the wrong shape, in words rather than Go type names; each
// bad value is then cut from the tree, so that the second pass (yaml.v3's
// own, lenient) decodes the rest and Validate still checks it.

var (
	asnType         = reflect.TypeOf(ASN(0))
	unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
)

// expected says in words what a field of each custom type takes.
var expected = map[reflect.Type]string{
	asnType:                        "an ASN (e.g. 65000 or 1.10)",
	reflect.TypeOf(Addr{}):         "an IP address",
	reflect.TypeOf(Prefix{}):       "a prefix (e.g. 10.0.0.0/8)",
	reflect.TypeOf(Community{}):    "a community (e.g. 7224:7100)",
	reflect.TypeOf(Rate{}):         "a rate (e.g. 10/second)",
	reflect.TypeOf(IKEProposal{}):  "a proposal (e.g. aes256gcm16-prfsha384-ecp384)",
	reflect.TypeOf(ESPProposal{}):  "a proposal (e.g. aes256gcm16-ecp384)",
	reflect.TypeOf(Duration(0)):    "a duration (e.g. 25s)",
	reflect.TypeOf(LogLevel("")):   "one of debug, info, warn, error",
	reflect.TypeOf(LogFormat("")):  "one of text, json",
	reflect.TypeOf(TunnelKind("")): "one of wireguard, ipsec",
	reflect.TypeOf(Gateway("")):    "one of vgw, tgw",
	reflect.TypeOf(Mode("")):       "one of active-standby, ecmp",
	reflect.TypeOf(Routing("")):    "one of bgp, static",
	reflect.TypeOf(OverLimit("")):  "one of refuse, hold-back",
	reflect.TypeOf(IKEVersion("")): "one of 2, 1, any",
	reflect.TypeOf(ImportMode("")): "one of add, replace",
	reflect.TypeOf(HARole("")):     "one of primary, secondary",
	reflect.TypeOf(HAMode("")):     "one of active-standby, active-active",
}

// decoder holds what the first pass found.
type decoder struct {
	probs Problems
	// given holds the path of every key whose value is not null, so that
	// defaults replace only what was left out.
	given map[string]bool
	// where holds the line and column of every value given, by path.
	where map[string][2]int
	// budget bounds the nodes walked: aliases can make a small file a
	// very large tree.
	budget int
}

// walkBudget is far more nodes than any real config has.
const walkBudget = 100_000

func (d *decoder) add(n *yaml.Node, field, format string, args ...any) {
	d.probs = append(d.probs, Problem{Field: field, Msg: fmt.Sprintf(format, args...), Line: n.Line, Column: n.Column})
}

// cut turns n into a null, so that the second pass leaves its field zero.
func cut(n *yaml.Node) {
	*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
}

// describe names what the file gave, for "expected X, got Y".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(n.Value)
}

// want names what a field of type t takes.
func want(t reflect.Type) string {
	if s, ok := expected[t]; ok {
		return s
	}
	switch k := t.Kind(); {
	case k == reflect.Struct:
		return "a mapping (key: value)"
	case k == reflect.Slice:
		return "a list"
	case k == reflect.Bool:
		return "true or false"
	case isInteger(k):
		return "a whole number"
	case k == reflect.Float32 || k == reflect.Float64:
		return "a number"
	}
	return "text"
}

// walk checks n, the value of the field at path, against t.
func (d *decoder) walk(n *yaml.Node, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if d.budget--; d.budget == 0 {
		d.add(n, path, "the document expands to more than %d values (aliases?); stopped checking", walkBudget)
	}
	if d.budget <= 0 {
		return
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias != nil {
			d.walk(n.Alias, t, path)
		}
		return
	}
	if _, ok := d.where[path]; !ok && path != "" {
		d.where[path] = [2]int{n.Line, n.Column}
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	custom := reflect.PointerTo(t).Implements(unmarshalerType)
	switch {
	case custom || t.Kind() != reflect.Struct && t.Kind() != reflect.Slice:
		d.scalar(n, t, path, custom)
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, c := range n.Content {
			d.walk(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		d.mapping(n, t, path)
	default:
		d.add(n, path, "expected %s, got %s", want(t), describe(n))
		cut(n)
	}
}

// mapping checks the keys of n against struct t's yaml tags.
func (d *decoder) mapping(n *yaml.Node, t reflect.Type, path string) {
	seen := map[string]*yaml.Node{}
	kept := n.Content[:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			// <<: *anchor (or a list of them) merges mappings' keys.
			if v.Kind == yaml.SequenceNode {
				for _, m := range v.Content {
					d.walk(m, t, path)
				}
			} else {
				d.walk(v, t, path)
			}
			kept = append(kept, k, v)
			continue
		}
		p := join(path, k.Value)
		f, ok := yamlField(t, k.Value)
		switch {
		case k.Kind != yaml.ScalarNode:
			d.add(k, path, "expected a key name, got %s", describe(k))
			continue
		case !ok:
			d.add(k, p, "unknown key `%s`%s", k.Value, suggest(k.Value, t))
			continue
		case seen[k.Value] != nil:
			d.add(k, p, "key `%s` is given twice (first on line %d)", k.Value, seen[k.Value].Line)
			continue
		}
		seen[k.Value] = k
		if v.Tag != "!!null" {
			d.given[p] = true
		}
		d.walk(v, f.Type, p)
		kept = append(kept, k, v)
	}
	n.Content = kept
}

// scalar checks a value that is not a mapping or list in Go: it must be a
// scalar that decodes into t.
func (d *decoder) scalar(n *yaml.Node, t reflect.Type, path string, custom bool) {
	if n.Kind != yaml.ScalarNode {
		d.add(n, path, "expected %s, got %s", want(t), describe(n))
		cut(n)
		return
	}
	var err error
	switch {
	case t == asnType:
		_, err = ParseASN(n.Value)
	case isInteger(t.Kind()) && n.Tag == "!!float":
		err = fmt.Errorf("%s is not a whole number", n.Value) // the decoder would truncate it
	case custom:
		err = reflect.New(t).Interface().(yaml.Unmarshaler).UnmarshalYAML(n)
	case t.Kind() != reflect.String:
		if n.Decode(reflect.New(t).Interface()) != nil {
			err = fmt.Errorf("expected %s, got %s", want(t), describe(n))
		}
	}
	if err != nil {
		d.add(n, path, "%s", err)
		cut(n)
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func isInteger(k reflect.Kind) bool {
	return k >= reflect.Int && k <= reflect.Uint64
}

// yamlField finds the field of struct t that the YAML key decodes into.
func yamlField(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name == key && f.IsExported() {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// suggest names the known key of struct t closest to key, or lists them all
// when none is close.
func suggest(key string, t reflect.Type) string {
	var known []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name != "" && name != "-" && f.IsExported() {
			known = append(known, name)
		}
	}
	best, bestDist := "", max(1, len(key)/3)+1
	for _, k := range known {
		if dist := editDistance(key, k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best != "" {
		return fmt.Sprintf(", did you mean `%s`?", best)
	}
	sort.Strings(known)
	return " (known here: " + strings.Join(known, ", ") + ")"
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// The line yaml.v3 puts in a syntax error's text and a type error's.
var (
	syntaxLine    = regexp.MustCompile(`^yaml: line (\d+): `)
	typeErrorLine = regexp.MustCompile(`^line (\d+)`)
)

// decode parses data into a Config. A document that is not YAML gives
// a nil Config and one problem in d.probs; otherwise the Config holds
// every value that decoded, defaults applied, and d.probs every one that
// did not.
func decode(data []byte) (c *Config, d *decoder, err error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		p := Problem{Msg: "not valid YAML: " + msg}
		if m := syntaxLine.FindStringSubmatch(err.Error()); m != nil {
			p.Line, _ = strconv.Atoi(m[1])
			p.Msg = "not valid YAML: " + err.Error()[len(m[0]):]
		}
		return nil, &decoder{probs: Problems{p}}, nil
	}
	if len(doc.Content) == 0 {
		return nil, nil, errors.New("config is empty")
	}
	d = &decoder{given: map[string]bool{}, where: map[string][2]int{}, budget: walkBudget}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		d.add(top, "", "expected a mapping of settings (asn: ..., prefixes: ...), got %s", describe(top))
		return nil, d, nil
	}
	d.walk(top, reflect.TypeOf(Config{}), "")
	if d.budget <= 0 {
		return nil, d, nil
	}
	c = &Config{}
	if err := doc.Decode(c); err != nil {
		// The first pass should have cut every value that fails here;
		// say where, without yaml.v3's Go type names.
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			d.probs = append(d.probs, Problem{Msg: "cannot decode: " + err.Error()})
			return nil, d, nil
		}
		for _, e := range te.Errors {
			p := Problem{Msg: "a value of the wrong type"}
			if m := typeErrorLine.FindStringSubmatch(e); m != nil {
				p.Line, _ = strconv.Atoi(m[1])
			}
			d.probs = append(d.probs, p)
		}
	}
	c.asnGiven = d.given["asn"]
	c.applyDefaults(d.given)
	return c, d, nil
}

// locate gives the line and column of field, or else of the nearest
// enclosing field the file gave; 0, 0 when there is none.
func (d *decoder) locate(field string) (line, col int) {
	for field != "" {
		if at, ok := d.where[field]; ok {
			return at[0], at[1]
		}
		field = field[:max(0, strings.LastIndexAny(field, ".["))]
	}
	return 0, 0
}

// keysUnder reports whether the file set prefix.key.
func keysUnder(given map[string]bool, prefix string) func(key string) bool {
	return func(key string) bool { return given[prefix+"."+key] }
}
