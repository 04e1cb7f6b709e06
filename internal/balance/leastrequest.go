package balance

import (
	"math/rand/v2"
	"slices"
	"sync/atomic"
)

// probes is how many random draws least-request makes for each of its two
// choices before it gives up on sampling and scans: enough that a few
// skipped targets rarely force a scan.
const probes = 3

type leastRequest[T Target] struct {
	targets atomic.Pointer[[]T]
}

// NewLeastRequest returns a policy that uses the power of two choices: it
// draws two distinct targets at random, skipping skipped ones, and picks the
// one with the lower score, (InFlight()+1) × Latency(), where a target with
// no latency sample yet counts 1 ms so that new targets get traffic. With
// one usable target, that target is picked. A pick costs O(1) unless random
// draws keep landing on skipped targets, when it falls back to scanning all
// of them for the lowest score.
func NewLeastRequest[T Target]() Policy[T] {
	p := &leastRequest[T]{}
	p.targets.Store(new([]T))
	return p
}

func (p *leastRequest[T]) Update(targets []T) {
	ts := slices.Clone(targets)
	p.targets.Store(&ts)
}

func (p *leastRequest[T]) Pick(_ string, skip func(T) bool) (T, bool) {
	var zero T
	ts := *p.targets.Load()
	usable := func(i int) bool { return skip == nil || !skip(ts[i]) }
	switch len(ts) {
	case 0:
		return zero, false
	case 1:
		if !usable(0) {
			return zero, false
		}
		return ts[0], true
	}
	a, b := -1, -1
	for range probes {
		if i := rand.IntN(len(ts)); usable(i) {
			a = i
			break
		}
	}
	if a >= 0 {
		for range probes {
			// Drawn from the others, so a and b are distinct by construction.
			if j := (a + 1 + rand.IntN(len(ts)-1)) % len(ts); usable(j) {
				b = j
				break
			}
		}
	}
	if b < 0 {
		// Most targets are skipped, or only one is usable: the best of
		// what is left, found the slow way.
		best, bestScore := -1, 0.0
		for i := range ts {
			if !usable(i) {
				continue
			}
			if s := ts[i].Load().score(); best < 0 || s < bestScore {
				best, bestScore = i, s
			}
		}
		if best < 0 {
			return zero, false
		}
		return ts[best], true
	}
	if ts[b].Load().score() < ts[a].Load().score() {
		return ts[b], true
	}
	return ts[a], true
}
