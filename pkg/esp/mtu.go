package esp

// AWS's customer gateway best practices give the tunnel MTU per ESP
// algorithm, with and without NAT traversal (ESP in UDP): the largest
// inner packet that reaches AWS unfragmented. The TCP MSS is the MTU less
// 40 bytes (IPv4 and TCP headers).

// MaxAWSTunnelMTU is the largest MTU in AWS's table (AES-GCM without NAT-T).
const MaxAWSTunnelMTU = 1446

// AWSTunnelMTU is the tunnel MTU AWS publishes for suite s, natt when ESP
// travels in UDP (as cgwd's always does). A suite outside the table gets
// its smallest entry.
func AWSTunnelMTU(s Suite, natt bool) int {
	mtu := [2]int{1422, 1406} // without, with NAT-T; also for anything unknown
	switch {
	case s.Cipher == AESGCM16:
		mtu = [2]int{1446, 1438}
	case s.Cipher == AESCBC && (s.Integ == HMACSHA1_96 || s.Integ == HMACSHA256_128):
		mtu = [2]int{1438, 1422}
	case s.Cipher == AESCBC && s.Integ == HMACSHA384_192:
		mtu = [2]int{1422, 1422}
	}
	if natt {
		return mtu[1]
	}
	return mtu[0]
}

// TCPMSS is the TCP maximum segment size that fits an IPv4 packet in mtu.
func TCPMSS(mtu int) int { return mtu - 40 }
