package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/ike/wire"
)

// walk checks m's payload chain the way a receiver must: every length
// inside the message, the chain ending exactly at its end. It returns the
// payload types in order.
func walk(m []byte) ([]uint8, error) {
	if _, err := wire.ParseHeader(m); err != nil {
		return nil, err
	}
	var types []uint8
	next, b := m[16], m[28:]
	for next != 0 {
		if len(b) < 4 {
			return types, fmt.Errorf("payload %d: %d bytes left for its header", next, len(b))
		}
		l := int(binary.BigEndian.Uint16(b[2:]))
		if l < 4 || l > len(b) {
			return types, fmt.Errorf("payload %d: length %d with %d bytes left", next, l, len(b))
		}
		types = append(types, next)
		if next == ptSK {
			return types, nil // its next field names the first inner payload
		}
		next, b = b[0], b[l:]
	}
	if len(b) != 0 {
		return types, fmt.Errorf("%d bytes after the last payload", len(b))
	}
	return types, nil
}

func TestMessagesAreWellFormed(t *testing.T) {
	for name, tc := range map[string]struct {
		m    []byte
		want []uint8
	}{
		"init": {initRequest(), []uint8{ptSA, ptKE, ptNonce, ptNotify, ptNotify}},
		"delete-ike": {message(header{spiI: 1, spiR: 2, exch: exchInfo}, []payload{del(protoIKE, 0, 0, nil)}),
			[]uint8{ptDelete}},
		"create-child": {message(header{spiI: 1, spiR: 2, exch: exchChild}, []payload{espProposal(), nonce(), ts(ptTSi), ts(ptTSr)}),
			[]uint8{ptSA, ptNonce, ptTSi, ptTSr}},
		"sk": {message(header{spiI: 1, spiR: 2, exch: exchInfo}, []payload{skForged([]payload{del(protoIKE, 0, 0, nil)})}),
			[]uint8{ptSK}},
	} {
		got, err := walk(tc.m)
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("%s: payloads %v (%v), want %v", name, got, err, tc.want)
		}
	}
	if l := len(ecpPublic); l != 96 {
		t.Errorf("ecp384 public value is %d bytes, want 96", l)
	}
}

func TestDeleteBombClaimsHugeCounts(t *testing.T) {
	c := config{mode: "delete-bomb", exchange: "init", src: netip.MustParseAddrPort("203.0.113.10:500"),
		dst: netip.MustParseAddrPort("198.51.100.2:500"), msgIDs: 1}
	gen, err := generator(c, &Report{})
	if err != nil {
		t.Fatal(err)
	}
	m := gen(0)
	types, err := walk(m)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(types, []byte{ptDelete}); n != 64 {
		t.Fatalf("%d Delete payloads, want 64", n)
	}
	if d := m[28:36]; d[4] != protoIKE || d[5] != 0 || binary.BigEndian.Uint16(d[6:]) != 0xffff || len(m) > 1000 {
		t.Fatalf("first Delete %x, message %d bytes: want SPI size 0, 65535 SPIs, under 1000 bytes", d, len(m))
	}
}

func TestMalformedModesAreMalformed(t *testing.T) {
	for i := range 5 {
		if _, err := walk(truncated(i)); err == nil {
			t.Errorf("truncated variant %d is well-formed", i)
		}
	}
	for i := range 4 {
		m := oversized(i)
		if len(m)+4+28 > 1500 {
			t.Errorf("oversized variant %d is %d bytes: more than a 1500-byte IP packet", i, len(m))
		}
		types, err := walk(m)
		if i == 2 && (err != nil || len(types) < 100) {
			t.Errorf("oversized variant 2: %d payloads (%v), want over 100", len(types), err)
		}
		if i < 2 && err == nil {
			t.Errorf("oversized variant %d is well-formed", i)
		}
	}
}

func TestUDPPacketChecksums(t *testing.T) {
	src, dst := netip.MustParseAddrPort("203.0.113.10:4500"), netip.MustParseAddrPort("198.51.100.2:4500")
	pkt := udpPacket(src, dst, []byte("hello, odd length"))
	if checksum(0, pkt[:20]) != 0xffff {
		t.Error("IP header checksum does not verify")
	}
	u := pkt[20:]
	pseudo := append(append(append([]byte{}, pkt[12:20]...), 0, 17), u[4], u[5])
	if checksum(uint32(checksum(0, pseudo)), u) != 0xffff {
		t.Error("UDP checksum does not verify")
	}
	p, ok := udpPayload(pkt, src, dst)
	if !ok || string(p) != "hello, odd length" {
		t.Errorf("udpPayload = %q, %v", p, ok)
	}
	if _, ok := udpPayload(pkt, dst, src); ok {
		t.Error("udpPayload matched the wrong direction")
	}
}

func TestRunsAreBounded(t *testing.T) {
	gen := func(int) []byte { return []byte{1} }
	src, dst := netip.MustParseAddrPort("203.0.113.10:500"), netip.MustParseAddrPort("198.51.100.2:500")
	var rep Report
	send(context.Background(), config{src: src, dst: dst, count: 50, rate: 20000, duration: time.Minute}, gen, func([]byte) error { return nil }, &rep)
	if rep.Sent != 50 {
		t.Errorf("-count 50 sent %d", rep.Sent)
	}
	rep = Report{}
	start := time.Now()
	send(context.Background(), config{src: src, dst: dst, count: 1000, rate: 100, duration: 200 * time.Millisecond}, gen,
		func([]byte) error { return errors.New("ENOBUFS") }, &rep)
	if rep.Errors > 20 || time.Since(start) > 5*time.Second {
		t.Errorf("-rate 100 -duration 200ms: %d attempts in %v", rep.Errors, time.Since(start))
	}
	for _, args := range [][]string{
		{"-mode", "init-flood", "-count", "200001"},
		{"-mode", "init-flood", "-rate", "20001"},
		{"-mode", "init-flood", "-duration", "61s"},
		{"-mode", "delete-ike"},
		{"-mode", "esp-replay"},
		{"-mode", "nonsense"},
	} {
		var out, errOut strings.Builder
		if err := run(context.Background(), args, &out, &errOut); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
