package balance

import (
	"cmp"
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
)

const (
	// defaultTableSize is the Maglev paper's small table: prime, and at
	// least 100 times the number of targets a Strata service runs, which
	// keeps each target's share of keys within about 1% of even.
	defaultTableSize = 65537
	// walkLimit bounds how far Pick walks the table past skipped targets
	// before it scans the targets themselves; it only runs out when nearly
	// every target is skipped.
	walkLimit = 64
)

// Seeds of the three hashes: a target's offset and step through the table,
// and a request key's place in it.
const (
	seedOffset = 0x9e3779b97f4a7c15
	seedStep   = 0xbf58476d1ce4e5b9
	seedLookup = 0x94d049bb133111eb
)

type maglev[T Target] struct {
	size int
	// mu serialises Update, so that a slow rebuild cannot replace the
	// table of an Update that started after it. Pick never takes it.
	mu   sync.Mutex
	snap atomic.Pointer[maglevSnapshot[T]]
}

// maglevSnapshot is immutable once published.
type maglevSnapshot[T Target] struct {
	keys    []string // sorted, no duplicates
	targets []T      // targets[i] has keys[i]
	table   []int32  // lookup table of indexes into targets; nil with no targets
}

// NewMaglev returns a consistent-hashing policy using Google's Maglev
// lookup table (Eisenbud et al., NSDI 2016). tableSize must be prime, and
// should be at least 100 times the number of targets; 0 means 65537. It
// panics on a size that is not prime, a programming error.
//
// Pick hashes its key into the table. If that entry's target is skipped it
// walks forward through the table to the next entry whose target is not, so
// a skipped target's keys go to the same other targets every time and spread
// over all of them. (If 64 entries in a row are skipped, as when nearly
// every target is, it stops and takes the first usable target in key order
// after the one the key hashed to: as deterministic, and bounded.) An empty
// key picks a random target.
func NewMaglev[T Target](tableSize int) Policy[T] {
	if tableSize == 0 {
		tableSize = defaultTableSize
	}
	if tableSize < 2 || tableSize > 1<<31-1 || !big.NewInt(int64(tableSize)).ProbablyPrime(0) {
		panic(fmt.Sprintf("balance: Maglev table size %d is not a prime below 2³¹", tableSize))
	}
	p := &maglev[T]{size: tableSize}
	p.snap.Store(&maglevSnapshot[T]{})
	return p
}

// Update rebuilds the table only when the set of keys changed; given the
// same keys it just takes the new targets. Of targets sharing a key, the
// first in targets is kept.
func (p *maglev[T]) Update(targets []T) {
	type keyed struct {
		key string
		t   T
	}
	ks := make([]keyed, len(targets))
	for i, t := range targets {
		ks[i] = keyed{t.Key(), t}
	}
	// Sorting makes the table depend on the set of keys only, not on the
	// order service discovery happened to list them in.
	slices.SortStableFunc(ks, func(a, b keyed) int { return cmp.Compare(a.key, b.key) })
	ks = slices.CompactFunc(ks, func(a, b keyed) bool { return a.key == b.key })
	s := &maglevSnapshot[T]{keys: make([]string, len(ks)), targets: make([]T, len(ks))}
	for i, k := range ks {
		s.keys[i], s.targets[i] = k.key, k.t
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if old := p.snap.Load(); slices.Equal(old.keys, s.keys) {
		s.table = old.table
	} else {
		s.table = populate(s.keys, p.size)
	}
	p.snap.Store(s)
}

// populate fills a lookup table of size m (prime) as in the Maglev paper:
// each target has its own permutation of the entries, starting at an
// offset and moving by a step, both hashed from its key; the targets take
// turns claiming the next free entry of their permutation until the table
// is full. Taking turns keeps the shares even; the permutations depending on
// nothing but the key keep the table stable when the set changes.
func populate(keys []string, m int) []int32 {
	if len(keys) == 0 {
		return nil
	}
	size := uint64(m)
	pos := make([]uint64, len(keys))
	step := make([]uint64, len(keys))
	for i, k := range keys {
		pos[i] = hashKey(k, seedOffset) % size
		// A step in [1, m-1] with m prime visits every entry.
		step[i] = hashKey(k, seedStep)%(size-1) + 1
	}
	table := make([]int32, m)
	for j := range table {
		table[j] = -1
	}
	for filled := 0; ; {
		for i := range keys {
			for table[pos[i]] >= 0 {
				pos[i] = (pos[i] + step[i]) % size
			}
			table[pos[i]] = int32(i)
			pos[i] = (pos[i] + step[i]) % size
			if filled++; filled == m {
				return table
			}
		}
	}
}

func (p *maglev[T]) Pick(key string, skip func(T) bool) (T, bool) {
	var zero T
	s := p.snap.Load()
	if len(s.table) == 0 {
		return zero, false
	}
	size := uint64(len(s.table))
	start := rand.Uint64N(size)
	if key != "" {
		start = hashKey(key, seedLookup) % size
	}
	if skip == nil {
		return s.targets[s.table[start]], true
	}
	pos, last := start, int32(-1)
	for range walkLimit {
		// Neighbouring entries often share a target: ask skip once per run.
		if i := s.table[pos]; i != last {
			if !skip(s.targets[i]) {
				return s.targets[i], true
			}
			last = i
		}
		pos = (pos + 1) % size
	}
	// Nearly everything is skipped: rather than walk the whole table, try
	// the targets in key order from the one the key hashed to.
	first := int(s.table[start])
	for k := range s.targets {
		if t := s.targets[(first+k)%len(s.targets)]; !skip(t) {
			return t, true
		}
	}
	return zero, false
}

// hashKey is 64-bit FNV-1a from a seeded state, finished with murmur3's fmix64
// because FNV alone leaves keys that differ in a character or two (10.0.0.7,
// 10.0.0.8) close together. It must give the same answer in every process,
// since gateways agreeing on where a key goes is the point; that rules out
// hash/maphash, whose seeds are random.
func hashKey(s string, seed uint64) uint64 {
	h := uint64(14695981039346656037) ^ seed
	for i := range len(s) {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
