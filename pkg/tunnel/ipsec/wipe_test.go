package ipsec

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/cgwd/cgwd/pkg/esp"
	"github.com/cgwd/cgwd/pkg/ike"
)

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return len(b) > 0
}

// Close zeroes the PSK, which the IKE session shares, and a closed tunnel
// cannot start again with a wiped key.
func TestCloseWipesPSK(t *testing.T) {
	tn := loopTunnel(t, "cgwut-w", "127.0.0.1", "127.0.0.2", "169.254.99.1/30", true)
	psk := tn.cfg.IKE.PSK
	if allZero(psk) {
		t.Fatal("PSK is zero before Close")
	}
	if err := tn.Close(); err != nil {
		t.Fatal(err)
	}
	if !allZero(psk) {
		t.Fatalf("PSK not wiped by Close: %q", psk)
	}
	if err := tn.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Start after Close: %v", err)
	}
}

// The KEYMAT the IKE session hands over is zeroed once the ESP SAs have
// taken their own copies, which still work.
func TestAddInboundWipesKeymat(t *testing.T) {
	s := esp.Suite{Cipher: esp.AESGCM16, KeyLen: 16}
	inKey, outKey := keymat(s), bytes.Repeat([]byte{7}, s.KeyMatLen())
	c := &ike.ChildSA{InSPI: 0x1001, OutSPI: 0x2002, Suite: s,
		InKey: bytes.Clone(inKey), OutKey: bytes.Clone(outKey), LocalTS: any4, RemoteTS: any4}
	d := newDataPath(esp.DefaultWindow)
	if err := d.AddInbound(c); err != nil {
		t.Fatal(err)
	}
	if !allZero(c.InKey) || !allZero(c.OutKey) {
		t.Fatal("AddInbound left the Child SA's KEYMAT in place")
	}
	if err := d.UseOutbound(c); err != nil {
		t.Fatal(err)
	}
	// The peer's inbound SA, made from the original outbound key, opens
	// what the data path's outbound SA sealed.
	peer, err := esp.NewInbound(0x2002, s, outKey, esp.DefaultWindow, any4, any4)
	if err != nil {
		t.Fatal(err)
	}
	inner := packet(1, 100, "169.254.77.2")
	out := d.out.Load()
	sealed, err := out.Seal(make([]byte, out.SealedLen(len(inner))), inner)
	if err != nil {
		t.Fatal(err)
	}
	got, err := peer.Open(sealed)
	if err != nil || !bytes.Equal(got, inner) {
		t.Fatalf("open after wipe: %v", err)
	}
}
