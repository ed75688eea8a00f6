package esp

import "testing"

// TestAWSTunnelMTU checks every row of AWS's table (customer gateway best
// practices: MTU and MSS (IPv4) by algorithm, NAT-T disabled and enabled).
func TestAWSTunnelMTU(t *testing.T) {
	for _, r := range []struct {
		s        Suite
		natt     bool
		mtu, mss int
	}{
		{Suite{Cipher: AESGCM16, KeyLen: 16}, false, 1446, 1406},
		{Suite{Cipher: AESGCM16, KeyLen: 32}, true, 1438, 1398},
		{Suite{Cipher: AESCBC, KeyLen: 16, Integ: HMACSHA1_96}, false, 1438, 1398},
		{Suite{Cipher: AESCBC, KeyLen: 32, Integ: HMACSHA256_128}, false, 1438, 1398},
		{Suite{Cipher: AESCBC, KeyLen: 16, Integ: HMACSHA1_96}, true, 1422, 1382},
		{Suite{Cipher: AESCBC, KeyLen: 32, Integ: HMACSHA256_128}, true, 1422, 1382},
		{Suite{Cipher: AESCBC, KeyLen: 32, Integ: HMACSHA384_192}, false, 1422, 1382},
		{Suite{Cipher: AESCBC, KeyLen: 32, Integ: HMACSHA384_192}, true, 1422, 1382},
		{Suite{Cipher: AESCBC, KeyLen: 32, Integ: HMACSHA512_256}, false, 1422, 1382},
		{Suite{Cipher: AESCBC, KeyLen: 32, Integ: HMACSHA512_256}, true, 1406, 1366},
	} {
		if mtu := AWSTunnelMTU(r.s, r.natt); mtu != r.mtu || TCPMSS(mtu) != r.mss {
			t.Errorf("%s natt=%v: MTU %d MSS %d, AWS's table says %d/%d", r.s, r.natt, mtu, TCPMSS(mtu), r.mtu, r.mss)
		}
		if AWSTunnelMTU(r.s, r.natt) > MaxAWSTunnelMTU {
			t.Errorf("%s: above MaxAWSTunnelMTU", r.s)
		}
		// cgwd's own ESP framing of an MTU-sized packet fits a 1500-byte
		// outer packet: outer IPv4 20, UDP 8 (NAT-T) and the ESP packet.
		o, err := NewOutbound(1, r.s, make([]byte, r.s.KeyMatLen()))
		if err != nil {
			t.Fatal(err)
		}
		udp := 0
		if r.natt {
			udp = 8
		}
		if n := 20 + udp + o.SealedLen(r.mtu); n > 1500 {
			t.Errorf("%s natt=%v: a %d-byte inner packet makes a %d-byte outer one", r.s, r.natt, r.mtu, n)
		}
	}
}
