package main

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// loopbackReceiver listens on a loopback port, receives one run there until
// ctx ends (its report goes to done), and returns the port's address and a
// socket connected to it; both close when the test ends.
func loopbackReceiver(ctx context.Context, t *testing.T, done chan<- Report) (string, net.Conn) {
	t.Helper()
	rx, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rx.Close() })
	go func() {
		rep, err := receive(ctx, rx, 20*time.Second)
		if err != nil {
			t.Error(err)
		}
		done <- rep
	}()
	tx, err := net.Dial("udp4", rx.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Close() })
	return rx.LocalAddr().String(), tx
}

// send and receive over loopback: every packet sent is accounted for. Only
// counts are asserted, never timings.
func TestSendReceiveLoopback(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan Report, 1)
	addr, tx := loopbackReceiver(ctx, t, done)
	// A foreign datagram first: counted, then ignored.
	if _, err := tx.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	cfg := sendConfig{to: addr, pps: 2000, duration: 100 * time.Millisecond, max: 150, size: 100}
	sent, err := send(ctx, []io.Writer{tx}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sent.Planned != 150 || sent.Sent != 150 || sent.Errors != 0 {
		t.Fatalf("sender: %+v, want 150 of 150 planned sent", sent)
	}
	// The receiver stops on its own soon after the last packet.
	rep := <-done
	if rep.Run != sent.Run || rep.Planned != 150 || rep.Foreign != 1 {
		t.Errorf("receiver: %+v, want run %d, 150 planned, 1 foreign", rep, sent.Run)
	}
	if rep.Received+rep.Lost+rep.TailLost != 150 || rep.Dups != 0 {
		t.Errorf("receiver: %+v: received+lost+tail_lost != 150", rep)
	}
	if rep.Received < 140 { // loopback may drop a few under load, not more
		t.Errorf("receiver: %+v: received under 140 of 150 over loopback", rep)
	}
}

// One sender, two destinations, a receiver for each: every destination gets
// the whole run, and the sender accounts for each one.
func TestSendToSeveralDestinations(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var (
		addrs []string
		conns []io.Writer
		done  = make(chan Report, 2)
	)
	for range 2 {
		addr, tx := loopbackReceiver(ctx, t, done)
		addrs = append(addrs, addr)
		conns = append(conns, tx)
	}
	cfg := sendConfig{to: strings.Join(addrs, ","), pps: 2000, duration: 100 * time.Millisecond, max: 150, size: 64}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	sent, err := send(ctx, conns, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sent.Planned != 150 || sent.Sent != 300 || len(sent.Destinations) != 2 {
		t.Fatalf("sender: %+v, want 150 planned for each of 2 destinations, 300 sent", sent)
	}
	for i, d := range sent.Destinations {
		if d.To != addrs[i] || d.Sent+d.Errors != 150 {
			t.Errorf("destination %d: %+v, want %s with 150 accounted for", i, d, addrs[i])
		}
	}
	for range 2 {
		rep := <-done
		if rep.Run != sent.Run || rep.Planned != 150 || rep.Received+rep.Lost+rep.TailLost != 150 || rep.Received < 140 {
			t.Errorf("receiver: %+v, want run %d with (nearly) all 150 packets", rep, sent.Run)
		}
	}
}

// The receiver ends with its context, e.g. on SIGTERM.
func TestReceiveStopsWithContext(t *testing.T) {
	rx, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep, err := receive(ctx, rx, time.Hour)
	if err != nil || rep.Received != 0 {
		t.Errorf("receive with ended context: %+v, %v", rep, err)
	}
}

func TestRunUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"bogus"}, {"send"}, {"recv", "-duration", "0s"}, {"send", "-to", "127.0.0.1:9", "-pps", "x"}} {
		if err := run(context.Background(), args, new(nopWriter), new(nopWriter)); err == nil {
			t.Errorf("run(%q): no error", args)
		}
	}
}

type nopWriter struct{}

func (*nopWriter) Write(p []byte) (int, error) { return len(p), nil }
