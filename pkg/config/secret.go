package config

import (
	"encoding/base64"
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/cgwd/cgwd/pkg/secret"
)

// AWS's length limits for a tunnel's pre-shared key, in characters.
const (
	MinPSKLen = 8
	MaxPSKLen = 64
)

// checkSecretFiles reads every secret file of c the way the daemon will, so
// that check-config refuses what run would refuse, and checks that a PSK
// has a length AWS accepts and a WireGuard private key is a key. The
// contents are cleared at once and never reported.
func (c *Config) checkSecretFiles() Problems {
	v := &validator{}
	check := func(field, path string, content func([]byte) string) {
		if path == "" || !filepath.IsAbs(path) { // Validate reports those
			return
		}
		b, err := secret.Read(field, path)
		if err != nil {
			v.probs = append(v.probs, Problem{Field: field, Msg: strings.TrimPrefix(err.Error(), field+" ")})
			return
		}
		defer clear(b)
		if content != nil {
			if msg := content(b); msg != "" {
				v.add(field, "%s: %s", path, msg)
			}
		}
	}
	for i, vpn := range c.VPN {
		for j, t := range vpn.Tunnels {
			field := fmt.Sprintf("vpn[%d].tunnels[%d]", i, j)
			if t.WireGuard != nil {
				check(field+".wireguard.private_key_file", t.WireGuard.PrivateKeyFile, wireGuardKeyProblem)
			}
			check(field+".bgp.password_file", t.BGP.PasswordFile, nil)
			if t.IPsec != nil {
				check(field+".ipsec.psk_file", t.IPsec.PSKFile, pskProblem)
				v.probs = append(v.probs, certProblems(field+".ipsec", t.IPsec)...)
			}
		}
	}
	for i, d := range c.DirectConnect {
		check(fmt.Sprintf("direct_connect[%d].bgp.password_file", i), d.BGP.PasswordFile, nil)
	}
	for i, p := range c.LAN.Peers {
		check(fmt.Sprintf("lan.peers[%d].password_file", i), p.PasswordFile, nil)
	}
	return v.probs
}

// pskProblem says what is wrong with a pre-shared key, without quoting it.
func pskProblem(psk []byte) string {
	if n := utf8.RuneCount(psk); n < MinPSKLen || n > MaxPSKLen {
		return fmt.Sprintf("the key is %d characters long; AWS pre-shared keys are %d to %d", n, MinPSKLen, MaxPSKLen)
	}
	return ""
}

// wireGuardKeyProblem says what is wrong with a WireGuard private key file,
// without quoting it.
func wireGuardKeyProblem(b []byte) string {
	buf := make([]byte, base64.StdEncoding.DecodedLen(len(b)))
	defer clear(buf)
	if n, err := base64.StdEncoding.Decode(buf, b); err != nil || n != 32 {
		return "is not a WireGuard private key (base64 of 32 bytes, as `wg genkey` prints)"
	}
	return ""
}
