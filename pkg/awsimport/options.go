package awsimport

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/cgwd/cgwd/pkg/proposal"
)

// TunnelOptions are a tunnel's options as the AWS CLI JSON lists them
// (Options.TunnelOptions of describe-vpn-connections): what AWS accepts now,
// which the CustomerGatewayConfiguration XML does not say. Empty lists and
// zero numbers are "not given".
type TunnelOptions struct {
	IKEVersions                   []string // ikev1, ikev2
	Phase1Encryption, Phase1Integ []string // AES128, AES256-GCM-16, SHA2-256...
	Phase1Groups                  []int
	Phase2Encryption, Phase2Integ []string
	Phase2Groups                  []int
	Phase1Lifetime                int // seconds
	Phase2Lifetime                int // seconds
	RekeyMargin                   int // seconds
	RekeyFuzz                     int // percent; -1: not given
	ReplayWindow                  int
	DPDTimeout                    int    // seconds
	DPDAction                     string // clear, none, restart
	StartupAction                 string // add, start

	cert bool // the tunnel authenticates with certificates (Tunnel.Cert)
}

// cliTunnelOptions is one entry of the AWS CLI's Options.TunnelOptions.
type cliTunnelOptions struct {
	Outside          string     `json:"OutsideIpAddress"`
	IkeVersions      []cliValue `json:"IkeVersions"`
	Phase1Encryption []cliValue `json:"Phase1EncryptionAlgorithms"`
	Phase1Integrity  []cliValue `json:"Phase1IntegrityAlgorithms"`
	Phase1DHGroups   []cliValue `json:"Phase1DHGroupNumbers"`
	Phase2Encryption []cliValue `json:"Phase2EncryptionAlgorithms"`
	Phase2Integrity  []cliValue `json:"Phase2IntegrityAlgorithms"`
	Phase2DHGroups   []cliValue `json:"Phase2DHGroupNumbers"`
	Phase1Lifetime   int        `json:"Phase1LifetimeSeconds"`
	Phase2Lifetime   int        `json:"Phase2LifetimeSeconds"`
	RekeyMargin      int        `json:"RekeyMarginTimeSeconds"`
	RekeyFuzz        *int       `json:"RekeyFuzzPercentage"`
	ReplayWindow     int        `json:"ReplayWindowSize"`
	DpdTimeout       int        `json:"DpdTimeoutSeconds"`
	DpdTimeoutAction string     `json:"DpdTimeoutAction"`
	StartupAction    string     `json:"StartupAction"`
}

// cliValue is AWS's {"Value": x} list element (a string or a number).
type cliValue struct {
	Value any `json:"Value"`
}

// maxListed bounds each list read from the input; AWS has at most 13 groups.
const maxListed = 32

// AWS's names for the algorithms it allows, in cgwd's (strongSwan's) notation.
var (
	awsEncryption = map[string]string{"AES128": "aes128", "AES256": "aes256", "AES128-GCM-16": "aes128gcm16", "AES256-GCM-16": "aes256gcm16"}
	awsIntegrity  = map[string]string{"SHA1": "sha1", "SHA2-256": "sha256", "SHA2-384": "sha384", "SHA2-512": "sha512"}
)

// options checks and converts one AWS CLI tunnel options entry.
func (o *cliTunnelOptions) options(where string) (TunnelOptions, error) {
	t := TunnelOptions{
		Phase1Lifetime: o.Phase1Lifetime, Phase2Lifetime: o.Phase2Lifetime, RekeyMargin: o.RekeyMargin,
		RekeyFuzz: -1, ReplayWindow: o.ReplayWindow, DPDTimeout: o.DpdTimeout,
		DPDAction: strings.ToLower(o.DpdTimeoutAction), StartupAction: strings.ToLower(o.StartupAction),
	}
	if o.RekeyFuzz != nil {
		t.RekeyFuzz = *o.RekeyFuzz
	}
	var err error
	strs := func(field string, list []cliValue, allowed map[string]string) []string {
		var out []string
		for _, v := range list {
			s, ok := v.Value.(string)
			if _, known := allowed[strings.ToUpper(s)]; !ok || (allowed != nil && !known) {
				err = fieldErr(where, field, "%v is not a value AWS lists", safeAny(v.Value))
				return nil
			}
			out = append(out, strings.ToUpper(s))
		}
		return out
	}
	groups := func(field string, list []cliValue) []int {
		var out []int
		for _, v := range list {
			f, ok := v.Value.(float64)
			if !ok || f != float64(int(f)) || !slices.Contains(awsGroups, uint16(f)) {
				err = fieldErr(where, field, "%v is not a DH group AWS lists", safeAny(v.Value))
				return nil
			}
			out = append(out, int(f))
		}
		return out
	}
	for _, l := range [][]cliValue{o.IkeVersions, o.Phase1Encryption, o.Phase1Integrity, o.Phase1DHGroups, o.Phase2Encryption, o.Phase2Integrity, o.Phase2DHGroups} {
		if len(l) > maxListed {
			return t, fieldErr(where, "TunnelOptions", "a list of %d values; AWS has at most %d", len(l), maxListed)
		}
	}
	t.IKEVersions = strs("IkeVersions", o.IkeVersions, map[string]string{"IKEV1": "1", "IKEV2": "2"})
	for i, v := range t.IKEVersions {
		t.IKEVersions[i] = strings.ToLower(v)
	}
	t.Phase1Encryption = strs("Phase1EncryptionAlgorithms", o.Phase1Encryption, awsEncryption)
	t.Phase1Integ = strs("Phase1IntegrityAlgorithms", o.Phase1Integrity, awsIntegrity)
	t.Phase1Groups = groups("Phase1DHGroupNumbers", o.Phase1DHGroups)
	t.Phase2Encryption = strs("Phase2EncryptionAlgorithms", o.Phase2Encryption, awsEncryption)
	t.Phase2Integ = strs("Phase2IntegrityAlgorithms", o.Phase2Integrity, awsIntegrity)
	t.Phase2Groups = groups("Phase2DHGroupNumbers", o.Phase2DHGroups)
	if err != nil {
		return t, err
	}
	checks := []struct {
		field  string
		v      int
		lo, hi int
	}{
		{"Phase1LifetimeSeconds", t.Phase1Lifetime, 900, 28800},
		{"Phase2LifetimeSeconds", t.Phase2Lifetime, 900, 3600},
		{"RekeyMarginTimeSeconds", t.RekeyMargin, 60, 1800},
		{"RekeyFuzzPercentage", t.RekeyFuzz, 0, 100},
		{"ReplayWindowSize", t.ReplayWindow, 64, 2048},
		{"DpdTimeoutSeconds", t.DPDTimeout, 30, 3600},
	}
	for _, c := range checks {
		if c.v != 0 && c.v != -1 && (c.v < c.lo || c.v > c.hi) {
			return t, fieldErr(where, c.field, "%d is outside AWS's range %d-%d", c.v, c.lo, c.hi)
		}
	}
	if !slices.Contains([]string{"", "clear", "none", "restart"}, t.DPDAction) {
		return t, fieldErr(where, "DpdTimeoutAction", "%q is not clear, none or restart", safe(t.DPDAction))
	}
	if !slices.Contains([]string{"", "add", "start"}, t.StartupAction) {
		return t, fieldErr(where, "StartupAction", "%q is not add or start", safe(t.StartupAction))
	}
	return t, nil
}

// safeAny prints an untrusted JSON value for an error, bounded.
func safeAny(v any) string {
	s := safe(fmt.Sprint(v))
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return strconv.Quote(s)
}

// groupPreference is the order cgwd offers groups in: fast elliptic curves,
// then MODP by strength, the weak ones (2, 5, 22) last.
var groupPreference = []int{20, 19, 21, 14, 15, 16, 24, 23, 17, 18, 2, 5, 22}

// offeredGroups are the groups of list cgwd should offer, by preference:
// the weak ones only when AWS allows nothing else.
func offeredGroups(list []int) (names []string, weakDropped []int) {
	var strong, weak []string
	for _, g := range groupPreference {
		if !slices.Contains(list, g) {
			continue
		}
		if proposal.WeakGroup(uint16(g)) {
			weak = append(weak, proposal.GroupName(uint16(g)))
			weakDropped = append(weakDropped, g)
		} else {
			strong = append(strong, proposal.GroupName(uint16(g)))
		}
	}
	if len(strong) == 0 {
		return weak, nil
	}
	return strong, weakDropped
}

// proposals turns AWS's allowed algorithms of one phase into cgwd
// proposals: one AEAD (GCM) and one AES-CBC proposal, as strongSwan needs.
// Empty lists mean AWS's defaults (everything).
func proposals(encs, integs []string, groups []int, ike bool) (out []string, weakDropped []int) {
	if len(encs) == 0 {
		encs = []string{"AES128", "AES256", "AES128-GCM-16", "AES256-GCM-16"}
	}
	if len(integs) == 0 {
		integs = []string{"SHA1", "SHA2-256", "SHA2-384", "SHA2-512"}
	}
	if len(groups) == 0 {
		groups = awsPhaseGroups(ike)
	}
	var gcm, cbc, in []string
	for _, e := range sortedBy(encs, []string{"AES256-GCM-16", "AES128-GCM-16", "AES256", "AES128"}) {
		if strings.Contains(e, "GCM") {
			gcm = append(gcm, awsEncryption[e])
		} else {
			cbc = append(cbc, awsEncryption[e])
		}
	}
	for _, i := range sortedBy(integs, []string{"SHA2-384", "SHA2-256", "SHA2-512", "SHA1"}) {
		in = append(in, awsIntegrity[i])
	}
	g, weakDropped := offeredGroups(groups)
	if len(gcm) > 0 {
		p := slices.Clone(gcm)
		if ike {
			for _, i := range in {
				p = append(p, "prf"+i)
			}
		}
		out = append(out, strings.Join(append(p, g...), "-"))
	}
	if len(cbc) > 0 {
		out = append(out, strings.Join(append(append(cbc, in...), g...), "-"))
	}
	return out, weakDropped
}

// awsPhaseGroups are the groups AWS allows by default in phase 1 (ike) or 2.
func awsPhaseGroups(ike bool) []int {
	var out []int
	for _, g := range awsGroups {
		if !(ike && g == 5) {
			out = append(out, int(g))
		}
	}
	return out
}

// sortedBy returns the members of list in the order of pref (deduplicated).
func sortedBy(list, pref []string) []string {
	var out []string
	for _, p := range pref {
		if slices.Contains(list, p) {
			out = append(out, p)
		}
	}
	return out
}

// Setting is one cgwd ipsec setting derived from AWS's tunnel options.
type Setting struct {
	Key     string // the key in the tunnel's ipsec: block
	Value   string // YAML value
	Comment string // why, or "" (never holds input text unchecked)
}

// Settings are the cgwd ipsec settings that match the options, in the
// order Render writes them.
func (o *TunnelOptions) Settings() []Setting {
	var s []Setting
	add := func(k, v, c string) { s = append(s, Setting{k, v, c}) }
	v1, v2 := slices.Contains(o.IKEVersions, "ikev1"), slices.Contains(o.IKEVersions, "ikev2")
	phase1Enc := o.Phase1Encryption
	switch {
	case v2 && v1, len(o.IKEVersions) == 0:
		add("ike_version", "any", "AWS allows IKEv1 and IKEv2: cgwd tries IKEv2 first, then IKEv1")
	case v2:
		add("ike_version", "2", "AWS allows IKEv2 only")
	default:
		add("ike_version", "1", "AWS allows IKEv1 only: main mode and quick mode")
		phase1Enc = v1Phase1(phase1Enc)
	}
	ikeP, weak1 := proposals(phase1Enc, o.Phase1Integ, o.Phase1Groups, true)
	espP, weak2 := proposals(o.Phase2Encryption, o.Phase2Integ, o.Phase2Groups, false)
	weak := ""
	if w := slices.Compact(slices.Sorted(slices.Values(append(weak1, weak2...)))); len(w) > 0 {
		weak = fmt.Sprintf("AWS also allows weak groups %v, left out", w)
	}
	add("ike_proposals", "["+strings.Join(ikeP, ", ")+"]", weak)
	add("esp_proposals", "["+strings.Join(espP, ", ")+"]", "")
	if o.Phase1Lifetime != 0 {
		add("ike_lifetime", fmt.Sprintf("%ds", o.Phase1Lifetime), "")
	}
	if o.Phase2Lifetime != 0 {
		add("child_lifetime", fmt.Sprintf("%ds", o.Phase2Lifetime), "")
	}
	if m := o.RekeyMargin; m != 0 {
		// cgwd rekeys first: twice AWS's margin, within a third of the Child SA's lifetime.
		life := o.Phase2Lifetime
		if life == 0 {
			life = 3600
		}
		add("rekey_margin", fmt.Sprintf("%ds", min(2*m, life/3)), fmt.Sprintf("AWS's is %ds: cgwd rekeys before AWS does", m))
	}
	if o.RekeyFuzz >= 0 {
		add("rekey_fuzz_percent", strconv.Itoa(o.RekeyFuzz), "")
	}
	if o.ReplayWindow != 0 {
		add("replay_window", strconv.Itoa(o.ReplayWindow), "")
	}
	if o.DPDTimeout != 0 {
		add("dpd_timeout", fmt.Sprintf("%ds", o.DPDTimeout), "")
	}
	switch o.StartupAction {
	case "add", "":
		add("initiate", "true", "AWS's startup action add: AWS waits for cgwd to initiate")
	case "start":
		add("initiate", "true", "AWS's startup action start: AWS initiates too")
	}
	if o.DPDAction == "clear" || o.DPDAction == "none" {
		s[len(s)-1].Comment += "; on a DPD timeout AWS " + map[string]string{"clear": "clears the SA", "none": "does nothing"}[o.DPDAction] + " and waits for cgwd"
	}
	return s
}

// v1Phase1 leaves AES-GCM out of an IKEv1 tunnel's phase 1 algorithms
// (empty: AWS's defaults), since IKEv1 has no AEAD in phase 1. A list of
// GCM only is kept, for cgwd's config rules to name.
func v1Phase1(encs []string) []string {
	if len(encs) == 0 {
		return []string{"AES128", "AES256"}
	}
	cbc := slices.DeleteFunc(slices.Clone(encs), func(e string) bool { return strings.Contains(e, "GCM") })
	if len(cbc) == 0 {
		return encs
	}
	return cbc
}

// applyOptions attaches each entry of the CLI's TunnelOptions to the
// tunnel with that AWS outside address.
func applyOptions(c *Connection, opts []cliTunnelOptions) error {
	if len(opts) > 2 {
		return fmt.Errorf("Options.TunnelOptions lists %d tunnels; a VPN connection has 2", len(opts))
	}
	for i := range opts {
		where := fmt.Sprintf("TunnelOptions[%d]", i)
		addr, err := netip.ParseAddr(opts[i].Outside)
		if err != nil {
			return fieldErr(where, "OutsideIpAddress", "%s is not an IPv4 address", safeAny(opts[i].Outside))
		}
		o, err := opts[i].options(where)
		if err != nil {
			return err
		}
		found := false
		for j := range c.Tunnels {
			if c.Tunnels[j].AWSOutside == addr {
				o.cert = c.Tunnels[j].Cert
				c.Tunnels[j].Options = &o
				found = true
			}
		}
		if !found {
			return fieldErr(where, "OutsideIpAddress", "%s is no tunnel's AWS address in the configuration", addr)
		}
	}
	return nil
}
