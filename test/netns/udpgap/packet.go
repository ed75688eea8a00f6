package main

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// headerLen is the size of a packet's header; the rest is padding.
const headerLen = 32

// magic starts every udpgap packet.
var magic = [4]byte{'U', 'G', 'A', 'P'}

// packet is one datagram of a stream:
//
//	0  magic "UGAP"
//	4  run ID (uint32, big endian): one per sender run
//	8  sequence number (uint64), 0, 1, 2, ...
//	16 send time (int64, Unix nanoseconds)
//	24 planned packet count of the run (uint64)
type packet struct {
	Run     uint32
	Seq     uint64
	SentNs  int64
	Planned uint64
}

// encode writes p into b (len(b) >= headerLen) and zeroes the padding.
func (p packet) encode(b []byte) {
	copy(b[0:4], magic[:])
	binary.BigEndian.PutUint32(b[4:8], p.Run)
	binary.BigEndian.PutUint64(b[8:16], p.Seq)
	binary.BigEndian.PutUint64(b[16:24], uint64(p.SentNs))
	binary.BigEndian.PutUint64(b[24:32], p.Planned)
	clear(b[headerLen:])
}

var errNotUdpgap = errors.New("not a udpgap packet")

// decode parses a datagram; padding after the header is ignored.
func decode(b []byte) (packet, error) {
	if len(b) < headerLen {
		return packet{}, fmt.Errorf("%w: %d bytes, want at least %d", errNotUdpgap, len(b), headerLen)
	}
	if [4]byte(b[0:4]) != magic {
		return packet{}, fmt.Errorf("%w: bad magic %q", errNotUdpgap, b[0:4])
	}
	p := packet{
		Run:     binary.BigEndian.Uint32(b[4:8]),
		Seq:     binary.BigEndian.Uint64(b[8:16]),
		SentNs:  int64(binary.BigEndian.Uint64(b[16:24])),
		Planned: binary.BigEndian.Uint64(b[24:32]),
	}
	if p.Planned > maxPackets {
		return packet{}, fmt.Errorf("%w: planned count %d over %d", errNotUdpgap, p.Planned, maxPackets)
	}
	if p.Seq >= p.Planned {
		return packet{}, fmt.Errorf("%w: sequence %d not below planned count %d", errNotUdpgap, p.Seq, p.Planned)
	}
	return p, nil
}
