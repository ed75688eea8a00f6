package awsimport

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cgwd/cgwd/pkg/config"
	"github.com/cgwd/cgwd/pkg/proposal"
)

// Mismatch is one way an existing cgwd config disagrees with what AWS says
// about a tunnel now.
type Mismatch struct {
	Tunnel string // the config's tunnel name, or the AWS address when none matches
	Field  string // the ipsec key, e.g. ike_lifetime
	Have   string // the config's value (defaults applied)
	AWS    string // what AWS says
	Fix    string // the YAML line that fixes it
}

func (m Mismatch) String() string {
	return fmt.Sprintf("%s: %s is %s, AWS says %s; fix: %s", m.Tunnel, m.Field, m.Have, m.AWS, m.Fix)
}

// Diff compares cfg's ipsec tunnels with c, matching each AWS tunnel to the
// config tunnel whose outside.remote is its AWS address. It names the
// authentication (a PSK where AWS gave none, or certificates where it did), lifetimes,
// IKE versions, proposals no AWS suite matches, DPD timeouts and a startup
// action nobody initiates under; lifetimes AWS lists in the XML count too
// when the input has no tunnel options. Nil means none.
func Diff(cfg *config.Config, c *Connection) []Mismatch {
	var out []Mismatch
	for i := range c.Tunnels {
		t := &c.Tunnels[i]
		ct := findTunnel(cfg, t)
		if ct == nil {
			out = append(out, Mismatch{Tunnel: t.AWSOutside.String(), Field: "tunnel", Have: "missing",
				AWS: "an ipsec tunnel to " + t.AWSOutside.String(), Fix: "add it (cgwd import-aws FILE prints one)"})
			continue
		}
		ip := ct.IPsec.WithDefaults()
		add := func(field, have, aws, fix string) {
			out = append(out, Mismatch{Tunnel: ct.Name, Field: field, Have: have, AWS: aws, Fix: fix})
		}
		if have := ct.IPsec.UsesCert(); have != t.Cert {
			add("auth", authName(have), authName(t.Cert), authFix(t.Cert))
		}
		life := func(field string, have config.Duration, aws int) {
			if aws != 0 && time.Duration(have) != time.Duration(aws)*time.Second {
				add(field, secs(have), fmt.Sprintf("%ds", aws), fmt.Sprintf("%s: %ds", field, aws))
			}
		}
		o := t.Options
		if o == nil {
			life("ike_lifetime", ip.IKELifetime, t.IKE.LifetimeSec)
			life("child_lifetime", ip.ChildLifetime, t.IPsec.LifetimeSec)
			continue
		}
		want := map[string]string{}
		for _, s := range o.Settings() {
			want[s.Key] = s.Value
		}
		if v := ip.IKEVersion; !versionAllowed(v, o.IKEVersions) {
			add("ike_version", string(v), strings.Join(o.IKEVersions, ", "), "ike_version: "+want["ike_version"])
		}
		ikeP, espP := ip.Proposals()
		if !anyAccepted(ikeP, o.Phase1Encryption, o.Phase1Integ, o.Phase1Groups, true) {
			add("ike_proposals", proposalList(ikeP), allowed(o.Phase1Encryption, o.Phase1Integ, o.Phase1Groups, true), "ike_proposals: "+want["ike_proposals"])
		}
		if !anyAccepted(espP, o.Phase2Encryption, o.Phase2Integ, o.Phase2Groups, false) {
			add("esp_proposals", proposalList(espP), allowed(o.Phase2Encryption, o.Phase2Integ, o.Phase2Groups, false), "esp_proposals: "+want["esp_proposals"])
		}
		life("ike_lifetime", ip.IKELifetime, o.Phase1Lifetime)
		life("child_lifetime", ip.ChildLifetime, o.Phase2Lifetime)
		life("dpd_timeout", ip.DPDTimeout, o.DPDTimeout)
		if o.ReplayWindow != 0 && ip.ReplayWindow != o.ReplayWindow {
			add("replay_window", fmt.Sprint(ip.ReplayWindow), fmt.Sprint(o.ReplayWindow), fmt.Sprintf("replay_window: %d", o.ReplayWindow))
		}
		if !*ip.Initiate && o.StartupAction != "start" {
			add("initiate", "false", "startup action "+orDash(o.StartupAction)+" (AWS waits for the customer gateway)", "initiate: true")
		}
	}
	return out
}

// findTunnel is the ipsec tunnel of cfg whose AWS address is t's.
func findTunnel(cfg *config.Config, t *Tunnel) *config.Tunnel {
	for i := range cfg.VPN {
		for j := range cfg.VPN[i].Tunnels {
			ct := &cfg.VPN[i].Tunnels[j]
			if ct.IPsec != nil && ct.Outside.Remote.Addr() == t.AWSOutside {
				return ct
			}
		}
	}
	return nil
}

func secs(d config.Duration) string {
	return fmt.Sprintf("%ds", int64(time.Duration(d)/time.Second))
}

// versionAllowed reports whether cgwd's ike_version finds a version AWS allows.
func versionAllowed(v config.IKEVersion, aws []string) bool {
	if len(aws) == 0 {
		return true // AWS's default: both
	}
	switch v {
	case config.IKEv1:
		return slices.Contains(aws, "ikev1")
	case config.IKEv2:
		return slices.Contains(aws, "ikev2")
	}
	return len(aws) > 0
}

// anyAccepted reports whether one of ps has a combination AWS's lists
// (empty: AWS's defaults) accept.
func anyAccepted(ps []proposal.Proposal, encs, integs []string, groups []int, ike bool) bool {
	encOK := func(x proposal.Transform) bool {
		return acceptsAll(encs) || slices.ContainsFunc(encs, func(e string) bool {
			p, err := proposal.Parse(awsEncryption[e]+gcmFiller(e, ike), ike)
			return err == nil && p.Transforms[0] == x
		})
	}
	integName := func(id uint16, prf bool) string {
		for _, i := range integs {
			n := awsIntegrity[i]
			if prf {
				n = "prf" + n
			}
			p, err := proposal.Parse("aes128gcm16-"+n+"-modp2048", true)
			if prf && err == nil && p.Transforms[1].ID == id {
				return n
			}
			if q, err := proposal.Parse("aes128-"+awsIntegrity[i]+"-modp2048", false); !prf && err == nil && q.Transforms[1].ID == id {
				return n
			}
		}
		return ""
	}
	if len(groups) == 0 {
		groups = awsPhaseGroups(ike)
	}
	for _, p := range ps {
		var enc, integ, prf, dh, hasInteg, hasPRF, hasDH bool
		for _, x := range p.Transforms {
			switch x.Type {
			case proposal.TransformEncr:
				enc = enc || encOK(x)
			case proposal.TransformInteg:
				hasInteg = true
				integ = integ || len(integs) == 0 || integName(x.ID, false) != ""
			case proposal.TransformPRF:
				hasPRF = true
				prf = prf || len(integs) == 0 || integName(x.ID, true) != ""
			case proposal.TransformDH:
				hasDH = true
				dh = dh || slices.Contains(groups, int(x.ID))
			}
		}
		if enc && (integ || !hasInteg) && (prf || !hasPRF) && (dh || !hasDH) {
			return true
		}
	}
	return false
}

// gcmFiller completes an encryption algorithm into a proposal Parse takes.
func gcmFiller(aws string, ike bool) string {
	switch {
	case strings.Contains(aws, "GCM") && ike:
		return "-prfsha256-modp2048"
	case strings.Contains(aws, "GCM"):
		return ""
	case ike:
		return "-sha256-modp2048"
	}
	return "-sha256"
}

func acceptsAll(list []string) bool { return len(list) == 0 }

func proposalList(ps []proposal.Proposal) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// allowed describes AWS's lists of one phase for a mismatch.
func allowed(encs, integs []string, groups []int, ike bool) string {
	if len(groups) == 0 {
		groups = awsPhaseGroups(ike)
	}
	all := func(l []string) string {
		if len(l) == 0 {
			return "(AWS's defaults)"
		}
		return strings.Join(l, " ")
	}
	return fmt.Sprintf("encryption %s, integrity %s, groups %v", all(encs), all(integs), groups)
}

// authName names a tunnel's authentication for a mismatch.
func authName(cert bool) string {
	if cert {
		return "cert (a private certificate, no pre-shared key)"
	}
	return "psk"
}

// authFix is what a config must say to authenticate as AWS does.
func authFix(cert bool) string {
	if cert {
		return "auth: cert with cert_file, key_file and ca_file, no psk_file (cgwd import-aws FILE prints them)"
	}
	return "psk_file: the tunnel's pre-shared key file, no cert_file, key_file or ca_file (cgwd import-aws FILE --out-dir DIR writes it)"
}
