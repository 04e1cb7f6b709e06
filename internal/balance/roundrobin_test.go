package balance_test

import (
	"testing"

	"github.com/stratadev/strata/internal/balance"
	"github.com/stretchr/testify/require"
)

func TestRoundRobin(t *testing.T) {
	t.Parallel()
	const k = 100
	ts := newTargets(5)
	tests := []struct {
		name    string
		skipped []int // indexes into ts
	}{
		{name: "none skipped"},
		{name: "one skipped", skipped: []int{2}},
		{name: "neighbours skipped", skipped: []int{0, 1}},
		{name: "all but one skipped", skipped: []int{0, 1, 2, 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := balance.NewRoundRobin[*target]()
			p.Update(ts)
			skip := func(tg *target) bool {
				for _, i := range tc.skipped {
					if ts[i] == tg {
						return true
					}
				}
				return false
			}
			usable := len(ts) - len(tc.skipped)
			got := map[*target]int{}
			for range usable * k {
				tg, ok := p.Pick("", skip)
				require.True(t, ok)
				got[tg]++
			}
			for _, i := range tc.skipped {
				require.Zero(t, got[ts[i]], "skipped %s", ts[i].key)
			}
			require.Len(t, got, usable)
			for tg, n := range got {
				require.Equal(t, k, n, tg.key)
			}
		})
	}
}
