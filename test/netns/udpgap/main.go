// Command udpgap measures how a path behaves across a failover: a sender
// streams numbered, timestamped UDP packets at a fixed rate, and a receiver
// reports how many arrived, how many were lost, the longest gap between
// arrivals (as time and as skipped sequence numbers) and reordering. At a
// steady rate the packets lost measure an outage even when the receiver was
// slow to read them; the gap is what the receiver saw.
//
//	udpgap send -to 10.200.0.10:9000 -pps 1000 -duration 10s
//	udpgap recv -listen :9000 -duration 12s -json
//
// One sender can stream to several destinations at once (-to A:P,B:P): each
// gets every sequence number on the same schedule, and each needs its own
// receiver (e.g. one per address, -listen A:P).
//
// The receiver exits when -duration has passed, or 100 ms after the run's
// last planned packet arrived. Start it first and give it a longer
// -duration than the sender. Latencies compare the sender's and the
// receiver's clocks, so they only mean something on one machine (as in the
// namespace lab).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "udpgap:", err)
		os.Exit(1)
	}
}

const usage = "usage: udpgap send -to HOST:PORT[,HOST:PORT...] [-pps N] [-duration D] [-max N] [-size B] [-json]\n" +
	"       udpgap recv -listen ADDR [-duration D] [-json]"

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "send":
		return runSend(ctx, args[1:], stdout, stderr)
	case "recv":
		return runRecv(ctx, args[1:], stdout, stderr)
	default:
		return fmt.Errorf("unknown command %q\n%s", args[0], usage)
	}
}

// maxDestinations bounds -to.
const maxDestinations = 16

// sendConfig is what `udpgap send` was asked to do.
type sendConfig struct {
	to       string // HOST:PORT, or several separated by commas
	pps      int
	duration time.Duration
	max      int
	size     int
}

// planned is the number of packets the run sends: pps x duration, at most max.
func (c sendConfig) planned() uint64 {
	n := uint64(c.duration.Seconds() * float64(c.pps))
	return min(n, uint64(c.max))
}

// destinations is -to split at its commas.
func (c sendConfig) destinations() []string { return strings.Split(c.to, ",") }

func (c sendConfig) validate() error {
	dsts := c.destinations()
	switch {
	case c.to == "":
		return errors.New("-to: missing (HOST:PORT)")
	case len(dsts) > maxDestinations:
		return fmt.Errorf("-to: %d destinations, at most %d", len(dsts), maxDestinations)
	case slices.Contains(dsts, ""):
		return fmt.Errorf("-to %q: an empty destination", c.to)
	case c.pps <= 0 || c.pps > 1_000_000:
		return fmt.Errorf("-pps: %d not in 1..1000000", c.pps)
	case c.duration <= 0:
		return fmt.Errorf("-duration: %v not positive", c.duration)
	case c.max <= 0 || c.max > maxPackets:
		return fmt.Errorf("-max: %d not in 1..%d", c.max, maxPackets)
	case c.size < headerLen || c.size > 65000:
		return fmt.Errorf("-size: %d not in %d..65000", c.size, headerLen)
	case c.planned() == 0:
		return fmt.Errorf("-duration %v at -pps %d: no packet to send", c.duration, c.pps)
	}
	return nil
}

// SendReport is what the sender did; printed as JSON with -json.
type SendReport struct {
	Run uint32 `json:"run"`
	// Planned is the packets planned for each destination.
	Planned uint64 `json:"planned"`
	// Sent and Errors add up every destination's.
	Sent uint64 `json:"sent"`
	// Errors counts failed writes (e.g. no route while a path fails over);
	// their sequence numbers are skipped, as if the packet had been lost.
	Errors    uint64  `json:"send_errors"`
	LastError string  `json:"last_error,omitempty"`
	Seconds   float64 `json:"seconds"`
	// MaxLateMs is how far behind its schedule the sender fell at worst
	// (it then sends the overdue packets at once to catch up).
	MaxLateMs float64 `json:"max_late_ms"`
	// Destinations is each destination's share, in the order of -to.
	Destinations []DestReport `json:"destinations"`
}

// DestReport is what the sender did for one destination.
type DestReport struct {
	To        string `json:"to"`
	Sent      uint64 `json:"sent"`
	Errors    uint64 `json:"send_errors"`
	LastError string `json:"last_error,omitempty"`
}

func runSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c sendConfig
	fs.StringVar(&c.to, "to", "", "destination HOST:PORT")
	fs.IntVar(&c.pps, "pps", 1000, "packets per second")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long to send")
	fs.IntVar(&c.max, "max", 1_000_000, "at most this many packets")
	fs.IntVar(&c.size, "size", 64, "UDP payload bytes")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.validate(); err != nil {
		return err
	}
	var conns []io.Writer
	for _, to := range c.destinations() {
		conn, err := net.Dial("udp", to)
		if err != nil {
			return fmt.Errorf("-to %s: %w", to, err)
		}
		defer conn.Close()
		conns = append(conns, conn)
	}
	rep, err := send(ctx, conns, c)
	if err != nil {
		return err
	}
	return printReport(stdout, *asJSON, rep, fmt.Sprintf(
		"run %08x: sent %d of %d (%d to each of %d destinations) in %.3f s, %d send errors, at worst %.2f ms behind schedule",
		rep.Run, rep.Sent, rep.Planned*uint64(len(conns)), rep.Planned, len(conns), rep.Seconds, rep.Errors, rep.MaxLateMs))
}

// send writes c.planned() packets to each of conns (one per destination of
// c.to) on a fixed schedule: packet i is due at start + i/pps, to every
// destination in turn. A timer wakes the loop at the next due time; when it
// wakes late, every overdue packet goes out at once, so the rate holds on
// average and the sender never drifts.
func send(ctx context.Context, conns []io.Writer, c sendConfig) (SendReport, error) {
	rep := SendReport{Run: rand.Uint32(), Planned: c.planned(), Destinations: make([]DestReport, len(conns))}
	for i, to := range c.destinations() {
		if i < len(conns) {
			rep.Destinations[i].To = to
		}
	}
	interval := time.Second / time.Duration(c.pps)
	buf := make([]byte, c.size)
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	var seq uint64
	for seq < rep.Planned {
		select {
		case <-ctx.Done():
			rep.Seconds = time.Since(start).Seconds()
			return rep, ctx.Err()
		case <-timer.C:
		}
		now := time.Now()
		elapsed := now.Sub(start)
		due := min(uint64(elapsed/interval)+1, rep.Planned) // packets 0..due-1 are due
		if late := elapsed - time.Duration(seq)*interval; late > 0 && seq < due {
			rep.MaxLateMs = max(rep.MaxLateMs, float64(late)/float64(time.Millisecond))
		}
		for ; seq < due; seq++ {
			for i, conn := range conns {
				packet{Run: rep.Run, Seq: seq, SentNs: time.Now().UnixNano(), Planned: rep.Planned}.encode(buf)
				d := &rep.Destinations[i]
				if _, err := conn.Write(buf); err != nil {
					rep.Errors++
					d.Errors++
					rep.LastError = err.Error()
					d.LastError = rep.LastError
					continue
				}
				rep.Sent++
				d.Sent++
			}
		}
		timer.Reset(time.Until(start.Add(time.Duration(seq) * interval)))
	}
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

func runRecv(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("recv", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", ":9000", "UDP address to listen on")
	duration := fs.Duration("duration", 12*time.Second, "exit after this long at most")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *duration <= 0 {
		return fmt.Errorf("-duration: %v not positive", *duration)
	}
	conn, err := net.ListenPacket("udp", *listen)
	if err != nil {
		return fmt.Errorf("-listen %s: %w", *listen, err)
	}
	defer conn.Close()
	// Room for a second of packets while the receiver is not scheduled: a
	// full buffer would count as loss on the path.
	if uc, ok := conn.(*net.UDPConn); ok {
		_ = uc.SetReadBuffer(4 << 20)
	}
	fmt.Fprintf(stderr, "udpgap: listening on %s\n", conn.LocalAddr())
	rep, err := receive(ctx, conn, *duration)
	if err != nil {
		return err
	}
	return printReport(stdout, *asJSON, rep, fmt.Sprintf(
		"run %08x: received %d of %d, lost %d (+%d at the end), longest gap %.1f ms (%d missing, ended by seq %d), "+
			"longest missing run %d, reordered %d, duplicates %d, max latency %.2f ms, foreign %d",
		rep.Run, rep.Received, rep.Planned, rep.Lost, rep.TailLost, rep.LongestGapMs, rep.GapMissing, rep.GapEndSeq,
		rep.LongestRun, rep.Reordered, rep.Dups, rep.MaxLatencyMs, rep.Foreign))
}

// lastLinger is how long the receiver waits for stragglers after the run's
// last packet arrived.
const lastLinger = 100 * time.Millisecond

// receive reads one run's packets from conn until `duration` has passed, ctx
// ends, or lastLinger after the run's last planned packet. The first valid
// packet fixes the run; other runs' packets count as foreign.
func receive(ctx context.Context, conn net.PacketConn, duration time.Duration) (Report, error) {
	start := time.Now()
	end := start.Add(duration)
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	defer stop()
	var (
		t       tracker
		run     uint32
		started bool
		foreign uint64
	)
	buf := make([]byte, 65536)
	if err := conn.SetReadDeadline(end); err != nil {
		return Report{}, fmt.Errorf("read deadline: %w", err)
	}
	for ctx.Err() == nil {
		n, _, err := conn.ReadFrom(buf)
		now := time.Now()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			}
			return Report{}, fmt.Errorf("read: %w", err)
		}
		p, err := decode(buf[:n])
		if err != nil || (started && p.Run != run) {
			foreign++
			continue
		}
		if !started {
			run, started = p.Run, true
		}
		t.add(p.Seq, p.Planned, now.Sub(start), now.Sub(time.Unix(0, p.SentNs)))
		if p.Seq == p.Planned-1 && now.Add(lastLinger).Before(end) {
			end = now.Add(lastLinger)
			if err := conn.SetReadDeadline(end); err != nil {
				return Report{}, fmt.Errorf("read deadline: %w", err)
			}
		}
	}
	rep := t.report()
	rep.Run, rep.Foreign = run, foreign
	return rep, nil
}

func printReport(w io.Writer, asJSON bool, v any, text string) error {
	if asJSON {
		enc := json.NewEncoder(w)
		return enc.Encode(v)
	}
	_, err := fmt.Fprintln(w, text)
	return err
}
