package labkit

import (
	"strconv"
	"strings"
	"testing"
)

// Direct Connect runs through DXProvider, as a real DX cross-connect runs
// through the provider's equipment: lab.sh bridges (br-dx) a veth toward
// lab-cgw's dx0 (DXToCGW) and one toward lab-aws's dx0 (DXToAWS), and hooks
// an empty nftables chain, `bridge lab_dx cut`, on the bridge's forward path.
// A rule there acts on both directions in the same instant, as a provider's
// outage does; lib.sh's dx_cut, dx_restore and dx_link are the shell side.
const (
	DXProvider = "lab-dx" // the namespace between the two ends of DX
	DXToCGW    = "dx-cgw" // lab-dx's end of the veth to lab-cgw's dx0
	DXToAWS    = "dx-aws" // lab-dx's end of the veth to lab-aws's dx0
)

// CutDX silently drops every frame crossing DX, both ways at once, with one
// nftables rule in lab-dx. Both dx0s keep carrier, so only BFD can see the
// cut. The returned function lets DX through again.
func CutDX(t testing.TB) (restore func()) {
	t.Helper()
	return dxRule(t, "drop")
}

// LossDX drops pct% of the frames crossing DX, each direction on its own,
// until the returned function removes the rule.
func LossDX(t testing.TB, pct int) (restore func()) {
	t.Helper()
	return dxRule(t, "numgen", "random", "mod", "100", "<", strconv.Itoa(pct), "drop")
}

// dxRule adds one rule to lab-dx's cut chain and returns the function that
// deletes it by its handle, leaving any other rule there.
func dxRule(t testing.TB, rule ...string) func() {
	t.Helper()
	out := Nft(t, DXProvider, append([]string{"--echo", "--handle", "add", "rule", "bridge", "lab_dx", "cut"}, rule...)...)
	i := strings.LastIndex(out, "# handle ")
	if i < 0 {
		t.Fatalf("nft add rule in %s printed no handle:\n%s", DXProvider, out)
	}
	handle := strings.TrimSpace(out[i+len("# handle "):])
	return func() { Nft(t, DXProvider, "delete", "rule", "bridge", "lab_dx", "cut", "handle", handle) }
}

// DXLinkDown sets lab-dx's end of the veth toward side (CGW or AWS) down, so
// that only that side's dx0 loses carrier: with AWS, cgwd's dx0 stays up
// and only BFD can tell. The returned function sets it up again.
func DXLinkDown(t testing.TB, side string) (up func()) {
	t.Helper()
	dev := map[string]string{CGW: DXToCGW, AWS: DXToAWS}[side]
	if dev == "" {
		t.Fatalf("DXLinkDown: side %q, want %s or %s", side, CGW, AWS)
	}
	MustInNS(t, DXProvider, "ip", "link", "set", dev, "down")
	return func() { MustInNS(t, DXProvider, "ip", "link", "set", dev, "up") }
}

// Carrier reports whether dev in namespace ns has carrier (LOWER_UP).
func Carrier(t testing.TB, ns, dev string) bool {
	t.Helper()
	return strings.Contains(MustInNS(t, ns, "ip", "-br", "link", "show", "dev", dev), "LOWER_UP")
}
