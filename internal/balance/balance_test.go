package balance_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stratadev/strata/internal/balance"
	"github.com/stretchr/testify/require"
)

type target struct {
	key  string
	load balance.Load
}

func (t *target) Key() string         { return t.key }
func (t *target) Load() *balance.Load { return &t.load }

// newTargets returns n targets with keys 10.0.0.1:8080 onwards.
func newTargets(n int) []*target {
	ts := make([]*target, n)
	for i := range ts {
		ts[i] = &target{key: fmt.Sprintf("10.0.0.%d:8080", i+1)}
	}
	return ts
}

// fakeClock is a clock tests move by hand; one goroutine only.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// withClock sets a fake clock on every target and returns it.
func withClock(t *testing.T, ts []*target) *fakeClock {
	t.Helper()
	c := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	for _, tg := range ts {
		balance.SetClock(&tg.load, c.now)
	}
	return c
}

// sample records one request of duration d on tg.
func sample(c *fakeClock, tg *target, d time.Duration, failed bool) {
	start := tg.load.Start()
	c.advance(d)
	tg.load.Done(start, failed)
}

// policies builds each policy by its configured name.
func policies(t *testing.T) map[string]balance.Policy[*target] {
	t.Helper()
	out := map[string]balance.Policy[*target]{}
	for _, name := range []string{balance.RoundRobin, balance.LeastRequest, balance.ConsistentHash} {
		p, err := balance.New[*target](name)
		require.NoError(t, err)
		out[name] = p
	}
	return out
}

func TestNew(t *testing.T) {
	t.Parallel()
	for name, p := range policies(t) {
		require.NotNil(t, p, name)
	}
	_, err := balance.New[*target]("random")
	require.ErrorContains(t, err, `"random"`)
	for _, name := range []string{balance.RoundRobin, balance.LeastRequest, balance.ConsistentHash} {
		require.ErrorContains(t, err, name)
	}
}

// TestPickEmpty holds for every policy: nothing to pick from, or everything
// skipped, is ok=false; a lone usable target is picked.
func TestPickEmpty(t *testing.T) {
	t.Parallel()
	all := func(*target) bool { return true }
	for name, p := range policies(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, ok := p.Pick("item-1", nil)
			require.False(t, ok, "no targets")
			p.Update(nil)
			_, ok = p.Pick("item-1", nil)
			require.False(t, ok, "empty set")

			ts := newTargets(5)
			p.Update(ts)
			_, ok = p.Pick("item-1", all)
			require.False(t, ok, "all skipped")
			for _, key := range []string{"item-1", ""} {
				got, ok := p.Pick(key, func(tg *target) bool { return tg != ts[3] })
				require.True(t, ok)
				require.Same(t, ts[3], got, "the one usable target")
			}

			p.Update(ts[:1])
			got, ok := p.Pick("item-1", nil)
			require.True(t, ok)
			require.Same(t, ts[0], got)
			_, ok = p.Pick("item-1", all)
			require.False(t, ok, "lone target skipped")
		})
	}
}

// TestUpdateCopies: a policy keeps its own copy of the slice it is given.
func TestUpdateCopies(t *testing.T) {
	t.Parallel()
	for name, p := range policies(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ts := newTargets(3)
			p.Update(ts)
			other := &target{key: "10.9.9.9:8080"}
			ts[0], ts[1], ts[2] = other, other, other
			for range 30 {
				got, ok := p.Pick("", nil)
				require.True(t, ok)
				require.NotSame(t, other, got)
			}
		})
	}
}

// TestConcurrentPickUpdate hammers Pick from 8 goroutines while another
// keeps changing the set; run with -race.
func TestConcurrentPickUpdate(t *testing.T) {
	t.Parallel()
	for name, p := range policies(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ts := newTargets(16)
			p.Update(ts)
			stop := make(chan struct{})
			var updates sync.WaitGroup
			updates.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					p.Update(ts[i%5 : 16-i%3]) // never empty
				}
			})
			var pickers sync.WaitGroup
			for g := range 8 {
				pickers.Go(func() {
					tried := func(tg *target) bool { return tg == ts[g] }
					for i := range 2000 {
						tg, ok := p.Pick(fmt.Sprint("item-", i), tried)
						if !ok {
							t.Error("no target picked")
							return
						}
						tg.load.Done(tg.load.Start(), i%10 == 0)
					}
				})
			}
			pickers.Wait()
			close(stop)
			updates.Wait()
			for _, tg := range ts {
				require.Zero(t, tg.load.InFlight(), tg.key)
			}
		})
	}
}

// TestPickAllocs is not parallel: AllocsPerRun counts every goroutine's
// allocations.
func TestPickAllocs(t *testing.T) {
	ts := newTargets(16)
	ts[5].load.Done(ts[5].load.Start(), false)
	skip := func(tg *target) bool { return tg == ts[3] || tg == ts[7] }
	all := func(*target) bool { return true }
	for name, p := range policies(t) {
		p.Update(ts)
		for _, key := range []string{"item-42", ""} {
			for _, s := range []func(*target) bool{nil, skip, all} {
				allocs := testing.AllocsPerRun(1000, func() { p.Pick(key, s) })
				require.Zero(t, allocs, "%s key %q", name, key)
			}
		}
	}
}

// benchPolicies returns each policy over 16 targets, each with a sample.
func benchPolicies(b *testing.B) ([]*target, []string, map[string]balance.Policy[*target]) {
	b.Helper()
	ts := newTargets(16)
	for _, tg := range ts {
		tg.load.Done(tg.load.Start(), false)
	}
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("item-%d", i)
	}
	ps := map[string]balance.Policy[*target]{}
	for _, name := range []string{balance.RoundRobin, balance.LeastRequest, balance.ConsistentHash} {
		p, err := balance.New[*target](name)
		require.NoError(b, err)
		p.Update(ts)
		ps[name] = p
	}
	return ts, keys, ps
}

func BenchmarkPick(b *testing.B) {
	_, keys, ps := benchPolicies(b)
	for _, name := range []string{balance.RoundRobin, balance.LeastRequest, balance.ConsistentHash} {
		p := ps[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				p.Pick(keys[i%len(keys)], nil)
				i++
			}
		})
	}
}

// BenchmarkPickSkip picks with the skip a retry passes: the first try's
// target.
func BenchmarkPickSkip(b *testing.B) {
	ts, keys, ps := benchPolicies(b)
	tried := ts[0]
	skip := func(tg *target) bool { return tg == tried }
	for _, name := range []string{balance.RoundRobin, balance.LeastRequest, balance.ConsistentHash} {
		p := ps[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				p.Pick(keys[i%len(keys)], skip)
				i++
			}
		})
	}
}
