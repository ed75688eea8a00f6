package labkit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// UDPGapBin is test/netns/udpgap, built by the first TwoWay of a test run.
var UDPGapBin = filepath.Join(Root, "bin/udpgap")

var (
	udpgapOnce sync.Once
	udpgapErr  error
	udpgapRT   []string // chrt -f 10 where the machine allows real-time scheduling
)

func buildUDPGap(t testing.TB) {
	t.Helper()
	udpgapOnce.Do(func() {
		cmd := exec.Command("go", "build", "-o", UDPGapBin, "./test/netns/udpgap")
		cmd.Dir = Root
		if out, err := cmd.CombinedOutput(); err != nil {
			udpgapErr = fmt.Errorf("go build udpgap: %v\n%s", err, out)
		}
		if exec.Command("chrt", "-f", "10", "true").Run() == nil {
			udpgapRT = []string{"chrt", "-f", "10"}
		}
	})
	if udpgapErr != nil {
		t.Fatal(udpgapErr)
	}
}

// GapRun is what one direction of a TwoWay stream saw: the receiver's
// report (udpgap recv -json) and how far the sender ever fell behind.
type GapRun struct {
	Run          uint32  `json:"run"`
	Planned      uint64  `json:"planned"`
	Received     uint64  `json:"received"`
	Lost         uint64  `json:"lost"`
	TailLost     uint64  `json:"tail_lost"`
	LongestGapMs float64 `json:"longest_gap_ms"`
	LongestRun   uint64  `json:"longest_missing_run"`
	SenderLateMs float64 `json:"-"`
}

// Gap is the longest time between two arrivals.
func (r GapRun) Gap() time.Duration { return time.Duration(r.LongestGapMs * float64(time.Millisecond)) }

func (r GapRun) String() string {
	return fmt.Sprintf("gap %.0f ms, lost %d (+%d at the end) of %d, longest run of lost %d, sender at worst %.1f ms late",
		r.LongestGapMs, r.Lost, r.TailLost, r.Planned, r.LongestRun, r.SenderLateMs)
}

// udpgapProc is one udpgap process of a stream.
type udpgapProc struct {
	cmd  *exec.Cmd
	out  bytes.Buffer // read it only once done is closed
	err  Buffer
	done chan struct{}
}

func startUDPGap(t testing.TB, ctx context.Context, ns string, args ...string) *udpgapProc {
	t.Helper()
	p := &udpgapProc{done: make(chan struct{})}
	argv := append(append(append([]string{}, udpgapRT...), UDPGapBin), args...)
	p.cmd = CommandContext(ctx, ns, argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.err
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	return p
}

// wait waits for the process and decodes its JSON report into v.
func (p *udpgapProc) wait(t testing.TB, what string, v any) {
	t.Helper()
	<-p.done
	if st := p.cmd.ProcessState; st == nil || !st.Success() {
		t.Fatalf("udpgap %s: %v\n%s%s", what, st, p.out.String(), p.err.String())
	}
	if err := json.Unmarshal(p.out.Bytes(), v); err != nil {
		t.Fatalf("udpgap %s: %v: %s", what, err, p.out.String())
	}
}

// TwoWay streams udpgap packets (test/netns/udpgap) at pps both ways
// between lab-onprem and the VPC host for d, runs during() at offset at, and
// returns what each receiver saw: up (lab-onprem -> lab-vpc) and down
// (lab-vpc -> lab-onprem). Every process runs as SCHED_FIFO where the
// machine allows it, as bench-failover.sh's do, so that a busy machine
// starves neither.
func TwoWay(t testing.TB, pps int, d, at time.Duration, during func()) (up, down GapRun) {
	t.Helper()
	buildUDPGap(t)
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	dirs := []struct {
		from, to, dst string
		rep           *GapRun
	}{
		{OnPrem, VPC, VPCHost + ":9100", &up},
		{VPC, OnPrem, OnPremHost + ":9101", &down},
	}
	var rx, tx []*udpgapProc
	for _, dir := range dirs {
		p := startUDPGap(t, ctx, dir.to, "recv", "-listen", dir.dst, "-duration", (d + 10*time.Second).String(), "-json")
		rx = append(rx, p)
		Eventually(t, 10*time.Second, "udpgap receiver in "+dir.to, func() error {
			if !strings.Contains(p.err.String(), "listening on") {
				return fmt.Errorf("not listening yet")
			}
			return nil
		})
	}
	for _, dir := range dirs {
		tx = append(tx, startUDPGap(t, ctx, dir.from, "send", "-to", dir.dst, "-pps", fmt.Sprint(pps), "-duration", d.String(), "-json"))
	}
	time.Sleep(at) // the stream's schedule
	during()
	for i, dir := range dirs {
		var sent struct {
			Run       uint32  `json:"run"`
			MaxLateMs float64 `json:"max_late_ms"`
		}
		tx[i].wait(t, "send from "+dir.from, &sent)
		rx[i].wait(t, "recv in "+dir.to, dir.rep)
		if dir.rep.Received > 0 && dir.rep.Run != sent.Run {
			t.Fatalf("udpgap in %s received run %08x, sent %08x", dir.to, dir.rep.Run, sent.Run)
		}
		dir.rep.SenderLateMs = sent.MaxLateMs
	}
	return up, down
}
