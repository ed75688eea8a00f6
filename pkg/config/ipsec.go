package config

import (
	"strconv"
	"time"

	"github.com/cgwd/cgwd/pkg/proposal"
)

// Defaults of an ipsec tunnel, as AWS configures its side.
const (
	DefaultIKELifetime   = 28800 * time.Second
	DefaultChildLifetime = 3600 * time.Second
	DefaultRekeyMargin   = 540 * time.Second
	DefaultRekeyFuzz     = 100
	DefaultDPDDelay      = 10 * time.Second
	DefaultDPDTimeout    = 30 * time.Second
	DefaultReplayWindow  = 1024
)

// Bounds of ipsec settings; the IKE engine and the ESP data path enforce
// the same ones (MinReplayWindow, MaxReplayWindow, MaxHalfOpen), which
// a test checks, so config need not import them.
const (
	MinReplayWindow = 64
	MaxReplayWindow = 2048
	MaxHalfOpen     = 1024
)

// IKEVersion is which IKE versions a tunnel may speak, as AWS's
// IkeVersions: "2", "1" or "any" (both).
type IKEVersion string

// IKE versions. IKEAny tries IKEv2 first and falls back to IKEv1 when the
// peer speaks only that (see README, IKE versions).
const (
	IKEv2  IKEVersion = "2"
	IKEv1  IKEVersion = "1"
	IKEAny IKEVersion = "any"
)

// IPsec holds the settings of an ipsec tunnel. Unset fields take the
// defaults above (see WithDefaults).
type IPsec struct {
	// PSKFile holds the pre-shared key (mode 0600).
	PSKFile string `yaml:"psk_file"`
	// Auth is "psk" or "cert"; empty means cert when cert_file is given.
	// CertFile (PEM, leaf first, then intermediates), KeyFile (its private
	// key, RSA or ECDSA, mode 0600) and CAFile (trust anchors) are
	// certificate authentication's, as AWS Private CA issues them.
	Auth     string `yaml:"auth"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	CAFile   string `yaml:"ca_file"`
	// IKEVersion: "2" (the default), "1" or "any" (IKEv2 first, IKEv1
	// when the peer speaks only that).
	IKEVersion IKEVersion `yaml:"ike_version"`
	// IKEProposals in strongSwan notation, e.g. aes256gcm16-prfsha384-ecp384.
	IKEProposals []IKEProposal `yaml:"ike_proposals"`
	// ESPProposals in strongSwan notation; a DH group means PFS on rekey.
	ESPProposals []ESPProposal `yaml:"esp_proposals"`
	// Initiate makes cgwd start the IKE SA (default true); false only answers.
	Initiate *bool `yaml:"initiate"`
	// IKELifetime and ChildLifetime are the SAs' hard lifetimes.
	IKELifetime   Duration `yaml:"ike_lifetime"`
	ChildLifetime Duration `yaml:"child_lifetime"`
	// RekeyMargin: rekeying starts this long (plus RekeyFuzz percent of it,
	// at random) before the lifetime ends.
	RekeyMargin Duration `yaml:"rekey_margin"`
	RekeyFuzz   *int     `yaml:"rekey_fuzz_percent"`
	// DPDDelay is the silence before a liveness check; DPDTimeout how long
	// an unanswered request is retried before the peer counts as dead.
	DPDDelay   Duration `yaml:"dpd_delay"`
	DPDTimeout Duration `yaml:"dpd_timeout"`
	// ReplayWindow is the ESP anti-replay window in packets (64..2048).
	ReplayWindow int `yaml:"replay_window"`
	// ForceEncap makes both ends use UDP-encapsulated ESP even without a
	// NAT. cgwd only carries ESP in UDP, so it must stay true.
	ForceEncap *bool `yaml:"force_encap"`
	// LocalID and RemoteID are the IPv4 identities; they default to the
	// outside addresses, as AWS uses them. Behind NAT, LocalID must be the
	// public address AWS knows the customer gateway by.
	LocalID  Addr `yaml:"local_id"`
	RemoteID Addr `yaml:"remote_id"`
	// FragmentSize is the largest IP packet an encrypted IKE message takes
	// before cgwd sends it as RFC 7383 fragments, when the peer supports
	// them (default 1280; 576..9000).
	FragmentSize int `yaml:"ike_fragment_size"`
	// CookieThreshold is how many IKE_SA_INIT requests a second make cgwd,
	// as responder, demand a COOKIE first (default 10; -1: always).
	CookieThreshold int `yaml:"cookie_threshold"`
	// HalfOpenLimit caps the peer's IKE SAs between IKE_SA_INIT and
	// IKE_AUTH (default 16); cookies are demanded from half of it.
	HalfOpenLimit int `yaml:"half_open_limit"`
}

// WithDefaults returns a copy of c with every unset field at its default.
func (c IPsec) WithDefaults() IPsec {
	if c.IKEVersion == "" {
		c.IKEVersion = IKEv2
	}
	if len(c.IKEProposals) == 0 {
		c.IKEProposals = []IKEProposal{NewIKEProposal(proposal.DefaultIKE)}
		switch c.IKEVersion {
		case IKEv1:
			c.IKEProposals = []IKEProposal{NewIKEProposal(DefaultIKEv1Proposal)}
		case IKEAny:
			c.IKEProposals = nil
			for _, p := range defaultAnyIKEProposals {
				c.IKEProposals = append(c.IKEProposals, NewIKEProposal(p))
			}
		}
	}
	if len(c.ESPProposals) == 0 {
		c.ESPProposals = []ESPProposal{NewESPProposal(proposal.DefaultESP)}
	}
	t := true
	if c.Initiate == nil {
		c.Initiate = &t
	}
	if c.ForceEncap == nil {
		c.ForceEncap = &t
	}
	def := func(d *Duration, v time.Duration) {
		if *d == 0 {
			*d = Duration(v)
		}
	}
	def(&c.IKELifetime, DefaultIKELifetime)
	def(&c.ChildLifetime, DefaultChildLifetime)
	def(&c.RekeyMargin, min(DefaultRekeyMargin, time.Duration(c.ChildLifetime)/3))
	def(&c.DPDDelay, DefaultDPDDelay)
	def(&c.DPDTimeout, DefaultDPDTimeout)
	if c.RekeyFuzz == nil {
		f := DefaultRekeyFuzz
		c.RekeyFuzz = &f
	}
	if c.ReplayWindow == 0 {
		c.ReplayWindow = DefaultReplayWindow
	}
	return c
}

// Proposals returns copies of the parsed proposals; c must have passed validation.
func (c IPsec) Proposals() (ikeP, espP []proposal.Proposal) {
	for _, p := range c.IKEProposals {
		ikeP = append(ikeP, p.Proposal())
	}
	for _, p := range c.ESPProposals {
		espP = append(espP, p.Proposal())
	}
	return ikeP, espP
}

func (v *validator) ipsec(field string, raw *IPsec) {
	if !v.ipsecAuth(field, raw) {
		if raw.PSKFile == "" {
			v.add(field+".psk_file", "is required")
		}
		v.secretPath(field+".psk_file", raw.PSKFile)
	}
	c := raw.WithDefaults()
	switch c.IKEVersion {
	case IKEv2, IKEAny:
	case IKEv1:
		if !v1Phase1Usable(c.IKEProposals) {
			v.add(field+".ike_proposals", "IKEv1 needs an AES-CBC proposal for phase 1 (e.g. %s): AES-GCM is IKEv2 only", DefaultIKEv1Proposal)
		}
	default:
		v.add(field+".ike_version", "%q is not 2, 1 or any", c.IKEVersion)
	}
	for i, p := range c.IKEProposals {
		if p.err != "" {
			v.add(field+".ike_proposals["+strconv.Itoa(i)+"]", "%s", p.err)
		}
	}
	for i, p := range c.ESPProposals {
		if p.err != "" {
			v.add(field+".esp_proposals["+strconv.Itoa(i)+"]", "%s", p.err)
		}
	}
	ikeLife, childLife := time.Duration(c.IKELifetime), time.Duration(c.ChildLifetime)
	if ikeLife < time.Minute || ikeLife > 24*time.Hour {
		v.add(field+".ike_lifetime", "%v is not in 1m..24h", ikeLife)
	}
	if childLife < 30*time.Second || childLife > ikeLife {
		v.add(field+".child_lifetime", "%v is not in 30s..ike_lifetime (%v)", childLife, ikeLife)
	}
	if m := time.Duration(c.RekeyMargin); m <= 0 || m >= childLife {
		v.add(field+".rekey_margin", "%v must be positive and shorter than child_lifetime (%v)", m, childLife)
	}
	if f := *c.RekeyFuzz; f < 0 || f > 200 {
		v.add(field+".rekey_fuzz_percent", "%d is not in 0..200", f)
	}
	if n := c.FragmentSize; n != 0 && (n < 576 || n > 9000) {
		v.add(field+".ike_fragment_size", "%d is not in 576..9000", n)
	}
	if t := c.CookieThreshold; t < -1 || t > 10000 {
		v.add(field+".cookie_threshold", "%d is not in -1..10000 (-1: always demand a cookie)", t)
	}
	if n := c.HalfOpenLimit; n < 0 || n > MaxHalfOpen {
		v.add(field+".half_open_limit", "%d is not in 1..%d", n, MaxHalfOpen)
	}
	if d := time.Duration(c.DPDDelay); d < time.Second {
		v.add(field+".dpd_delay", "%v is shorter than 1s", d)
	}
	if d := time.Duration(c.DPDTimeout); d < time.Duration(c.DPDDelay) {
		v.add(field+".dpd_timeout", "%v is shorter than dpd_delay (%v)", d, time.Duration(c.DPDDelay))
	}
	if w := c.ReplayWindow; w < MinReplayWindow || w > MaxReplayWindow || w%64 != 0 {
		v.add(field+".replay_window", "%d is not a multiple of 64 in %d..%d", w, MinReplayWindow, MaxReplayWindow)
	}
	if !*c.ForceEncap {
		v.add(field+".force_encap", "must be true: cgwd carries ESP only in UDP (RFC 3948), never as raw IP protocol 50")
	}
	for _, id := range []struct {
		name string
		val  Addr
	}{{"local_id", c.LocalID}, {"remote_id", c.RemoteID}} {
		if id.val.IsSet() && !id.val.is4() && (id.name == "local_id" || !c.UsesCert()) {
			v.add(field+"."+id.name, "%q is not an IPv4 address", id.val)
		}
	}
}

// ipsecIDs checks the identities of tunnel t (field names it) against its
// outside addresses: both ends claiming one identity, or the two swapped,
// can only fail authentication.
func (v *validator) ipsecIDs(field string, t *Tunnel) {
	c := t.IPsec
	local, remote := c.LocalID, c.RemoteID
	if !local.IsSet() {
		local = t.Outside.Local
	}
	if !remote.IsSet() {
		remote = t.Outside.Remote
	}
	if !local.is4() || !remote.is4() {
		return // named by the checks of the addresses themselves
	}
	la, ra := local.Addr(), remote.Addr()
	switch {
	case la == ra:
		v.add(field+".ipsec.local_id", "%s is also the remote identity: each end needs its own", la)
	case c.LocalID.IsSet() && la == t.Outside.Remote.Addr():
		v.add(field+".ipsec.local_id", "%s is the AWS endpoint's address (outside.remote): local_id is this gateway's "+
			"public address", la)
	case c.RemoteID.IsSet() && ra == t.Outside.Local.Addr():
		v.add(field+".ipsec.remote_id", "%s is this gateway's address (outside.local): remote_id is the AWS endpoint's "+
			"outside address", ra)
	}
}
