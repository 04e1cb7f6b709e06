package balance

import "time"

// SetClock makes l read the time from now instead of time.Now.
func SetClock(l *Load, now func() time.Time) { l.nowFunc = now }

// MaglevTable returns the key of the target behind each entry of the table
// of p, a policy from NewMaglev, and the table itself so that tests can tell
// whether Update rebuilt it.
func MaglevTable[T Target](p Policy[T]) ([]string, []int32) {
	s := p.(*maglev[T]).snap.Load()
	keys := make([]string, len(s.table))
	for j, i := range s.table {
		keys[j] = s.keys[i]
	}
	return keys, s.table
}
