package nexthop

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"reflect"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The tests in this file need no privileges: they check the messages.

func TestNexthopMessageRoundTrip(t *testing.T) {
	for _, n := range []Nexthop{
		{ID: 1, Gateway: netip.MustParseAddr("192.0.2.2"), LinkIndex: 3, Protocol: rtProtBGP},
		{ID: 2, LinkIndex: 7, OnLink: true},
		{ID: 3, Blackhole: true},
		{ID: 10, Group: []Member{{ID: 1, Weight: 1}, {ID: 2, Weight: 256}}},
	} {
		m, err := n.message(unix.NLM_F_CREATE)
		if err != nil {
			t.Fatalf("%+v: %v", n, err)
		}
		if got := binary.NativeEndian.Uint16(m[4:]); got != unix.RTM_NEWNEXTHOP {
			t.Fatalf("message type %d", got)
		}
		got, err := parseNexthop(m[unix.NLMSG_HDRLEN:])
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, n) {
			t.Fatalf("round trip\n got %+v\nwant %+v", got, n)
		}
	}
}

func TestGroupEncoding(t *testing.T) {
	n := Nexthop{ID: 10, Group: []Member{{ID: 1}, {ID: 2, Weight: 3}}}
	m, err := n.message(0)
	if err != nil {
		t.Fatal(err)
	}
	b := []byte(m[unix.NLMSG_HDRLEN:])
	if b[0] != unix.AF_UNSPEC {
		t.Fatalf("group family %d, want AF_UNSPEC", b[0])
	}
	var grp []byte
	for _, a := range attrs(b[unix.SizeofNhmsg:]) {
		if a.typ == unix.NHA_GROUP {
			grp = a.data
		}
	}
	// struct nexthop_grp { u32 id; u8 weight (weight-1); u8 weight_high; u16 resvd2 }
	want := []byte{1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0}
	if binary.NativeEndian.Uint32([]byte{1, 0, 0, 0}) != 1 {
		want[0], want[3], want[8], want[11] = 0, 1, 0, 2
	}
	if !reflect.DeepEqual(grp, want) {
		t.Fatalf("NHA_GROUP % x, want % x", grp, want)
	}
}

func TestNexthopValidation(t *testing.T) {
	for _, n := range []Nexthop{
		{Gateway: netip.MustParseAddr("192.0.2.2"), LinkIndex: 1},
		{ID: 1, Gateway: netip.MustParseAddr("192.0.2.2")},
		{ID: 1},
		{ID: 1, Blackhole: true, LinkIndex: 2},
		{ID: 1, Group: []Member{{ID: 0}}},
		{ID: 1, Group: []Member{{ID: 1}}},
		{ID: 1, Group: []Member{{ID: 2, Weight: 257}}},
		{ID: 1, LinkIndex: 2, Group: []Member{{ID: 2}}},
	} {
		if _, err := n.message(0); err == nil {
			t.Errorf("%+v accepted", n)
		}
	}
}

func TestRouteMessageRoundTrip(t *testing.T) {
	for _, r := range []Route{
		{Dst: netip.MustParsePrefix("10.1.2.0/24"), NexthopID: 10, Table: unix.RT_TABLE_MAIN, Protocol: rtProtBGP},
		{Dst: netip.MustParsePrefix("0.0.0.0/0"), NexthopID: 1, Table: 1000, Protocol: rtProtBGP, Priority: 20},
		{Dst: netip.MustParsePrefix("10.9.0.0/16"), Gateway: netip.MustParseAddr("192.0.2.2"), LinkIndex: 4, Table: 100, Protocol: 17},
		{Dst: netip.MustParsePrefix("10.200.0.0/16"), Type: TypeUnreachable, Table: unix.RT_TABLE_MAIN, Protocol: 200, Priority: 4000000000},
		{Dst: netip.MustParsePrefix("2001:db8:200::/48"), Type: TypeUnreachable, Table: 1000, Protocol: 200, Priority: 7},
	} {
		m, err := r.message(unix.RTM_NEWROUTE, 0)
		if err != nil {
			t.Fatal(err)
		}
		got, typ, err := parseRoute(m[unix.NLMSG_HDRLEN:])
		if err != nil {
			t.Fatal(err)
		}
		if typ != r.rtType() || !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip type %d\n got %+v\nwant %+v", typ, got, r)
		}
	}
}

func TestRouteValidation(t *testing.T) {
	for _, r := range []Route{
		{NexthopID: 1},
		{Dst: netip.MustParsePrefix("2001:db8::/32"), NexthopID: 1},
		{Dst: netip.MustParsePrefix("10.0.0.0/8")},
		{Dst: netip.MustParsePrefix("10.0.0.0/8"), NexthopID: 1, LinkIndex: 2},
		{Dst: netip.MustParsePrefix("10.0.0.0/8"), Gateway: netip.MustParseAddr("2001:db8::1")},
		{Dst: netip.MustParsePrefix("10.0.0.0/8"), Type: TypeUnreachable, NexthopID: 1},
		{Dst: netip.MustParsePrefix("10.0.0.0/8"), Type: TypeUnreachable, LinkIndex: 1},
		{Type: TypeUnreachable},
		{Dst: netip.MustParsePrefix("10.0.0.0/8"), Type: unix.RTN_LOCAL},
	} {
		if _, err := r.message(unix.RTM_NEWROUTE, 0); err == nil {
			t.Errorf("%+v accepted", r)
		}
	}
}

func TestAckError(t *testing.T) {
	// errno -EEXIST, the capped original header, then NLMSGERR_ATTR_MSG.
	data := make([]byte, 4+unix.NLMSG_HDRLEN)
	binary.NativeEndian.PutUint32(data, uint32(0xffffffff-uint32(syscall.EEXIST)+1))
	data = message(data).attr(unix.NLMSGERR_ATTR_MSG, []byte("Nexthop id already exists\x00"))
	err := ackError(rawMsg{typ: unix.NLMSG_ERROR, flags: unix.NLM_F_ACK_TLVS | unix.NLM_F_CAPPED, data: data})
	if !errors.Is(err, syscall.EEXIST) || err.Error() != "file exists: Nexthop id already exists" {
		t.Fatalf("got %v", err)
	}
	if err := ackError(rawMsg{typ: unix.NLMSG_ERROR, data: make([]byte, 20)}); err != nil {
		t.Fatalf("ack: %v", err)
	}
	if err := ackError(rawMsg{typ: unix.NLMSG_ERROR, data: []byte{1}}); err == nil {
		t.Fatal("short error message accepted")
	}
}

// FuzzParse feeds arbitrary kernel answers to the message parsers: they
// must return an error or a value, never panic.
func FuzzParse(f *testing.F) {
	n := Nexthop{ID: 10, Group: []Member{{ID: 1}, {ID: 2, Weight: 3}}}
	m, _ := n.message(0)
	f.Add([]byte(m[unix.NLMSG_HDRLEN:]))
	r := Route{Dst: netip.MustParsePrefix("10.1.2.0/24"), NexthopID: 10, Protocol: rtProtBGP}
	m, _ = r.message(unix.RTM_NEWROUTE, 0)
	f.Add([]byte(m[unix.NLMSG_HDRLEN:]))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		parseNexthop(b)
		parseRoute(b)
		ackError(rawMsg{flags: unix.NLM_F_ACK_TLVS | unix.NLM_F_CAPPED, data: b})
	})
}
