package balance

import (
	"math"
	"sync/atomic"
	"time"
)

const (
	// decay is the time constant of the latency average: after this much
	// wall time a sample keeps 1/e of its weight.
	decay = 10 * time.Second
	// unsampled is the latency a target is scored with before its first
	// sample: small, so that a new target gets traffic, and with it samples,
	// at once.
	unsampled = time.Millisecond
	// maxPenalty bounds the latency charged for a fast failure, so a target
	// that failed a run of requests can win traffic back within a minute or
	// two of recovering.
	maxPenalty = 10 * time.Second
)

// Load is the live load of one target: requests in flight and a decaying
// average of recent latency. The zero value is ready to use; it is safe for
// concurrent use (atomics only, no mutex on the hot path).
type Load struct {
	inFlight atomic.Int64
	// cost is the latency average in nanoseconds as float64 bits and stamp
	// the wall time (UnixNano) of the sample that last moved it, 0 before
	// the first. Being two words written one after the other, a reader may
	// for an instant pair a new stamp with the old cost; the estimate it
	// sees is then off by one sample, which does no harm.
	cost  atomic.Uint64
	stamp atomic.Int64
	// nowFunc is the clock, nil meaning time.Now; tests set it.
	nowFunc func() time.Time
}

func (l *Load) clock() time.Time {
	if l.nowFunc != nil {
		return l.nowFunc()
	}
	return time.Now()
}

// Start counts a request in flight and returns the time it started.
func (l *Load) Start() time.Time {
	l.inFlight.Add(1)
	return l.clock()
}

// Done ends a request started at start: in-flight goes down and the latency
// average takes in the time since start. A failed request counts as taking
// at least twice the current average (at least 2 ms, and this floor stops
// at 10 s), so least-request steers away from an instance that errors fast:
// each failure in a row doubles its estimate.
func (l *Load) Done(start time.Time, failed bool) {
	now := l.clock()
	l.inFlight.Add(-1)
	rtt := float64(max(now.Sub(start), 0))
	t := now.UnixNano()
	// Each sample claims the wall time since the one before it, so samples
	// arriving together share the elapsed time instead of each decaying the
	// average by all of it. A clock step backwards counts as no time.
	elapsed := max(t-l.stamp.Swap(t), 0)
	w := math.Exp(-float64(elapsed) / float64(decay))
	for {
		old := l.cost.Load()
		cur := math.Float64frombits(old)
		sample := rtt
		if failed {
			sample = max(rtt, min(2*max(cur, float64(unsampled)), float64(maxPenalty)))
		}
		// Peak-EWMA: a slower sample is believed at once, a faster one only
		// as far as the time since the last sample allows.
		next := sample
		if sample < cur {
			next = cur*w + sample*(1-w)
		}
		if l.cost.CompareAndSwap(old, math.Float64bits(next)) {
			return
		}
	}
}

// InFlight returns the number of requests started and not yet done.
func (l *Load) InFlight() int64 {
	return l.inFlight.Load()
}

// Latency returns the current latency average, 0 before the first sample.
// It is a peak-EWMA in the style of Finagle and linkerd: it jumps up at once
// on a slow sample and decays toward faster ones with a time constant of
// about 10 s of wall time. While nothing is in flight it also decays, with
// the same time constant, toward the 1 ms a new target is scored with: a
// target shunned after a slow spell gets no samples to show it recovered,
// so it is tried again once the spell is old. A target with requests in
// flight will report soon, and decaying it would make a hung one look fast.
func (l *Load) Latency() time.Duration {
	lat, _ := l.latency()
	return time.Duration(lat)
}

// latency returns the average in nanoseconds and whether there has been a
// sample at all.
func (l *Load) latency() (float64, bool) {
	stamp := l.stamp.Load()
	if stamp == 0 {
		return 0, false
	}
	cost := math.Float64frombits(l.cost.Load())
	if cost <= float64(unsampled) || l.inFlight.Load() > 0 {
		return cost, true
	}
	idle := max(l.clock().UnixNano()-stamp, 0)
	w := math.Exp(-float64(idle) / float64(decay))
	return float64(unsampled) + (cost-float64(unsampled))*w, true
}

// score is what least-request minimises: the requests in flight, counting
// the one about to be sent, times the latency each is expected to take.
func (l *Load) score() float64 {
	lat, ok := l.latency()
	if !ok {
		lat = float64(unsampled)
	}
	return float64(l.inFlight.Load()+1) * lat
}
