package awsimport

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cgwd/cgwd/pkg/config"
	"github.com/cgwd/cgwd/pkg/proposal"
)

// Every DH group AWS can list, alone in a phase, under each IKE version
// AWS can allow, renders to a config that cgwd's own parser and rules
// accept, whose parsed proposals offer exactly that group in that phase
// under strongSwan's name for it, and whose ike_version is AWS's.
func TestEveryAWSGroupThroughConfig(t *testing.T) {
	groups := []struct {
		id     uint16
		name   string
		phase1 bool // AWS lists it for phase 1 (all but 5)
	}{
		{2, "modp1024", true}, {5, "modp1536", false}, {14, "modp2048", true}, {15, "modp3072", true},
		{16, "modp4096", true}, {17, "modp6144", true}, {18, "modp8192", true}, {19, "ecp256", true},
		{20, "ecp384", true}, {21, "ecp521", true}, {22, "modp1024s160", true}, {23, "modp2048s224", true},
		{24, "modp2048s256", true},
	}
	if len(groups) != len(awsGroups) {
		t.Fatalf("the table has %d groups, AWS lists %d", len(groups), len(awsGroups))
	}
	versions := []struct {
		aws  []string
		want config.IKEVersion
	}{{[]string{"ikev1"}, config.IKEv1}, {[]string{"ikev2"}, config.IKEv2}, {[]string{"ikev1", "ikev2"}, config.IKEAny}}
	for _, g := range groups {
		if got := proposal.GroupName(g.id); got != g.name {
			t.Errorf("group %d: cgwd names it %q, want %q", g.id, got, g.name)
		}
		for _, phase1 := range []bool{true, false} {
			if phase1 && !g.phase1 {
				continue
			}
			for _, v := range versions {
				t.Run(fmt.Sprintf("group%d/phase%d/%v", g.id, map[bool]int{true: 1, false: 2}[phase1], v.aws), func(t *testing.T) {
					o := &TunnelOptions{RekeyFuzz: -1, IKEVersions: v.aws}
					if phase1 {
						o.Phase1Groups = []int{int(g.id)}
					} else {
						o.Phase2Groups = []int{int(g.id)}
					}
					c := readOptions(t)
					c.Tunnels[0].Options, c.Tunnels[1].Options = o, o
					yml, err := Render(c, Options{ASN: 65000})
					if err != nil {
						t.Fatal(err)
					}
					cfg, err := config.Parse(yml)
					if err != nil {
						t.Fatalf("cgwd's parser refuses the import: %v\n%s", err, yml)
					}
					if _, err := Check(c, Options{}); err != nil {
						t.Fatalf("cgwd's config rules refuse the import: %v", err)
					}
					ip := cfg.VPN[0].Tunnels[0].IPsec.WithDefaults()
					if ip.IKEVersion != v.want {
						t.Errorf("ike_version %q, want %q", ip.IKEVersion, v.want)
					}
					ikeP, espP := ip.Proposals()
					ps := espP
					if phase1 {
						ps = ikeP
					}
					for _, p := range ps {
						if dh := dhGroups(p); !slices.Equal(dh, []uint16{g.id}) {
							t.Errorf("%s offers groups %v, want only %d", p, dh, g.id)
						}
						if v.want == config.IKEv1 && phase1 && isGCM(p) {
							t.Errorf("IKEv1 phase 1 proposal %s is AES-GCM, which IKEv1 has not", p)
						}
					}
				})
			}
		}
	}
}

func dhGroups(p proposal.Proposal) []uint16 {
	var out []uint16
	for _, x := range p.Transforms {
		if x.Type == proposal.TransformDH {
			out = append(out, x.ID)
		}
	}
	return out
}

func isGCM(p proposal.Proposal) bool {
	return slices.ContainsFunc(p.Transforms, func(x proposal.Transform) bool {
		return x.Type == proposal.TransformEncr && x.ID == proposal.EncrAESGCM16
	})
}

// An IKEv1-only tunnel whose phase 1 AWS narrowed to AES-GCM has no
// proposal IKEv1 can use: cgwd's config rules name ike_proposals.
func TestIKEv1OnlyGCMPhase1IsNamed(t *testing.T) {
	c := readOptions(t)
	o := &TunnelOptions{RekeyFuzz: -1, IKEVersions: []string{"ikev1"}, Phase1Encryption: []string{"AES256-GCM-16"}}
	c.Tunnels[0].Options = o
	if _, err := Check(c, Options{}); err == nil || !strings.Contains(err.Error(), "ike_proposals: IKEv1 needs an AES-CBC proposal") {
		t.Errorf("GCM-only IKEv1 phase 1: %v", err)
	}
	o.Phase1Encryption = []string{"AES256-GCM-16", "AES128"}
	if s := settings(o); s["ike_proposals"] != "[aes128-sha384-sha256-sha512-sha1-ecp384-ecp256-ecp521-modp2048-modp3072-modp4096-modp2048s256-modp2048s224-modp6144-modp8192]" {
		t.Errorf("IKEv1 phase 1 proposals %s", s["ike_proposals"])
	}
	if _, err := Check(c, Options{}); err != nil {
		t.Error(err)
	}
}
