package ipsec

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

func TestGROSize(t *testing.T) {
	four := binary.NativeEndian.AppendUint32(nil, 1452)
	two := binary.NativeEndian.AppendUint16(nil, 1400)
	cases := []struct {
		oob  []byte
		want int
	}{
		{nil, 0},
		{cmsg(unix.SOL_UDP, unix.UDP_GRO, four), 1452},
		{cmsg(unix.SOL_UDP, unix.UDP_GRO, two), 1400},
		{append(cmsg(unix.SOL_IP, unix.IP_TOS, []byte{0}), cmsg(unix.SOL_UDP, unix.UDP_GRO, four)...), 1452},
		{cmsg(unix.SOL_IP, unix.IP_TOS, []byte{0}), 0},
		{[]byte{1, 2, 3}, 0},
	}
	for i, c := range cases {
		if got := groSize(c.oob); got != c.want {
			t.Errorf("case %d: %d, want %d", i, got, c.want)
		}
	}
	// A header claiming more than there is must not be trusted.
	bad := cmsg(unix.SOL_UDP, unix.UDP_GRO, four)
	(*unix.Cmsghdr)(unsafe.Pointer(&bad[0])).SetLen(200)
	if groSize(bad) != 0 {
		t.Error("overlong cmsg accepted")
	}
}
