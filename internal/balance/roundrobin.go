package balance

import (
	"math/rand/v2"
	"slices"
	"sync/atomic"
)

type roundRobin[T Target] struct {
	targets atomic.Pointer[[]T]
	next    atomic.Uint64
}

// NewRoundRobin returns a policy that picks each target in turn, passing
// over skipped ones.
func NewRoundRobin[T Target]() Policy[T] {
	p := &roundRobin[T]{}
	p.targets.Store(new([]T))
	// Start somewhere random so that gateways restarted together, given the
	// same list, do not all send their first requests to the same target.
	p.next.Store(uint64(rand.Uint32()))
	return p
}

func (p *roundRobin[T]) Update(targets []T) {
	ts := slices.Clone(targets)
	p.targets.Store(&ts)
}

func (p *roundRobin[T]) Pick(_ string, skip func(T) bool) (T, bool) {
	ts := *p.targets.Load()
	n := uint64(len(ts))
	start := p.next.Add(1) - 1
	for i := range n {
		t := ts[(start+i)%n]
		if skip != nil && skip(t) {
			continue
		}
		// Move the turn past the skipped targets too; otherwise the target
		// after a skipped one would also get the skipped one's turn.
		if i > 0 {
			p.next.Add(i)
		}
		return t, true
	}
	var zero T
	return zero, false
}
