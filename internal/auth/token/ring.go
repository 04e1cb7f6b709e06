package token

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stratadev/strata"
)

// unknownKidInterval is the least time between two refreshes that tokens
// with an unknown kid may cause, so that a stream of tokens with random kids
// costs the database at most one load a second.
const unknownKidInterval = time.Second

var (
	// errThrottled says a refresh for an unknown kid was skipped.
	errThrottled    = errors.New("refresh throttled")
	errLoadPanicked = errors.New("load signing keys: panicked")
)

// Ring is the live key set of an instance: the latest KeySet loaded from the
// database, swapped atomically so that readers never lock. It is safe for
// concurrent use.
type Ring struct {
	loadFunc     func(ctx context.Context) ([]Key, error)
	clock        strata.Clock
	refreshEvery time.Duration

	cur atomic.Pointer[KeySet]

	mu sync.Mutex
	// flight is the load in progress, which every refresh joins.
	flight *flight
	// missAt is when an unknown kid last started a load.
	missAt time.Time
	// lastAt and lastErr describe the last load that finished.
	lastAt  time.Time
	lastErr error
}

type flight struct {
	done chan struct{}
	err  error
}

// NewRing returns a ring that loads its keys with load. It starts with an
// empty key set: call Refresh before serving, then Run. refreshEvery
// defaults to one minute when zero or less.
func NewRing(load func(ctx context.Context) ([]Key, error), clock strata.Clock, refreshEvery time.Duration) *Ring {
	if refreshEvery <= 0 {
		refreshEvery = time.Minute
	}
	r := &Ring{loadFunc: load, clock: clock, refreshEvery: refreshEvery}
	r.cur.Store(NewKeySet(nil, clock.Now()))
	return r
}

// Current returns the latest key set. It never returns nil.
func (r *Ring) Current() *KeySet { return r.cur.Load() }

// Refresh loads the keys and installs a new key set. Concurrent calls share
// one load. When the load fails the previous set stays in place; when some
// keys are unusable the rest are installed and the error names the others.
func (r *Ring) Refresh(ctx context.Context) error {
	return r.refresh(ctx, false)
}

// refreshUnknownKid is Refresh for a verifier that met an unknown kid: it
// joins a load in progress, but starts one at most once per
// unknownKidInterval and otherwise returns errThrottled at once.
func (r *Ring) refreshUnknownKid(ctx context.Context) error {
	return r.refresh(ctx, true)
}

func (r *Ring) refresh(ctx context.Context, throttled bool) error {
	r.mu.Lock()
	if f := r.flight; f != nil {
		r.mu.Unlock()
		select {
		case <-f.done:
			return f.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if throttled {
		now := r.clock.Now()
		if !r.missAt.IsZero() && now.Sub(r.missAt) < unknownKidInterval {
			r.mu.Unlock()
			return errThrottled
		}
		r.missAt = now
	}
	f := &flight{done: make(chan struct{}), err: errLoadPanicked}
	r.flight = f
	r.mu.Unlock()
	defer func() { // also when loadFunc panics, so that waiters are released
		r.mu.Lock()
		r.flight = nil
		r.lastAt, r.lastErr = r.clock.Now(), f.err
		r.mu.Unlock()
		close(f.done)
	}()
	f.err = r.load(ctx)
	return f.err
}

func (r *Ring) load(ctx context.Context) error {
	keys, err := r.loadFunc(ctx)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	ks, err := newKeySet(keys, r.clock.Now())
	r.cur.Store(ks)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	return nil
}

// Run refreshes the keys every refreshEvery until ctx ends, then returns
// nil. A failed refresh keeps the previous keys and is retried at the next
// tick; LastRefresh reports it.
func (r *Ring) Run(ctx context.Context) error {
	t := time.NewTicker(r.refreshEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			_ = r.Refresh(ctx) // kept in lastErr for LastRefresh
		}
	}
}

// LastRefresh returns when the last load finished and its error, for health
// checks and metrics. at is zero before the first load.
func (r *Ring) LastRefresh() (at time.Time, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastAt, r.lastErr
}
