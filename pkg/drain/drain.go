// Package drain follows a drained box's paths to AWS until they carry no
// more traffic. The daemon makes the box unattractive (prepends toward AWS,
// nothing or a worse MED toward the LAN); a Controller then samples every
// path's packet counters and says the drain is done once each path has
// stayed below its quiet rate for the quiet period, or that the wait timed
// out. It holds the box's drain state, which the daemon keeps across
// reloads.
package drain

import (
	"context"
	"sync"
	"time"
)

// State is where a box stands in its drain.
type State string

// The drain states.
const (
	// Active: not drained, the box attracts traffic as configured.
	Active State = "active"
	// Draining: unattractive, waiting for the paths to go quiet.
	Draining State = "draining"
	// Drained: unattractive, and the wait is over (quiet, or timed out).
	Drained State = "drained"
)

// Path is one path to AWS (a DX link or a tunnel) whose traffic the drain
// watches.
type Path struct {
	Name string
	Kind string // dx or tunnel
	// Link is the netdev whose counters are read.
	Link string
	// OwnPPS is the packets per second cgwd itself sends (and expects)
	// over the path each way: BFD, probes, BGP keepalives. They never
	// stop, so they do not count as traffic.
	OwnPPS float64
}

// Counters are a path's packet counters.
type Counters struct{ Rx, Tx uint64 }

// Sampler reads every path's counters. A path it cannot read (its netdev
// is gone) has an error instead: nothing crosses a missing netdev, so it
// counts as quiet.
type Sampler func(paths []Path) (map[string]Counters, map[string]error)

// Settings are a drain's wait rules.
type Settings struct {
	// QuietPeriod is how long every path must stay quiet.
	QuietPeriod time.Duration
	// QuietPPS is the rate per direction, on top of a path's OwnPPS, at or
	// below which the path is quiet.
	QuietPPS float64
	// Timeout bounds the wait.
	Timeout time.Duration
}

// ownSlack scales a path's OwnPPS for its allowance: BFD sends up to a
// third faster than its interval (RFC 5880 jitter), and TCP acknowledges
// BGP's messages.
const ownSlack = 1.5

// Limit is the rate per direction at or below which p is quiet.
func (s Settings) Limit(p Path) float64 { return s.QuietPPS + ownSlack*p.OwnPPS }

// PathStatus is one path's traffic since the drain began.
type PathStatus struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// RxPackets and TxPackets crossed the path since the drain began.
	RxPackets uint64 `json:"rx_packets"`
	TxPackets uint64 `json:"tx_packets"`
	// RxPPS and TxPPS are the rates over the last sample interval.
	RxPPS float64 `json:"rx_pps"`
	TxPPS float64 `json:"tx_pps"`
	// LimitPPS is the rate per direction at or below which the path is quiet.
	LimitPPS float64 `json:"limit_pps"`
	// QuietSince is when the path went quiet; zero while it carries traffic.
	QuietSince time.Time `json:"quiet_since,omitzero"`
	// Error says why the counters could not be read (the netdev is gone).
	Error string `json:"error,omitempty"`
}

// Status is the box's drain state.
type Status struct {
	State State `json:"state"`
	// Since is when the box was drained; zero while active.
	Since time.Time `json:"since,omitzero"`
	// Done is when the wait ended: every path quiet, or the timeout.
	Done time.Time `json:"done,omitzero"`
	// TimedOut says the wait ended with paths still carrying traffic.
	TimedOut bool `json:"timed_out,omitempty"`
	// QuietPeriod and Timeout are the wait's rules, in seconds.
	QuietPeriod float64 `json:"quiet_period_seconds,omitempty"`
	Timeout     float64 `json:"timeout_seconds,omitempty"`
	// Changes say what drained the box: the prepends toward AWS, what the
	// LAN peers no longer get.
	Changes []string `json:"changes,omitempty"`
	// Paths are the watched paths, in configured order.
	Paths []PathStatus `json:"paths,omitempty"`
}

// Drained reports whether the box is drained or draining.
func (s Status) Drained() bool { return s.State == Draining || s.State == Drained }

// Tracker decides, sample by sample, when every path has been quiet for
// the quiet period. It does no I/O and keeps no clock: each sample comes
// with its time.
type Tracker struct {
	set    Settings
	paths  []Path
	start  time.Time
	base   map[string]Counters // counters when the drain began
	last   map[string]Counters
	lastAt time.Time
	st     []PathStatus
}

// NewTracker starts tracking paths from their counters at now.
func NewTracker(set Settings, paths []Path, now time.Time, first map[string]Counters, errs map[string]error) *Tracker {
	t := &Tracker{set: set, paths: paths, start: now, base: map[string]Counters{}, last: map[string]Counters{}, lastAt: now}
	for _, p := range paths {
		ps := PathStatus{Name: p.Name, Kind: p.Kind, LimitPPS: set.Limit(p)}
		if err := errs[p.Name]; err != nil {
			ps.Error = err.Error()
			ps.QuietSince = now
		} else {
			t.base[p.Name], t.last[p.Name] = first[p.Name], first[p.Name]
		}
		t.st = append(t.st, ps)
	}
	return t
}

// since is how far counter c moved from prev; a counter that went back (its
// netdev was made again) counts from zero.
func since(c, prev uint64) uint64 {
	if c < prev {
		return c
	}
	return c - prev
}

// Observe takes the counters sampled at now and reports whether every path
// has been quiet for the quiet period.
func (t *Tracker) Observe(now time.Time, c map[string]Counters, errs map[string]error) bool {
	dt := now.Sub(t.lastAt).Seconds()
	if dt <= 0 {
		return t.quiet(now)
	}
	for i, p := range t.paths {
		ps := &t.st[i]
		if err := errs[p.Name]; err != nil {
			ps.Error, ps.RxPPS, ps.TxPPS = err.Error(), 0, 0
			if ps.QuietSince.IsZero() {
				ps.QuietSince = t.lastAt
			}
			delete(t.last, p.Name)
			continue
		}
		cur := c[p.Name]
		prev, seen := t.last[p.Name]
		if !seen { // readable again: a new netdev, counting from zero
			prev = Counters{}
			t.base[p.Name] = Counters{Rx: ps.RxPackets, Tx: ps.TxPackets}
		}
		dRx, dTx := since(cur.Rx, prev.Rx), since(cur.Tx, prev.Tx)
		ps.Error = ""
		ps.RxPackets += dRx
		ps.TxPackets += dTx
		ps.RxPPS, ps.TxPPS = float64(dRx)/dt, float64(dTx)/dt
		t.last[p.Name] = cur
		switch {
		case ps.RxPPS > ps.LimitPPS || ps.TxPPS > ps.LimitPPS:
			ps.QuietSince = time.Time{}
		case ps.QuietSince.IsZero():
			ps.QuietSince = t.lastAt // quiet over the whole interval
		}
	}
	t.lastAt = now
	return t.quiet(now)
}

// quiet reports whether every path has been quiet for the quiet period.
func (t *Tracker) quiet(now time.Time) bool {
	for _, ps := range t.st {
		if ps.QuietSince.IsZero() || now.Sub(ps.QuietSince) < t.set.QuietPeriod {
			return false
		}
	}
	return true
}

// TimedOut reports whether the wait has lasted the timeout at now.
func (t *Tracker) TimedOut(now time.Time) bool { return now.Sub(t.start) >= t.set.Timeout }

// Paths is every path's status after the last sample.
func (t *Tracker) Paths() []PathStatus { return append([]PathStatus(nil), t.st...) }

// Controller holds the box's drain state and runs the wait for quiet. A
// nil Controller is a box in service. Drain and undrain calls are made one
// at a time (the daemon makes them on its loop).
type Controller struct {
	// Interval is how often the counters are sampled (default 1s).
	Interval time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time

	mu     sync.Mutex
	st     Status
	stop   context.CancelFunc // ends the running wait
	waited chan struct{}      // closed when the running wait has returned
}

// NewController returns a controller of an active (undrained) box.
func NewController() *Controller { return &Controller{st: Status{State: Active}} }

func (c *Controller) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Status is the drain state now.
func (c *Controller) Status() Status {
	if c == nil {
		return Status{State: Active}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.st
	st.Changes = append([]string(nil), st.Changes...)
	st.Paths = append([]PathStatus(nil), st.Paths...)
	return st
}

// Drained reports whether the box is drained or draining.
func (c *Controller) Drained() bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.Drained()
}

// SetDrained marks the box drained at once, with no wait: a box that
// starts drained has attracted no traffic.
func (c *Controller) SetDrained(changes []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.st = Status{State: Drained, Since: now, Done: now, Changes: changes}
}

// Begin marks the box draining and starts the wait in a goroutine, which
// ends when every path has been quiet for the quiet period, at the timeout,
// at Undrain or Close, or when ctx ends. A box already drained keeps its
// state, unless its last wait timed out: then the wait starts again.
// changes say what drained the box (for its status).
func (c *Controller) Begin(ctx context.Context, set Settings, paths []Path, sample Sampler, changes []string) Status {
	c.mu.Lock()
	if c.st.Drained() && !c.st.TimedOut {
		defer c.mu.Unlock()
		return c.st
	}
	since := c.st.Since
	c.mu.Unlock()
	c.Close() // a timed-out wait has returned; make sure
	now := c.now()
	if since.IsZero() {
		since = now
	}
	first, errs := sample(paths)
	tr := NewTracker(set, paths, now, first, errs)
	ctx, stop := context.WithCancel(ctx)
	waited := make(chan struct{})
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st = Status{State: Draining, Since: since, QuietPeriod: set.QuietPeriod.Seconds(), Timeout: set.Timeout.Seconds(),
		Changes: changes, Paths: tr.Paths()}
	c.stop, c.waited = stop, waited
	go func() {
		defer close(waited)
		c.wait(ctx, tr, paths, sample)
	}()
	return c.st
}

// wait samples every Interval until the tracker says quiet, the timeout,
// or ctx ends, publishing each sample in the status.
func (c *Controller) wait(ctx context.Context, tr *Tracker, paths []Path, sample Sampler) {
	iv := c.Interval
	if iv <= 0 {
		iv = time.Second
	}
	tick := time.NewTicker(iv)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		cs, errs := sample(paths)
		now := c.now()
		quiet := tr.Observe(now, cs, errs)
		timedOut := !quiet && tr.TimedOut(now)
		c.mu.Lock()
		if ctx.Err() != nil { // undrained meanwhile
			c.mu.Unlock()
			return
		}
		c.st.Paths = tr.Paths()
		if quiet || timedOut {
			c.st.State, c.st.Done, c.st.TimedOut = Drained, now, timedOut
		}
		c.mu.Unlock()
		if quiet || timedOut {
			return
		}
	}
}

// Undrain stops any wait and marks the box active again.
func (c *Controller) Undrain() {
	c.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st = Status{State: Active}
}

// Close stops the running wait, if any, and waits until it has returned;
// the state stays as it is.
func (c *Controller) Close() {
	c.mu.Lock()
	stop, waited := c.stop, c.waited
	c.stop, c.waited = nil, nil
	c.mu.Unlock()
	if stop != nil {
		stop()
		<-waited
	}
}
