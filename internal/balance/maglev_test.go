package balance_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stratadev/strata/internal/balance"
	"github.com/stretchr/testify/require"
)

// randomKeys returns n item ids, the same every run.
func randomKeys(n int) []string {
	r := rand.New(rand.NewPCG(1, 2))
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("item-%016x", r.Uint64())
	}
	return keys
}

// placement returns the target each key is picked for.
func placement(t *testing.T, p balance.Policy[*target], keys []string) []*target {
	t.Helper()
	out := make([]*target, len(keys))
	for i, k := range keys {
		tg, ok := p.Pick(k, nil)
		require.True(t, ok)
		out[i] = tg
	}
	return out
}

func TestMaglevBalance(t *testing.T) {
	t.Parallel()
	for _, n := range []int{3, 10, 11, 100} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			p := balance.NewMaglev[*target](0)
			p.Update(newTargets(n))
			table, _ := balance.MaglevTable(p)
			require.Len(t, table, 65537)
			owned := map[string]int{}
			for _, k := range table {
				owned[k]++
			}
			require.Len(t, owned, n)
			even := float64(len(table)) / float64(n)
			lo, hi := len(table), 0
			for _, c := range owned {
				lo, hi = min(lo, c), max(hi, c)
			}
			t.Logf("%d targets: entries per target %d..%d, %.4f..%.4f of an even share", n, lo, hi, float64(lo)/even, float64(hi)/even)
			require.GreaterOrEqual(t, float64(lo), 0.9*even)
			require.LessOrEqual(t, float64(hi), 1.1*even)
		})
	}
}

func TestMaglevDisruption(t *testing.T) {
	t.Parallel()
	keys := randomKeys(100_000)
	ts := newTargets(11)
	p := balance.NewMaglev[*target](0)
	p.Update(ts[:10])
	before := placement(t, p, keys)

	t.Run("remove", func(t *testing.T) {
		t.Parallel()
		gone := ts[4]
		q := balance.NewMaglev[*target](0)
		q.Update(slices.Delete(slices.Clone(ts[:10]), 4, 5))
		after := placement(t, q, keys)
		var orphaned, moved int // keys of the removed target; keys of survivors that moved
		for i := range keys {
			switch {
			case before[i] == gone:
				orphaned++
			case after[i] != before[i]:
				moved++
			}
		}
		total := float64(orphaned+moved) / float64(len(keys))
		t.Logf("remove 1 of 10: %.2f%% of keys moved (%.2f%% were the removed target's, %.2f%% a survivor's)",
			100*total, 100*float64(orphaned)/float64(len(keys)), 100*float64(moved)/float64(len(keys)))
		require.LessOrEqual(t, total, 1.0/10+0.03)
	})

	t.Run("add", func(t *testing.T) {
		t.Parallel()
		q := balance.NewMaglev[*target](0)
		q.Update(ts)
		after := placement(t, q, keys)
		var toNew, moved int // keys now on the new target; keys moved between old ones
		for i := range keys {
			switch {
			case after[i] == ts[10]:
				toNew++
			case after[i] != before[i]:
				moved++
			}
		}
		total := float64(toNew+moved) / float64(len(keys))
		t.Logf("add an 11th: %.2f%% of keys moved (%.2f%% to the new target, %.2f%% between the others)",
			100*total, 100*float64(toNew)/float64(len(keys)), 100*float64(moved)/float64(len(keys)))
		require.LessOrEqual(t, total, 1.0/11+0.03)
	})
}

// TestMaglevOrder: the placement depends on the set of targets, not the
// order they are listed in, nor which instance of the policy is asked.
func TestMaglevOrder(t *testing.T) {
	t.Parallel()
	keys := randomKeys(1000)
	ts := newTargets(10)
	p := balance.NewMaglev[*target](0)
	p.Update(ts)
	want := placement(t, p, keys)
	r := rand.New(rand.NewPCG(3, 4))
	for range 5 {
		shuffled := slices.Clone(ts)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		q := balance.NewMaglev[*target](0)
		q.Update(shuffled)
		require.Equal(t, want, placement(t, q, keys))
	}
	require.Equal(t, want, placement(t, p, keys), "asked again")
}

// TestMaglevUpdateSameKeys: new targets with the same keys are taken
// without rebuilding the table.
func TestMaglevUpdateSameKeys(t *testing.T) {
	t.Parallel()
	keys := randomKeys(1000)
	p := balance.NewMaglev[*target](0)
	old := newTargets(5)
	p.Update(old)
	_, table := balance.MaglevTable(p)
	before := placement(t, p, keys)

	fresh := newTargets(5)
	slices.Reverse(fresh)
	p.Update(fresh)
	_, again := balance.MaglevTable(p)
	require.Same(t, &table[0], &again[0], "table kept")
	after := placement(t, p, keys)
	for i := range keys {
		require.Equal(t, before[i].key, after[i].key)
		require.NotSame(t, before[i], after[i], "the new target, not the old one")
	}

	p.Update(fresh[1:])
	_, rebuilt := balance.MaglevTable(p)
	require.NotSame(t, &table[0], &rebuilt[0], "a target gone: table rebuilt")
}

func TestMaglevSkip(t *testing.T) {
	t.Parallel()
	keys := randomKeys(10_000)
	ts := newTargets(10)
	p := balance.NewMaglev[*target](0)
	p.Update(ts)
	before := placement(t, p, keys)
	down := ts[2]
	skip := func(tg *target) bool { return tg == down }

	// Another instance, given the targets in another order, must fall back
	// the same way: gateways agree on where a skipped target's keys go.
	q := balance.NewMaglev[*target](0)
	reversed := slices.Clone(ts)
	slices.Reverse(reversed)
	q.Update(reversed)
	spread := map[*target]int{}
	for i, k := range keys {
		got, ok := p.Pick(k, skip)
		require.True(t, ok)
		require.NotSame(t, down, got)
		if before[i] != down {
			require.Same(t, before[i], got, "only the skipped target's keys move")
			continue
		}
		spread[got]++
		for range 3 {
			again, _ := p.Pick(k, skip)
			require.Same(t, got, again, "deterministic")
		}
		other, _ := q.Pick(k, skip)
		require.Same(t, got, other, "same in another instance")
	}
	t.Logf("the skipped target's keys went to %d targets: %v", len(spread), spreadCounts(spread))
	require.Len(t, spread, 9, "spread over every other target")

	// With all but one of many skipped, most walks give up and scan the
	// targets; either way the one left is found, the same way each time.
	many := newTargets(200)
	p.Update(many)
	q.Update(many)
	only := many[150]
	for _, k := range keys[:100] {
		got, ok := p.Pick(k, func(tg *target) bool { return tg != only })
		require.True(t, ok)
		require.Same(t, only, got)
	}
	for _, k := range keys[:100] {
		twoLeft := func(tg *target) bool { return tg != only && tg != many[3] }
		got, ok := p.Pick(k, twoLeft)
		require.True(t, ok)
		other, _ := q.Pick(k, twoLeft)
		require.Same(t, got, other)
	}
}

func spreadCounts(m map[*target]int) []int {
	var out []int
	for _, n := range m {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// TestMaglevEmptyKey: no key, no locality; a random target.
func TestMaglevEmptyKey(t *testing.T) {
	t.Parallel()
	ts := newTargets(4)
	p := balance.NewMaglev[*target](0)
	p.Update(ts)
	got := map[*target]int{}
	for range 4000 {
		tg, ok := p.Pick("", func(tg *target) bool { return tg == ts[0] })
		require.True(t, ok)
		got[tg]++
	}
	require.Zero(t, got[ts[0]])
	require.Len(t, got, 3)
}

func TestMaglevTableSize(t *testing.T) {
	t.Parallel()
	for _, size := range []int{-7, 1, 4, 65536, 1 << 31} {
		require.Panics(t, func() { balance.NewMaglev[*target](size) }, "size %d", size)
	}
	p := balance.NewMaglev[*target](251)
	ts := newTargets(3)
	p.Update(ts)
	table, _ := balance.MaglevTable(p)
	require.Len(t, table, 251)
}
