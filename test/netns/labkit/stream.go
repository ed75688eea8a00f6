package labkit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"
)

// GapReport is what the receiver of a stream saw.
type GapReport struct {
	Sent, Received, Lost int
	// LongestGap is the longest gap between consecutive arrivals of any one flow.
	LongestGap time.Duration
}

func (r GapReport) String() string {
	return fmt.Sprintf("sent %d, received %d, lost %d, longest gap %v", r.Sent, r.Received, r.Lost, r.LongestGap)
}

// Stream sends one UDP flow from lab-onprem to lab-vpc at 1,000 packets/s
// for 8 s, runs during() 2 s in, and reports the longest gap between
// consecutive arrivals at the receiver.
func Stream(t testing.TB, during func()) GapReport {
	t.Helper()
	return StreamFlows(t, 1, 1000, 8*time.Second, 2*time.Second, during)
}

// StreamFlows sends pps UDP packets/s from lab-onprem to the VPC host,
// round-robin over flows sockets (each its own source port, so ECMP hashing
// spreads them), for d; it runs during() at the given offset and reports the
// longest gap any single flow saw at the receiver.
func StreamFlows(t testing.TB, flows, pps int, d, at time.Duration, during func()) GapReport {
	t.Helper()
	dst := VPCHost + ":9001"
	var rx *net.UDPConn
	if err := Do(VPC, func() (err error) {
		rx, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(VPCHost), Port: 9001})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	_ = rx.SetReadBuffer(4 << 20)
	txs := make([]net.Conn, flows)
	for i := range txs {
		if err := Do(OnPrem, func() (err error) {
			txs[i], err = net.Dial("udp4", dst)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer txs[i].Close()
	}

	type result struct {
		rep GapReport
		err error
	}
	done := make(chan result, 1)
	go func() {
		var rep GapReport
		last := make([]time.Time, flows)
		buf := make([]byte, 64)
		deadline := time.Now().Add(d + 2*time.Second)
		for {
			_ = rx.SetReadDeadline(deadline)
			n, err := rx.Read(buf)
			now := time.Now()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				done <- result{rep: rep}
				return
			}
			if err != nil {
				done <- result{err: err}
				return
			}
			if n < 8 {
				continue
			}
			f := int(binary.BigEndian.Uint32(buf))
			if f >= flows {
				continue
			}
			if !last[f].IsZero() && now.Sub(last[f]) > rep.LongestGap {
				rep.LongestGap = now.Sub(last[f])
			}
			last[f] = now
			rep.Received++
		}
	}()

	sent := make(chan int, 1)
	go func() {
		start := time.Now()
		buf := make([]byte, 64)
		seq, total := 0, int(d/time.Millisecond)*pps/1000
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for now := range tick.C {
			due := min(total, int(now.Sub(start)*time.Duration(pps)/time.Second))
			for ; seq < due; seq++ {
				binary.BigEndian.PutUint32(buf, uint32(seq%flows))
				binary.BigEndian.PutUint32(buf[4:], uint32(seq))
				_, _ = txs[seq%flows].Write(buf) // a send error is a lost packet
			}
			if seq >= total {
				break
			}
		}
		sent <- seq
	}()
	time.Sleep(at) // the stream's schedule
	during()
	n := <-sent
	res := <-done
	if res.err != nil {
		t.Fatalf("receiver: %v", res.err)
	}
	res.rep.Sent = n
	res.rep.Lost = n - res.rep.Received
	return res.rep
}
