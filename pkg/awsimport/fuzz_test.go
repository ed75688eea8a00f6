package awsimport

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cgwd/cgwd/pkg/config"
)

func addSeeds(f *testing.F, patterns ...string) {
	for _, p := range patterns {
		files, _ := filepath.Glob(filepath.Join("testdata", p))
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
}

// checkConnection asserts what every successfully parsed connection must
// satisfy, and that its rendering reads back as a config without the PSKs.
func checkConnection(t *testing.T, c *Connection) {
	t.Helper()
	if !c.Tunnels[0].AWSOutside.Less(c.Tunnels[1].AWSOutside) {
		t.Fatalf("tunnels not strictly ordered: %s, %s", c.Tunnels[0].AWSOutside, c.Tunnels[1].AWSOutside)
	}
	for i, tun := range c.Tunnels {
		if tun.Inside.Bits() != 30 || tun.AWSInside != tun.Inside.Addr().Next() || tun.CGWInside != tun.AWSInside.Next() {
			t.Fatalf("tunnel %d: inside %s, AWS %s, CGW %s", i, tun.Inside, tun.AWSInside, tun.CGWInside)
		}
		if tun.Cert != c.Cert() || tun.Cert && !tun.PSK.IsZero() {
			t.Fatalf("tunnel %d: cert %v (connection %v) with a PSK %v", i, tun.Cert, c.Cert(), !tun.PSK.IsZero())
		}
		if err := checkPSK("t", "psk", tun.PSK.Reveal()); err != nil && !tun.Cert {
			t.Fatalf("tunnel %d: accepted a PSK AWS would not: %v", i, err)
		}
	}
	yml, err := Render(c, Options{})
	if err != nil {
		return // e.g. the tunnels disagree on the ASN
	}
	if _, err := config.Parse(yml); err != nil {
		t.Fatalf("rendered config does not parse: %v\n%s", err, yml)
	}
	ids := c.ID + c.CustomerGatewayID + c.GatewayID + c.Type
	for _, tun := range c.Tunnels {
		if p := tun.PSK.Reveal(); strings.Contains(string(yml), p) && !strings.Contains(ids, p) {
			t.Fatalf("rendered config contains a PSK:\n%s", yml)
		}
	}
}

func FuzzParseXML(f *testing.F) {
	addSeeds(f, "*.xml", "bad/*.xml")
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseXML(data)
		if err != nil {
			return
		}
		checkConnection(t, c)
	})
}

func FuzzParseTerraform(f *testing.F) {
	addSeeds(f, "*.json", "bad/*.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseTerraform(data)
		if err != nil {
			return
		}
		checkConnection(t, c)
	})
}

// FuzzParse covers format detection and the AWS CLI JSON wrapper.
func FuzzParse(f *testing.F) {
	addSeeds(f, "*.json", "*.xml")
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, FormatAuto)
		if err != nil {
			return
		}
		checkConnection(t, c)
	})
}
