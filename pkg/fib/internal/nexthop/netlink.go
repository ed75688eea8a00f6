package nexthop

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// Handle is an rtnetlink socket in one network namespace. It is not safe
// for concurrent use.
type Handle struct {
	fd  int
	seq uint32
	pid uint32
	buf []byte
}

// Open returns a Handle in the network namespace of the calling thread.
func Open() (*Handle, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("nexthop: netlink socket: %w", err)
	}
	h := &Handle{fd: fd, buf: make([]byte, 1<<20)}
	if err := h.init(); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("nexthop: netlink socket: %w", err)
	}
	return h, nil
}

func (h *Handle) init() error {
	if err := unix.Bind(h.fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	sa, err := unix.Getsockname(h.fd)
	if err != nil {
		return err
	}
	h.pid = sa.(*unix.SockaddrNetlink).Pid
	// Best effort: extended error messages, short acks, a receive buffer
	// large enough for a batch of acks.
	unix.SetsockoptInt(h.fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1)
	unix.SetsockoptInt(h.fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	if unix.SetsockoptInt(h.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20) != nil {
		unix.SetsockoptInt(h.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	}
	return nil
}

// Close closes the socket.
func (h *Handle) Close() error { return unix.Close(h.fd) }

// message is an rtnetlink request under construction.
type message []byte

func newMessage(typ, flags uint16, fixed []byte) message {
	m := make(message, unix.NLMSG_HDRLEN, 64)
	binary.NativeEndian.PutUint16(m[4:], typ)
	binary.NativeEndian.PutUint16(m[6:], flags|unix.NLM_F_REQUEST)
	m = append(m, fixed...)
	return m.pad()
}

func (m message) pad() message {
	for len(m)%4 != 0 {
		m = append(m, 0)
	}
	return m
}

func (m message) attr(typ uint16, data []byte) message {
	var h [4]byte
	binary.NativeEndian.PutUint16(h[0:], uint16(4+len(data)))
	binary.NativeEndian.PutUint16(h[2:], typ)
	m = append(m, h[:]...)
	m = append(m, data...)
	return m.pad()
}

func (m message) u32(typ uint16, v uint32) message {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], v)
	return m.attr(typ, b[:])
}

// seal sets the length and sequence number.
func (m message) seal(seq uint32) message {
	binary.NativeEndian.PutUint32(m[0:], uint32(len(m)))
	binary.NativeEndian.PutUint32(m[8:], seq)
	return m
}

// reply is one netlink message received in answer to a request.
type reply struct {
	typ  uint16
	data []byte // payload after the netlink header
}

// do sends one request and returns the messages of its answer: for a dump
// everything up to NLMSG_DONE, otherwise anything before the ack.
func (h *Handle) do(m message) ([]reply, error) {
	dump := binary.NativeEndian.Uint16(m[6:])&unix.NLM_F_DUMP == unix.NLM_F_DUMP
	if !dump {
		binary.NativeEndian.PutUint16(m[6:], binary.NativeEndian.Uint16(m[6:])|unix.NLM_F_ACK)
	}
	h.seq++
	seq := h.seq
	if err := unix.Sendto(h.fd, m.seal(seq), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, err
	}
	var out []reply
	for {
		msgs, err := h.recv()
		if err != nil {
			return nil, err
		}
		for _, r := range msgs {
			if r.seq != seq {
				continue
			}
			switch r.typ {
			case unix.NLMSG_DONE:
				if dump {
					// A dump may end in error (e.g. interrupted).
					if len(r.data) >= 4 {
						if e := int32(binary.NativeEndian.Uint32(r.data)); e < 0 {
							return nil, syscall.Errno(-e)
						}
					}
					return out, nil
				}
			case unix.NLMSG_ERROR:
				if err := ackError(r); err != nil || !dump {
					return out, err
				}
			default:
				out = append(out, reply{typ: r.typ, data: append([]byte(nil), r.data...)})
			}
		}
	}
}

// batch sends requests (each wanting an ack) in chunks and waits for every
// ack. It returns the error of the first request that failed, with its
// index, after all acks of the chunk have been read.
func (h *Handle) batch(msgs []message) (int, error) {
	const chunkBytes = 64 << 10
	i := 0
	for i < len(msgs) {
		first := h.seq + 1
		var buf []byte
		j := i
		for ; j < len(msgs) && (j == i || len(buf)+len(msgs[j]) <= chunkBytes); j++ {
			m := msgs[j]
			binary.NativeEndian.PutUint16(m[6:], binary.NativeEndian.Uint16(m[6:])|unix.NLM_F_ACK)
			h.seq++
			buf = append(buf, m.seal(h.seq)...)
		}
		if err := unix.Sendto(h.fd, buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return i, err
		}
		pending := j - i
		failIdx, firstErr := -1, error(nil)
		for pending > 0 {
			rs, err := h.recv()
			if err != nil {
				return i, err
			}
			for _, r := range rs {
				if r.typ != unix.NLMSG_ERROR || r.seq < first || r.seq > h.seq {
					continue
				}
				pending--
				if err := ackError(r); err != nil && firstErr == nil {
					failIdx, firstErr = i+int(r.seq-first), err
				}
			}
		}
		if firstErr != nil {
			return failIdx, firstErr
		}
		i = j
	}
	return -1, nil
}

type rawMsg struct {
	typ   uint16
	flags uint16
	seq   uint32
	data  []byte
}

// recv reads one datagram and splits it into messages; data aliases h.buf.
func (h *Handle) recv() ([]rawMsg, error) {
	for {
		n, _, err := unix.Recvfrom(h.fd, h.buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		b := h.buf[:n]
		var out []rawMsg
		for len(b) >= unix.NLMSG_HDRLEN {
			l := int(binary.NativeEndian.Uint32(b[0:]))
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				return nil, fmt.Errorf("netlink: malformed message length %d", l)
			}
			out = append(out, rawMsg{
				typ:   binary.NativeEndian.Uint16(b[4:]),
				flags: binary.NativeEndian.Uint16(b[6:]),
				seq:   binary.NativeEndian.Uint32(b[8:]),
				data:  b[unix.NLMSG_HDRLEN:l],
			})
			l = (l + 3) &^ 3
			if l > len(b) {
				break
			}
			b = b[l:]
		}
		return out, nil
	}
}

// ackError decodes an NLMSG_ERROR message: nil for an ack, otherwise the
// errno with the kernel's extended message if it sent one.
func ackError(r rawMsg) error {
	if len(r.data) < 4 {
		return errors.New("netlink: short error message")
	}
	code := int32(binary.NativeEndian.Uint32(r.data))
	if code == 0 {
		return nil
	}
	err := error(syscall.Errno(-code))
	// With NETLINK_CAP_ACK the original header (16 bytes) follows, then TLVs.
	if r.flags&unix.NLM_F_ACK_TLVS != 0 && r.flags&unix.NLM_F_CAPPED != 0 && len(r.data) >= 4+unix.NLMSG_HDRLEN {
		for _, a := range attrs(r.data[4+unix.NLMSG_HDRLEN:]) {
			if a.typ == unix.NLMSGERR_ATTR_MSG && len(a.data) > 1 {
				msg := string(a.data)
				if i := len(msg) - 1; msg[i] == 0 {
					msg = msg[:i]
				}
				return &kernelError{errno: syscall.Errno(-code), msg: msg}
			}
		}
	}
	return err
}

// kernelError is an errno with the kernel's extended ack message.
type kernelError struct {
	errno syscall.Errno
	msg   string
}

func (e *kernelError) Error() string { return e.errno.Error() + ": " + e.msg }
func (e *kernelError) Unwrap() error { return e.errno }

// nlaTypeMask strips the NLA_F_NESTED and NLA_F_NET_BYTEORDER flags.
const nlaTypeMask = 0x3fff

type attr struct {
	typ  uint16
	data []byte
}

// attrs splits a buffer of netlink attributes; malformed tails are ignored.
func attrs(b []byte) []attr {
	var out []attr
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b[0:]))
		if l < 4 || l > len(b) {
			break
		}
		out = append(out, attr{typ: binary.NativeEndian.Uint16(b[2:]) & nlaTypeMask, data: b[4:l]})
		l = (l + 3) &^ 3
		if l > len(b) {
			break
		}
		b = b[l:]
	}
	return out
}
