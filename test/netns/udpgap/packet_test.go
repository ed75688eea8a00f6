package main

import (
	"errors"
	"testing"
)

func TestPacketRoundTrip(t *testing.T) {
	in := packet{Run: 0xdeadbeef, Seq: 41, SentNs: 1_700_000_000_123_456_789, Planned: 42}
	b := make([]byte, 64)
	for i := range b {
		b[i] = 0xff // padding must come out zeroed
	}
	in.encode(b)
	out, err := decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Errorf("decode(encode(%+v)) = %+v", in, out)
	}
	for i, c := range b[headerLen:] {
		if c != 0 {
			t.Fatalf("padding byte %d = %#x, want 0", i, c)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	good := make([]byte, headerLen)
	packet{Run: 1, Seq: 1, Planned: 2}.encode(good)
	for name, b := range map[string][]byte{
		"empty":       nil,
		"short":       good[:headerLen-1],
		"bad magic":   append([]byte("XGAP"), good[4:]...),
		"seq>planned": func() []byte { b := make([]byte, headerLen); packet{Seq: 2, Planned: 2}.encode(b); return b }(),
		"huge run":    func() []byte { b := make([]byte, headerLen); packet{Planned: maxPackets + 1}.encode(b); return b }(),
	} {
		if _, err := decode(b); !errors.Is(err, errNotUdpgap) {
			t.Errorf("%s: err = %v, want errNotUdpgap", name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	b := make([]byte, 64)
	packet{Run: 7, Seq: 3, SentNs: 12345, Planned: 1000}.encode(b)
	f.Add(b)
	f.Add(b[:headerLen])
	f.Add([]byte("UGAP"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := decode(data)
		if err != nil {
			return
		}
		// Whatever decodes must be safe to account for and re-encode the same.
		var tr tracker
		tr.add(p.Seq, p.Planned, 0, 0)
		if r := tr.report(); r.Received != 1 {
			t.Fatalf("decoded %+v, tracker received %d", p, r.Received)
		}
		out := make([]byte, headerLen)
		p.encode(out)
		if string(out) != string(data[:headerLen]) {
			t.Fatalf("re-encoding %+v gave %x, want %x", p, out, data[:headerLen])
		}
	})
}
