package netns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// inNetns runs fn on an OS thread switched into namespace ns; sockets fn
// creates stay in ns after it returns.
func inNetns(ns string, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	target, err := netns.GetFromName(ns)
	if err != nil {
		return err
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return err
	}
	defer netns.Set(orig)
	return fn()
}

// gapReport is what the receiver of a stream saw.
type gapReport struct {
	Sent, Received, Lost int
	LongestGap           time.Duration
}

func (r gapReport) String() string {
	return fmt.Sprintf("sent %d, received %d, lost %d, longest gap %v", r.Sent, r.Received, r.Lost, r.LongestGap)
}

// stream sends UDP packets with sequence numbers from lab-onprem to lab-vpc
// at 1,000 packets/s for 8 s, runs during() 2 s in, and reports the longest
// gap between consecutive arrivals at the receiver.
func stream(t *testing.T, during func()) gapReport {
	t.Helper()
	const (
		pps      = 1000
		duration = 8 * time.Second
		dst      = "10.200.0.10:9000"
	)
	var rx *net.UDPConn
	if err := inNetns("lab-vpc", func() (err error) {
		rx, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP("10.200.0.10"), Port: 9000})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	var tx net.Conn
	if err := inNetns("lab-onprem", func() (err error) {
		tx, err = net.Dial("udp4", dst)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer tx.Close()

	type result struct {
		rep gapReport
		err error
	}
	done := make(chan result, 1)
	go func() {
		var rep gapReport
		var last time.Time
		buf := make([]byte, 64)
		deadline := time.Now().Add(duration + 2*time.Second)
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
			if !last.IsZero() && now.Sub(last) > rep.LongestGap {
				rep.LongestGap = now.Sub(last)
			}
			last = now
			rep.Received++
			if seq := int(binary.BigEndian.Uint64(buf)); seq+1 > rep.Sent {
				rep.Sent = seq + 1
			}
		}
	}()

	sendDone := make(chan int, 1)
	go func() {
		start := time.Now()
		buf := make([]byte, 64)
		seq := 0
		tick := time.NewTicker(time.Second / pps)
		defer tick.Stop()
		for now := range tick.C {
			due := int(now.Sub(start) * pps / time.Second) // catch up after a late tick
			for ; seq < due && seq < int(duration/time.Second)*pps; seq++ {
				binary.BigEndian.PutUint64(buf, uint64(seq))
				_, _ = tx.Write(buf) // a send error during the cut is a lost packet
			}
			if now.Sub(start) >= duration {
				break
			}
		}
		sendDone <- seq
	}()
	time.Sleep(2 * time.Second)
	during()
	sent := <-sendDone
	res := <-done
	if res.err != nil {
		t.Fatalf("receiver: %v", res.err)
	}
	res.rep.Sent = sent
	res.rep.Lost = sent - res.rep.Received
	return res.rep
}
