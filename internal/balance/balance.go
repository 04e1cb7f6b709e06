package balance

import (
	"fmt"
	"strings"
)

// Target is what a policy balances over.
type Target interface {
	// Key is the target's stable identity (e.g. "10.0.0.7:8080");
	// consistent hashing places a target by it, so the same key lands in
	// the same place whatever else is in the set.
	Key() string
	Load() *Load
}

// Policy picks a target for each request. Update and Pick are safe to call
// concurrently; Update swaps an immutable snapshot, Pick never locks.
type Policy[T Target] interface {
	// Update replaces the set picks are made from (the usable targets, in
	// any order; may be empty). The policy keeps its own copy of the slice.
	Update(targets []T)
	// Pick returns a target for a request, skipping any for which skip
	// returns true (already tried by this request, circuit open...). skip
	// may be nil. key is the consistent-hash key; other policies ignore it.
	// ok is false when no target is left.
	Pick(key string, skip func(T) bool) (t T, ok bool)
}

// Names of the policies, as users configure them.
const (
	RoundRobin     = "round-robin"
	LeastRequest   = "least-request"
	ConsistentHash = "consistent-hash"
)

// New returns the named policy, or an error naming the known ones. The
// consistent-hash policy gets the default Maglev table size.
func New[T Target](name string) (Policy[T], error) {
	switch name {
	case RoundRobin:
		return NewRoundRobin[T](), nil
	case LeastRequest:
		return NewLeastRequest[T](), nil
	case ConsistentHash:
		return NewMaglev[T](0), nil
	}
	known := strings.Join([]string{RoundRobin, LeastRequest, ConsistentHash}, ", ")
	return nil, fmt.Errorf("unknown load-balancing policy %q (known: %s)", name, known)
}
