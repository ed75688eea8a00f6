package ipsec

import (
	"encoding/binary"
	"testing"
)

// tcpChecksum is the TCP checksum of an IPv4 packet, computed in full.
func tcpChecksum(pkt []byte) uint16 {
	ihl := int(pkt[0]&0xf) * 4
	tcp := pkt[ihl:]
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(pkt[12:20])
	sum += 6 + uint32(len(tcp))
	c := append([]byte(nil), tcp...)
	c[16], c[17] = 0, 0
	add(c)
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// syn is an IPv4 TCP packet with flags and options (NOP, NOP, MSS mss,
// window scale), its checksum set.
func syn(flags byte, mss uint16) []byte {
	opts := []byte{1, 1, 2, 4, byte(mss >> 8), byte(mss), 3, 3, 7, 0}
	pkt := make([]byte, 20+20+len(opts)+2)
	pkt[0], pkt[9] = 0x45, 6
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	copy(pkt[12:], []byte{10, 10, 0, 5, 10, 200, 0, 9})
	tcp := pkt[20:]
	binary.BigEndian.PutUint16(tcp, 40000)
	binary.BigEndian.PutUint16(tcp[2:], 443)
	tcp[12] = byte((20+len(opts)+2)/4) << 4
	tcp[13] = flags
	copy(tcp[20:], opts)
	binary.BigEndian.PutUint16(tcp[16:], tcpChecksum(pkt))
	return pkt
}

func mssOf(pkt []byte) uint16 { return binary.BigEndian.Uint16(pkt[20+20+4:]) }

func TestClampMSS(t *testing.T) {
	for _, c := range []struct {
		name   string
		pkt    []byte
		mss    uint16
		want   uint16
		change bool
	}{
		{"SYN above", syn(0x02, 1460), 1398, 1398, true},
		{"SYN-ACK above", syn(0x12, 8960), 1382, 1382, true},
		{"SYN below", syn(0x02, 1200), 1398, 1200, false},
		{"not a SYN", syn(0x10, 1460), 1398, 1460, false},
	} {
		if got := clampMSS(c.pkt, c.mss); got != c.change || mssOf(c.pkt) != c.want {
			t.Errorf("%s: changed %v, MSS %d; want %v, %d", c.name, got, mssOf(c.pkt), c.change, c.want)
		}
		if sum := binary.BigEndian.Uint16(c.pkt[20+16:]); sum != tcpChecksum(c.pkt) {
			t.Errorf("%s: checksum %04x, recomputed %04x", c.name, sum, tcpChecksum(c.pkt))
		}
	}
	frag := syn(0x02, 1460)
	binary.BigEndian.PutUint16(frag[6:], 5) // a later fragment
	if clampMSS(frag, 1398) {
		t.Error("clamped a non-first fragment")
	}
	udp := syn(0x02, 1460)
	udp[9] = 17
	if clampMSS(udp, 1398) {
		t.Error("clamped UDP")
	}
}

// FuzzClampMSS: any input is left alone or changed only in the MSS and
// checksum bytes, never panics.
func FuzzClampMSS(f *testing.F) {
	f.Add(syn(0x02, 1460))
	f.Add(syn(0x12, 9000)[:45])
	f.Fuzz(func(t *testing.T, pkt []byte) {
		before := append([]byte(nil), pkt...)
		if !clampMSS(pkt, 1398) {
			if string(before) != string(pkt) {
				t.Fatal("changed a packet it did not clamp")
			}
			return
		}
		diff := 0
		for i := range pkt {
			if pkt[i] != before[i] {
				diff++
			}
		}
		if diff > 4 {
			t.Fatalf("%d bytes changed", diff)
		}
	})
}
