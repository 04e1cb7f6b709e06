package token_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratadev/strata/internal/auth/token"
	"github.com/stratadev/strata/stratatest"
	"github.com/stretchr/testify/require"
)

func TestRingStartsEmpty(t *testing.T) {
	t.Parallel()
	store := &keyStore{}
	ring := token.NewRing(store.load, stratatest.NewClock(t0), 0)
	require.NotNil(t, ring.Current())
	_, ok := ring.Current().Signing()
	require.False(t, ok)
	at, err := ring.LastRefresh()
	require.True(t, at.IsZero())
	require.NoError(t, err)
	require.Zero(t, store.loads.Load(), "NewRing does not load")
}

func TestRingRefreshFailureKeepsKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	before := e.ring.Current()

	e.store.fail(errors.New("database is down"))
	e.clock.Advance(time.Minute)
	err := e.ring.Refresh(t.Context())
	require.ErrorContains(t, err, "database is down")
	require.Same(t, before, e.ring.Current(), "the previous keys stay")
	at, lastErr := e.ring.LastRefresh()
	require.Equal(t, t0.Add(time.Minute), at)
	require.ErrorContains(t, lastErr, "database is down")

	_, err = e.verifier.Verify(t.Context(), e.sign(t))
	require.NoError(t, err, "tokens keep verifying while the database is down")

	e.store.fail(nil)
	require.NoError(t, e.ring.Refresh(t.Context()))
	_, lastErr = e.ring.LastRefresh()
	require.NoError(t, lastErr)
}

func TestRingRefreshJoinsLoadInFlight(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	started := make(chan struct{})
	var loads atomic.Int64
	load := func(context.Context) ([]token.Key, error) {
		if loads.Add(1) == 1 {
			close(started)
			<-release // the first load hangs until released
		}
		return nil, nil
	}
	ring := token.NewRing(load, stratatest.NewClock(t0), time.Minute)

	first := make(chan error, 1)
	go func() { first <- ring.Refresh(context.Background()) }()
	<-started

	// A refresh while the load is in flight joins it instead of starting
	// another; when its context ends it leaves without waiting.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, ring.Refresh(ctx), context.Canceled)
	require.EqualValues(t, 1, loads.Load())

	close(release)
	require.NoError(t, <-first)
	require.NoError(t, ring.Refresh(t.Context()))
	require.EqualValues(t, 2, loads.Load())
}

func TestRingRun(t *testing.T) {
	t.Parallel()
	store := &keyStore{keys: []token.Key{generateKey(t, "k1", t0, time.Hour, time.Hour)}}
	ring := token.NewRing(store.load, stratatest.NewClock(t0), time.Millisecond)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- ring.Run(ctx) }()

	require.Eventually(t, func() bool { return store.loads.Load() >= 3 }, 5*time.Second, time.Millisecond)
	_, ok := ring.Current().Lookup("k1")
	require.True(t, ok)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}
