package balance_test

import (
	"math"
	"testing"
	"time"

	"github.com/stratadev/strata/internal/balance"
	"github.com/stretchr/testify/require"
)

func TestLoadInFlight(t *testing.T) {
	t.Parallel()
	var l balance.Load
	a, b := l.Start(), l.Start()
	require.EqualValues(t, 2, l.InFlight())
	l.Done(a, false)
	require.EqualValues(t, 1, l.InFlight())
	l.Done(b, true)
	require.Zero(t, l.InFlight())
	require.Positive(t, l.Latency(), "a failure counts as a slow sample")
}

func TestLoadLatency(t *testing.T) {
	t.Parallel()
	tg := newTargets(1)[0]
	c := withClock(t, []*target{tg})
	require.Zero(t, tg.load.Latency(), "no sample yet")

	sample(c, tg, 10*time.Millisecond, false)
	require.Equal(t, 10*time.Millisecond, tg.load.Latency(), "the first sample is the average")

	c.advance(time.Second)
	sample(c, tg, 200*time.Millisecond, false)
	require.Equal(t, 200*time.Millisecond, tg.load.Latency(), "a slow sample is believed at once")

	// Fast samples a second apart pull the average down by the weight the
	// elapsed time gives them: 1-e^(-1.01/10) for a sample at 1 s + 10 ms.
	c.advance(time.Second)
	sample(c, tg, 10*time.Millisecond, false)
	w := math.Exp(-1.01 / 10)
	want := time.Duration(float64(200*time.Millisecond)*w + float64(10*time.Millisecond)*(1-w))
	require.InDelta(t, want, tg.load.Latency(), float64(time.Microsecond))

	prev := tg.load.Latency()
	for range 30 {
		c.advance(time.Second)
		sample(c, tg, 10*time.Millisecond, false)
		require.Less(t, tg.load.Latency(), prev)
		prev = tg.load.Latency()
	}
	require.Less(t, prev, 20*time.Millisecond, "after 30 s of fast samples")
}

func TestLoadFailure(t *testing.T) {
	t.Parallel()
	tg := newTargets(1)[0]
	c := withClock(t, []*target{tg})
	sample(c, tg, 10*time.Millisecond, false)

	// Failing fast still doubles the estimate each time.
	sample(c, tg, time.Millisecond, true)
	require.Equal(t, 20*time.Millisecond, tg.load.Latency())
	sample(c, tg, time.Millisecond, true)
	require.Equal(t, 40*time.Millisecond, tg.load.Latency())
	// A slow failure counts for what it took.
	sample(c, tg, 500*time.Millisecond, true)
	require.Equal(t, 500*time.Millisecond, tg.load.Latency())
	// The doubling stops at 10 s.
	for range 20 {
		sample(c, tg, time.Millisecond, true)
	}
	require.Equal(t, 10*time.Second, tg.load.Latency())

	// A first sample that fails fast is charged at least 2 ms.
	fresh := newTargets(1)[0]
	c = withClock(t, []*target{fresh})
	sample(c, fresh, 0, true)
	require.Equal(t, 2*time.Millisecond, fresh.load.Latency())
}

func TestLoadIdleDecay(t *testing.T) {
	t.Parallel()
	tg := newTargets(1)[0]
	c := withClock(t, []*target{tg})
	sample(c, tg, 500*time.Millisecond, false)

	// While a request is in flight the estimate holds: decaying it would
	// make a hung target look fast.
	start := tg.load.Start()
	c.advance(time.Minute)
	require.Equal(t, 500*time.Millisecond, tg.load.Latency())
	tg.load.Done(start, false)
	require.Equal(t, time.Minute, tg.load.Latency(), "a minute-long request")

	// Idle, it decays toward the 1 ms a new target is scored with.
	c.advance(10 * time.Second)
	want := float64(time.Millisecond) + float64(time.Minute-time.Millisecond)/math.E
	require.InDelta(t, want, tg.load.Latency(), float64(time.Microsecond))
	c.advance(5 * time.Minute)
	require.InDelta(t, time.Millisecond, tg.load.Latency(), float64(time.Microsecond))

	// A target faster than 1 ms stays as fast as it was.
	fast := newTargets(1)[0]
	c = withClock(t, []*target{fast})
	sample(c, fast, 200*time.Microsecond, false)
	c.advance(time.Hour)
	require.Equal(t, 200*time.Microsecond, fast.load.Latency())
}
