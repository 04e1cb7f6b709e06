package idempotency_test

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/idempotency"
	"github.com/stretchr/testify/require"
)

func TestMigrate(t *testing.T) {
	t.Parallel()
	h := setup(t, idempotency.Config{})
	require.NoError(t, idempotency.Migrate(context.Background(), h.router), "migrating again is a no-op")
	files, err := fs.Glob(idempotency.Migrations(), "*.sql")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, db := range h.router.DBs() {
		var n int
		require.NoError(t, db.Reader().QueryRowContext(context.Background(),
			"SELECT count(*) FROM goose_idempotency WHERE version_id > 0").Scan(&n))
		require.Equal(t, len(files), n, db.Name())
	}
}

func TestSweep(t *testing.T) {
	t.Parallel()
	h := setup(t, idempotency.Config{TTL: 24 * time.Hour})
	users := []*strata.Principal{user(0), user(3), user(7)} // one on each database file
	for _, u := range users {
		for i := range 3 {
			requireFresh(t, h.post(u, fmt.Sprintf("old-%d", i), body), http.StatusCreated)
		}
	}
	h.clock.Advance(12 * time.Hour)
	for _, u := range users {
		requireFresh(t, h.post(u, "new", body), http.StatusCreated)
	}
	require.Equal(t, []int{4, 4, 4}, h.rows(t))

	h.clock.Advance(12 * time.Hour) // the old keys are 24h old, the new ones 12h
	n, err := h.store.Sweep(context.Background(), h.clock.Now(), 2)
	require.NoError(t, err)
	require.Equal(t, 9, n, "every expired row on every database, in batches of 2")
	require.Equal(t, []int{1, 1, 1}, h.rows(t))

	n, err = h.store.Sweep(context.Background(), h.clock.Now(), 2)
	require.NoError(t, err)
	require.Zero(t, n)
	calls := h.calls.Load()
	for _, u := range users {
		require.Equal(t, "true", h.post(u, "new", body).Header().Get("Idempotent-Replayed"), "live keys are kept")
	}
	require.Equal(t, calls, h.calls.Load())

	n, err = h.store.Sweep(context.Background(), h.clock.Now().Add(12*time.Hour), 0)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.Equal(t, []int{0, 0, 0}, h.rows(t))
}

func TestSweepKeepsLockedRows(t *testing.T) {
	t.Parallel()
	h := setup(t, idempotency.Config{TTL: time.Hour, LockTimeout: 10 * time.Minute})
	entered, release := make(chan struct{}), make(chan struct{})
	h.setBefore(func(int64) {
		close(entered)
		<-release
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.post(user(0), "k", body)
	}()
	<-entered
	n, err := h.store.Sweep(context.Background(), h.clock.Now().Add(5*time.Minute), 0)
	require.NoError(t, err)
	require.Zero(t, n, "a row in flight under its lock stays")
	n, err = h.store.Sweep(context.Background(), h.clock.Now().Add(2*time.Hour), 0)
	require.NoError(t, err)
	require.Equal(t, 1, n, "an abandoned row goes once expired")
	close(release)
	<-done
}

func TestSweepFailure(t *testing.T) {
	t.Parallel()
	h := setup(t, idempotency.Config{})
	requireFresh(t, h.post(user(7), "k", body), http.StatusCreated)
	require.NoError(t, h.router.DBs()[0].Close())
	n, err := h.store.Sweep(context.Background(), h.clock.Now().Add(48*time.Hour), 0)
	require.Error(t, err)
	require.Equal(t, 1, n, "the other databases are swept all the same")
}

func TestRun(t *testing.T) {
	t.Parallel()
	h := setup(t, idempotency.Config{TTL: time.Hour})
	requireFresh(t, h.post(user(3), "k", body), http.StatusCreated)
	h.clock.Advance(time.Hour)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.store.Run(ctx, 10*time.Millisecond, slog.New(slog.DiscardHandler)) }()
	require.Eventually(t, func() bool {
		for _, db := range h.router.DBs() {
			var n int
			err := db.Reader().QueryRowContext(context.Background(), "SELECT count(*) FROM idempotency_keys").Scan(&n)
			if err != nil || n > 0 {
				return false
			}
		}
		return true
	}, 5*time.Second, 5*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
}
