package sqldb_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/storage/sqldb"
	"github.com/stretchr/testify/require"
)

func TestPostgresTxRetriesDeadlock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := setupOn(t, sqldb.Postgres, 4, 1).Shard(0)
	_, err := db.Writer().ExecContext(ctx, "INSERT INTO things (id, n) VALUES ('a', 0), ('b', 0)")
	require.NoError(t, err)

	// Each transaction updates its first row, then, on its first run only,
	// waits until the other holds its own first row before updating the
	// second: the two cross, and PostgreSQL aborts one of them.
	heldA, heldB := make(chan struct{}), make(chan struct{})
	cross := func(first, second string, held, other chan struct{}) error {
		runs := 0
		return db.Tx(ctx, func(tx *sql.Tx) error {
			runs++
			if _, err := tx.ExecContext(ctx, "UPDATE things SET n = n + 1 WHERE id = $1", first); err != nil {
				return fmt.Errorf("update %s: %w", first, sqldb.Translate(err))
			}
			if runs == 1 {
				close(held)
				<-other
			}
			if _, err := tx.ExecContext(ctx, "UPDATE things SET n = n + 1 WHERE id = $1", second); err != nil {
				return fmt.Errorf("update %s: %w", second, sqldb.Translate(err))
			}
			return nil
		})
	}
	errs := make(chan error, 2)
	go func() { errs <- cross("a", "b", heldA, heldB) }()
	go func() { errs <- cross("b", "a", heldB, heldA) }()
	require.NoError(t, <-errs)
	require.NoError(t, <-errs)

	for _, id := range []string{"a", "b"} {
		var n int
		require.NoError(t, db.Reader().QueryRowContext(ctx, "SELECT n FROM things WHERE id = $1", id).Scan(&n))
		require.Equal(t, 2, n, "both transactions updated %s once", id)
	}
	require.Positive(t, db.Retries(), "the deadlock victim ran again")
}

func TestPostgresTxRetries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := setupOn(t, sqldb.Postgres, 4, 1).Shard(0)
	_, err := db.Writer().ExecContext(ctx, "INSERT INTO things (id, n) VALUES ('a', 0)")
	require.NoError(t, err)
	boom := errors.New("boom")
	// As a store's function returns it: translated, then wrapped.
	conflict := fmt.Errorf("update a: %w", sqldb.Translate(&pgconn.PgError{Code: "40001"}))

	for _, tc := range []struct {
		name     string
		err      error
		cancel   bool // the context ends during the first run
		wantRuns int
		wantErr  error
		wantCode strata.Code
	}{
		{name: "an ordinary error runs once", err: boom, wantRuns: 1, wantErr: boom, wantCode: strata.CodeInternal},
		{name: "a serialization failure runs three times", err: conflict, wantRuns: 3, wantCode: strata.CodeUnavailable},
		// Untranslated: Tx translates the last failure.
		{name: "a deadlock runs three times", err: &pgconn.PgError{Code: "40P01"}, wantRuns: 3, wantCode: strata.CodeUnavailable},
		{name: "a done context stops the retries", err: conflict, cancel: true, wantRuns: 1, wantCode: strata.CodeUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			before := db.Retries()
			runs := 0
			err := db.Tx(ctx, func(tx *sql.Tx) error {
				runs++
				if _, err := tx.ExecContext(ctx, "UPDATE things SET n = n + 1 WHERE id = 'a'"); err != nil {
					return err
				}
				if tc.cancel {
					cancel()
				}
				return tc.err
			})
			require.Equal(t, tc.wantRuns, runs)
			require.Equal(t, int64(tc.wantRuns-1), db.Retries()-before, "retries counted")
			require.Equal(t, tc.wantCode, strata.ErrorCode(err), "%v", err)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
			}
			var n int
			require.NoError(t, db.Reader().QueryRowContext(context.Background(), "SELECT n FROM things WHERE id = 'a'").Scan(&n))
			require.Zero(t, n, "every run rolled back")
		})
	}
}
