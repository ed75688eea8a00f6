package main

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

type arrival struct {
	seq uint64
	at  time.Duration
}

// feed runs arrivals through a tracker of a run planning `planned` packets.
func feed(planned uint64, arrivals []arrival) Report {
	var t tracker
	for _, a := range arrivals {
		t.add(a.seq, planned, a.at, time.Millisecond)
	}
	return t.report()
}

// steady is packets from..to-1 arriving 1 ms apart from `origin`.
func steady(from, to uint64, origin time.Duration) []arrival {
	var out []arrival
	for s := from; s < to; s++ {
		out = append(out, arrival{s, origin + time.Duration(s-from)*time.Millisecond})
	}
	return out
}

func TestTracker(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name     string
		planned  uint64
		arrivals []arrival
		want     Report
	}{
		{
			// The planned count comes with the packets: unknown here.
			name: "nothing arrived", planned: 10,
			want: Report{},
		},
		{
			name: "all in order", planned: 5, arrivals: steady(0, 5, 0),
			want: Report{Planned: 5, Received: 5, LongestGap: ms, GapEndSeq: 1},
		},
		{
			// 0..99 at 1 ms, then a failover: 100..349 lost, 350..399 arrive from 350 ms.
			name: "one outage", planned: 400,
			arrivals: append(steady(0, 100, 0), steady(350, 400, 350*ms)...),
			want: Report{Planned: 400, Received: 150, Lost: 250, LongestGap: 251 * ms,
				GapMissing: 250, GapEndSeq: 350, LongestRun: 250, MissingRuns: []MissingRun{{100, 250}}},
		},
		{
			// The longest time gap (30 ms, nothing missing: the path stalled)
			// is not where the longest missing run (5) is.
			name: "stall and loss apart", planned: 20,
			arrivals: []arrival{{0, 0}, {1, 1 * ms}, {2, 31 * ms}, {8, 32 * ms}, {9, 33 * ms},
				{10, 34 * ms}, {11, 35 * ms}},
			want: Report{Planned: 20, Received: 7, Lost: 5, TailLost: 8, LongestGap: 30 * ms,
				GapMissing: 0, GapEndSeq: 2, LongestRun: 5, MissingRuns: []MissingRun{{3, 5}}},
		},
		{
			name: "reordered and duplicated", planned: 6,
			arrivals: []arrival{{0, 0}, {2, 1 * ms}, {1, 2 * ms}, {3, 3 * ms}, {3, 4 * ms}, {5, 5 * ms}, {4, 6 * ms}},
			// The duplicate does not count as an arrival: 3 -> 5 is the gap, 4 still missing then.
			want: Report{Planned: 6, Received: 6, Dups: 1, Reordered: 2, LongestGap: 2 * ms,
				GapMissing: 1, GapEndSeq: 5},
		},
		{
			name: "late straggler fills a hole", planned: 4,
			arrivals: []arrival{{0, 0}, {2, 1 * ms}, {3, 2 * ms}, {1, 50 * ms}},
			want:     Report{Planned: 4, Received: 4, Reordered: 1, LongestGap: 48 * ms, GapEndSeq: 1},
		},
		{
			name: "first packets lost", planned: 10, arrivals: steady(4, 10, 0),
			want: Report{Planned: 10, Received: 6, Lost: 4, LongestRun: 4, LongestGap: ms, GapEndSeq: 5,
				MissingRuns: []MissingRun{{0, 4}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := feed(tt.planned, tt.arrivals)
			tt.want.LongestGapMs = float64(tt.want.LongestGap) / float64(time.Millisecond)
			if tt.want.Received > 0 {
				tt.want.MaxLatencyMs = 1
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// The runs kept are the longest maxRuns, in sequence order, however many
// there were.
func TestTrackerKeepsLongestRuns(t *testing.T) {
	var arrivals []arrival
	// Runs of 1, 2, ..., 12 missing packets, each after one that arrived.
	seq := uint64(0)
	for n := uint64(1); n <= 12; n++ {
		arrivals = append(arrivals, arrival{seq, time.Duration(seq) * time.Millisecond})
		seq += n + 1
	}
	arrivals = append(arrivals, arrival{seq, time.Duration(seq) * time.Millisecond})
	got := feed(seq+1, arrivals).MissingRuns
	var want []MissingRun
	first := uint64(1)
	for n := uint64(1); n <= 12; n++ {
		if n > 12-maxRuns {
			want = append(want, MissingRun{first, n})
		}
		first += n + 1
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("runs %v, want %v", got, want)
	}
}

// A packet claiming a larger run than the first one is ignored, not a panic.
func TestTrackerPlannedFixedByFirstPacket(t *testing.T) {
	var tr tracker
	tr.add(0, 2, 0, 0)
	tr.add(500, 1000, time.Millisecond, 0)
	if r := tr.report(); r.Received != 1 || r.Planned != 2 || r.TailLost != 1 {
		t.Errorf("got %+v, want 1 received of 2 planned", r)
	}
}

func TestSendConfigValidate(t *testing.T) {
	ok := sendConfig{to: "127.0.0.1:9", pps: 1000, duration: 10 * time.Second, max: 1_000_000, size: 64}
	if err := ok.validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	if got := ok.planned(); got != 10_000 {
		t.Errorf("planned = %d, want 10000", got)
	}
	capped := ok
	capped.max = 500
	if got := capped.planned(); got != 500 {
		t.Errorf("planned with -max 500 = %d, want 500", got)
	}
	for _, tc := range []struct {
		field string
		edit  func(*sendConfig)
	}{
		{"-to", func(c *sendConfig) { c.to = "" }},
		{"-to", func(c *sendConfig) { c.to = "127.0.0.1:9,,127.0.0.1:10" }},
		{"-to", func(c *sendConfig) { c.to = strings.Repeat("127.0.0.1:9,", maxDestinations) + "127.0.0.1:9" }},
		{"-pps", func(c *sendConfig) { c.pps = 0 }},
		{"-duration", func(c *sendConfig) { c.duration = -time.Second }},
		{"-max", func(c *sendConfig) { c.max = maxPackets + 1 }},
		{"-size", func(c *sendConfig) { c.size = headerLen - 1 }},
		{"-duration", func(c *sendConfig) { c.duration = time.Microsecond }},
	} {
		c := ok
		tc.edit(&c)
		err := c.validate()
		if err == nil || err.Error()[:len(tc.field)] != tc.field {
			t.Errorf("%s: err = %v, want one naming %s", tc.field, err, tc.field)
		}
	}
}
