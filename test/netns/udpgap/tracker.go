package main

import (
	"cmp"
	"slices"
	"time"
)

// maxPackets bounds a run: the sender never plans more, the receiver rejects
// packets claiming more (it keeps one bit per sequence number).
const maxPackets = 10_000_000

// tracker accounts for the packets of one stream as they arrive. It is a pure
// state machine: arrival times are given to it, it never reads the clock.
type tracker struct {
	planned   uint64   // from the packets; 0 until the first one
	seen      []uint64 // bitmap of sequence numbers received
	unique    uint64
	dups      uint64
	reordered uint64
	highest   uint64 // highest sequence number so far (valid if unique > 0)

	lastAt      time.Duration // arrival of the previous packet
	gap         time.Duration // longest time between consecutive arrivals
	gapMissing  uint64        // sequence numbers skipped across that gap
	gapAfterSeq uint64        // the sequence number that ended it
	maxLatency  time.Duration
}

// add records packet seq (of a run planning `planned` packets, seq <
// planned <= maxPackets, as decode guarantees) arriving at `at` (any
// monotonic origin) with one-way latency `latency`.
func (t *tracker) add(seq, planned uint64, at, latency time.Duration) {
	if t.seen == nil {
		t.planned = planned
		t.seen = make([]uint64, (planned+63)/64)
	}
	if seq >= t.planned {
		return // a run's planned count does not change; decode checked against the packet's own
	}
	word, bit := seq/64, uint64(1)<<(seq%64)
	if t.seen[word]&bit != 0 {
		t.dups++
		return
	}
	t.seen[word] |= bit
	if latency > t.maxLatency {
		t.maxLatency = latency
	}
	if t.unique == 0 {
		t.unique, t.highest, t.lastAt = 1, seq, at
		return
	}
	t.unique++
	if d := at - t.lastAt; d > t.gap {
		t.gap, t.gapAfterSeq, t.gapMissing = d, seq, 0
		if seq > t.highest {
			t.gapMissing = seq - t.highest - 1
		}
	}
	t.lastAt = at
	if seq < t.highest {
		t.reordered++
	} else {
		t.highest = seq
	}
}

// Report is what the receiver saw; it is printed as JSON with -json.
type Report struct {
	Run      uint32 `json:"run"`       // the sender's run ID
	Planned  uint64 `json:"planned"`   // packets the sender planned to send
	Received uint64 `json:"received"`  // distinct packets received
	Lost     uint64 `json:"lost"`      // sequence numbers below the highest received that never arrived
	TailLost uint64 `json:"tail_lost"` // planned packets after the highest received (sent late, lost, or never sent)
	Dups     uint64 `json:"duplicates"`
	// Reordered counts packets that arrived after a higher sequence number.
	Reordered uint64 `json:"reordered"`
	// LongestGap is the longest time between two consecutive arrivals;
	// GapMissing is how many sequence numbers were skipped across it, and
	// GapEndSeq the sequence number that ended it.
	LongestGap   time.Duration `json:"-"`
	LongestGapMs float64       `json:"longest_gap_ms"`
	GapMissing   uint64        `json:"longest_gap_missing"`
	GapEndSeq    uint64        `json:"longest_gap_end_seq"`
	// LongestRun is the longest run of consecutive missing sequence numbers
	// below the highest received, whenever they were due.
	LongestRun uint64 `json:"longest_missing_run"`
	// MissingRuns are the longest runs of consecutive missing sequence
	// numbers (at most maxRuns), in sequence order: at a steady rate they
	// tell one outage from loss spread over the stream.
	MissingRuns  []MissingRun `json:"missing_runs,omitempty"`
	MaxLatencyMs float64      `json:"max_latency_ms"`
	Foreign      uint64       `json:"foreign"` // datagrams ignored: not udpgap, or another run
}

// maxRuns bounds Report.MissingRuns.
const maxRuns = 8

// MissingRun is a run of consecutive sequence numbers that never arrived.
type MissingRun struct {
	First uint64 `json:"first_seq"`
	Len   uint64 `json:"len"`
}

// keepLongest adds r to runs, keeping at most maxRuns of the longest.
func keepLongest(runs []MissingRun, r MissingRun) []MissingRun {
	if len(runs) < maxRuns {
		return append(runs, r)
	}
	shortest := 0
	for i := range runs {
		if runs[i].Len < runs[shortest].Len {
			shortest = i
		}
	}
	if r.Len > runs[shortest].Len {
		runs[shortest] = r
	}
	return runs
}

// report summarises the stream so far.
func (t *tracker) report() Report {
	r := Report{
		Planned:      t.planned,
		Received:     t.unique,
		Dups:         t.dups,
		Reordered:    t.reordered,
		LongestGap:   t.gap,
		LongestGapMs: float64(t.gap) / float64(time.Millisecond),
		GapMissing:   t.gapMissing,
		GapEndSeq:    t.gapAfterSeq,
		MaxLatencyMs: float64(t.maxLatency) / float64(time.Millisecond),
	}
	if t.unique == 0 {
		r.TailLost = t.planned
		return r
	}
	r.Lost = t.highest + 1 - t.unique
	r.TailLost = t.planned - t.highest - 1
	var run uint64
	for seq := uint64(0); seq <= t.highest; seq++ {
		if t.seen[seq/64]&(1<<(seq%64)) != 0 {
			if run > 0 {
				r.MissingRuns = keepLongest(r.MissingRuns, MissingRun{First: seq - run, Len: run})
			}
			run = 0
			continue
		}
		run++
		r.LongestRun = max(r.LongestRun, run)
	}
	slices.SortFunc(r.MissingRuns, func(a, b MissingRun) int { return cmp.Compare(a.First, b.First) })
	return r
}
