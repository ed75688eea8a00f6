package ipsec

import "encoding/binary"

// clampMSS lowers the MSS option of an IPv4 TCP SYN in pkt to mss when it
// is larger, updating the TCP checksum (RFC 1624), and reports whether it
// did. Anything else (other protocols, fragments, short or odd headers) is
// left as it is.
func clampMSS(pkt []byte, mss uint16) bool {
	if len(pkt) < 20 || pkt[0]>>4 != 4 || pkt[9] != 6 {
		return false
	}
	ihl := int(pkt[0]&0xf) * 4
	if ihl < 20 || binary.BigEndian.Uint16(pkt[6:])&0x1fff != 0 || len(pkt) < ihl+20 {
		return false // not the first fragment's TCP header
	}
	tcp := pkt[ihl:]
	if tcp[13]&0x02 == 0 { // SYN
		return false
	}
	doff := int(tcp[12]>>4) * 4
	if doff < 20 || len(tcp) < doff {
		return false
	}
	for opts := tcp[20:doff]; len(opts) > 0; {
		switch kind := opts[0]; {
		case kind == 0: // end of options
			return false
		case kind == 1: // no-op
			opts = opts[1:]
			continue
		case len(opts) < 2 || int(opts[1]) < 2 || int(opts[1]) > len(opts):
			return false
		case kind == 2 && opts[1] == 4:
			old := binary.BigEndian.Uint16(opts[2:])
			if old <= mss {
				return false
			}
			binary.BigEndian.PutUint16(opts[2:], mss)
			// HC' = ~(~HC + ~m + m')
			sum := uint32(^binary.BigEndian.Uint16(tcp[16:])) + uint32(^old) + uint32(mss)
			sum = (sum & 0xffff) + sum>>16
			sum = (sum & 0xffff) + sum>>16
			binary.BigEndian.PutUint16(tcp[16:], ^uint16(sum))
			return true
		}
		opts = opts[opts[1]:]
	}
	return false
}
