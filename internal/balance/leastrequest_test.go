package balance_test

import (
	"testing"
	"time"

	"github.com/stratadev/strata/internal/balance"
	"github.com/stretchr/testify/require"
)

func TestLeastRequest(t *testing.T) {
	t.Parallel()
	const picks = 10_000
	tests := []struct {
		name  string
		setup func(c *fakeClock, ts []*target) // ts has 4 targets
		// want bounds each target's share of the picks.
		min, max [4]float64
	}{
		{
			name:  "alike",
			setup: func(*fakeClock, []*target) {},
			min:   [4]float64{0.2, 0.2, 0.2, 0.2},
			max:   [4]float64{0.3, 0.3, 0.3, 0.3},
		},
		{
			name: "busy",
			setup: func(_ *fakeClock, ts []*target) {
				for range 50 {
					ts[0].load.Start()
				}
			},
			max: [4]float64{0.01, 1, 1, 1},
		},
		{
			name: "slow",
			setup: func(c *fakeClock, ts []*target) {
				sample(c, ts[0], 100*time.Millisecond, false)
				for _, tg := range ts[1:] {
					sample(c, tg, 10*time.Millisecond, false)
				}
			},
			max: [4]float64{0.05, 1, 1, 1},
		},
		{
			name: "failing fast",
			setup: func(c *fakeClock, ts []*target) {
				for _, tg := range ts {
					sample(c, tg, 10*time.Millisecond, false)
				}
				for range 3 {
					sample(c, ts[0], time.Millisecond, true)
				}
			},
			max: [4]float64{0.05, 1, 1, 1},
		},
		{
			// The new target wins every pair it is drawn into: half of
			// the six pairs.
			name: "new",
			setup: func(c *fakeClock, ts []*target) {
				for _, tg := range ts[1:] {
					sample(c, tg, 10*time.Millisecond, false)
				}
			},
			min: [4]float64{0.45, 0, 0, 0},
			max: [4]float64{0.55, 1, 1, 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := newTargets(4)
			tc.setup(withClock(t, ts), ts)
			p := balance.NewLeastRequest[*target]()
			p.Update(ts)
			got := map[*target]int{}
			for range picks {
				tg, ok := p.Pick("", nil)
				require.True(t, ok)
				got[tg]++
			}
			for i, tg := range ts {
				share := float64(got[tg]) / picks
				t.Logf("%s: %.3f", tg.key, share)
				require.GreaterOrEqual(t, share, tc.min[i], tg.key)
				require.LessOrEqual(t, share, tc.max[i], tg.key)
			}
		})
	}
}

// TestLeastRequestInFlight: picks that stay in flight spread the load, as
// in a gateway whose requests overlap.
func TestLeastRequestInFlight(t *testing.T) {
	t.Parallel()
	ts := newTargets(4)
	p := balance.NewLeastRequest[*target]()
	p.Update(ts)
	for range 400 {
		tg, ok := p.Pick("", nil)
		require.True(t, ok)
		tg.load.Start()
	}
	for _, tg := range ts {
		require.InDelta(t, 100, tg.load.InFlight(), 3, tg.key)
	}
}

func TestLeastRequestSkip(t *testing.T) {
	t.Parallel()
	ts := newTargets(8)
	p := balance.NewLeastRequest[*target]()
	p.Update(ts)
	tests := []struct {
		name    string
		skipped map[int]bool
	}{
		{name: "one", skipped: map[int]bool{0: true}},
		{name: "most", skipped: map[int]bool{0: true, 1: true, 2: true, 3: true, 4: true, 6: true}},
		{name: "all but one", skipped: map[int]bool{0: true, 1: true, 2: true, 3: true, 4: true, 5: true, 6: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			skip := func(tg *target) bool {
				for i := range tc.skipped {
					if ts[i] == tg {
						return true
					}
				}
				return false
			}
			got := map[*target]int{}
			for range 1000 {
				tg, ok := p.Pick("", skip)
				require.True(t, ok)
				require.False(t, skip(tg), tg.key)
				got[tg]++
			}
			require.Len(t, got, len(ts)-len(tc.skipped), "every usable target picked")
		})
	}
}
