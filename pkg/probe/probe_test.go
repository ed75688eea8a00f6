package probe

import (
	"testing"
	"time"
)

func TestTrackerDownAfterThresholdUpAfterRecovery(t *testing.T) {
	tr := newTracker(Config{LossThreshold: 3, Recovery: 2, Window: 10})
	ms := time.Millisecond
	// Starts down; two answers in a row bring it up.
	if tr.record(false, ms) {
		t.Fatal("up after one answer, want after two")
	}
	if !tr.record(false, ms) || !tr.up {
		t.Fatal("not up after two answers")
	}
	// Two losses, an answer, two losses: never three in a row, stays up.
	for _, lost := range []bool{true, true, false, true, true} {
		if tr.record(lost, ms) {
			t.Fatalf("verdict changed on lost=%v", lost)
		}
	}
	if !tr.record(true, 0) || tr.up {
		t.Fatal("not down after three losses in a row")
	}
	st := tr.stats()
	if st.Sent != 8 || st.Received != 3 {
		t.Errorf("sent %d received %d, want 8 and 3", st.Sent, st.Received)
	}
	if st.LossRatio != 5.0/8 {
		t.Errorf("loss ratio %v, want %v", st.LossRatio, 5.0/8)
	}
}

func TestTrackerLossRatioCoversTheWindowOnly(t *testing.T) {
	tr := newTracker(Config{LossThreshold: 100, Recovery: 1, Window: 4})
	for i := 0; i < 4; i++ {
		tr.record(true, 0)
	}
	for i := 0; i < 4; i++ {
		tr.record(false, time.Millisecond)
	}
	if r := tr.stats().LossRatio; r != 0 {
		t.Errorf("loss ratio %v after 4 answers in a window of 4, want 0", r)
	}
}

func TestTrackerJitter(t *testing.T) {
	tr := newTracker(Config{LossThreshold: 3, Recovery: 1, Window: 4})
	tr.record(false, 10*time.Millisecond)
	tr.record(false, 26*time.Millisecond) // |26-10| = 16 ms, smoothed by 1/16
	if j := tr.stats().Jitter; j != time.Millisecond {
		t.Errorf("jitter %v, want 1ms", j)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("empty config accepted")
	}
}
