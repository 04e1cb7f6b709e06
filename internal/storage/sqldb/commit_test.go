package sqldb_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/storage/sqldb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// holdWriter starts a transaction on db that blocks the group committer
// until the returned function is called, and waits until it runs.
func holdWriter(t *testing.T, db *sqldb.DB) (release func() error) {
	t.Helper()
	running, hold := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- db.Tx(context.Background(), func(tx *sql.Tx) error {
			close(running)
			<-hold
			_, err := tx.Exec("INSERT INTO things (id, n) VALUES ('holder', 0)")
			return err
		})
	}()
	<-running
	return func() error {
		close(hold)
		return <-done
	}
}

// waitQueued waits until n transactions wait for db's committer.
func waitQueued(t *testing.T, db *sqldb.DB, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return sqldb.Queued(db) == n }, 5*time.Second, time.Millisecond)
}

func count(t *testing.T, db *sqldb.DB, where string) int {
	t.Helper()
	var n int
	require.NoError(t, db.Reader().QueryRowContext(context.Background(), "SELECT count(*) FROM things WHERE "+where).Scan(&n))
	return n
}

// Transactions queued while the writer is busy commit together, and each
// one's failure or panic undoes only its own writes.
func TestGroupCommitIsolatesEachTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := setup(t, 4, 1).Shard(0)
	release := holdWriter(t, db)
	commits0, txs0 := db.BatchStats()

	boom := errors.New("boom")
	type outcome struct {
		err      error
		panicked any
	}
	kinds := []string{"ok", "fail", "ok", "panic", "ok", "conflict", "ok"}
	outcomes := make([]outcome, len(kinds))
	var wg sync.WaitGroup
	for i, kind := range kinds {
		wg.Go(func() {
			defer func() { outcomes[i].panicked = recover() }()
			outcomes[i].err = db.Tx(ctx, func(tx *sql.Tx) error {
				for j := range 3 {
					if _, err := tx.ExecContext(ctx, "INSERT INTO things (id, n) VALUES ($1, $2)", fmt.Sprintf("%s-%d-%d", kind, i, j), i); err != nil {
						return sqldb.Translate(err)
					}
				}
				switch kind {
				case "fail":
					return boom
				case "panic":
					panic("kaboom")
				case "conflict":
					_, err := tx.ExecContext(ctx, "INSERT INTO things (id, n) VALUES ('holder', 1)")
					return sqldb.Translate(err)
				}
				return nil
			})
		})
		waitQueued(t, db, i+1) // queue order is the order of kinds
	}
	require.NoError(t, release())
	wg.Wait()

	for i, kind := range kinds {
		switch kind {
		case "ok":
			assert.NoError(t, outcomes[i].err, i)
			assert.Nil(t, outcomes[i].panicked, i)
			assert.Equal(t, 3, count(t, db, fmt.Sprintf("id LIKE 'ok-%d-%%'", i)), "transaction %d committed", i)
		case "fail":
			assert.ErrorIs(t, outcomes[i].err, boom)
		case "panic":
			assert.Equal(t, "kaboom", outcomes[i].panicked, "the panic reaches its caller")
		case "conflict":
			assert.Equal(t, strata.CodeConflict, strata.ErrorCode(outcomes[i].err), "the holder's row, committed in the batch before, is seen")
		}
	}
	assert.Zero(t, count(t, db, "id LIKE 'fail-%' OR id LIKE 'panic-%' OR id LIKE 'conflict-%'"), "failed transactions left nothing")
	assert.Equal(t, 4*3+1, count(t, db, "1 = 1"))
	commits, txs := db.BatchStats()
	assert.Equal(t, int64(len(kinds)), txs-txs0, "every queued transaction ran once")
	assert.Equal(t, int64(1), commits-commits0, "the queued transactions shared one commit")
}

// A caller that gives up while its transaction is queued gets its
// context's error, and the transaction never runs.
func TestGroupCommitCallerGivesUpWhileQueued(t *testing.T) {
	t.Parallel()
	db := setup(t, 4, 1).Shard(0)
	release := holdWriter(t, db)
	ctx, cancel := context.WithCancel(context.Background())
	ran := false
	errc := make(chan error, 1)
	go func() {
		errc <- db.Tx(ctx, func(tx *sql.Tx) error {
			ran = true
			return nil
		})
	}()
	waitQueued(t, db, 1)
	cancel()
	err := <-errc
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, release())
	require.NoError(t, db.Tx(context.Background(), func(*sql.Tx) error { return nil }), "the committer goes on")
	require.False(t, ran)
}

// A context canceled while its transaction runs neither interrupts its
// statements (SQLite would roll back the whole batch) nor fails the
// others of the batch.
func TestGroupCommitIgnoresCancellationOnceStarted(t *testing.T) {
	t.Parallel()
	db := setup(t, 4, 1).Shard(0)
	release := holdWriter(t, db)
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	go func() {
		errs <- db.Tx(ctx, func(tx *sql.Tx) error {
			time.AfterFunc(5*time.Millisecond, cancel) // while the statement runs
			_, err := tx.ExecContext(ctx, `INSERT INTO things (id, n) SELECT 'canceled', count(*) FROM
				(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000) SELECT x FROM c)`)
			return err
		})
	}()
	waitQueued(t, db, 1)
	go func() {
		errs <- db.Tx(context.Background(), func(tx *sql.Tx) error {
			_, err := tx.Exec("INSERT INTO things (id, n) VALUES ('bystander', 1)")
			return err
		})
	}()
	waitQueued(t, db, 2)
	require.NoError(t, release())
	require.NoError(t, <-errs)
	require.NoError(t, <-errs)
	require.Equal(t, 2, count(t, db, "id IN ('canceled', 'bystander')"))
}

// Close runs what is queued, then refuses new transactions.
func TestGroupCommitCloseDrains(t *testing.T) {
	t.Parallel()
	db := setup(t, 4, 1).Shard(0)
	release := holdWriter(t, db)
	errc := make(chan error, 1)
	go func() {
		errc <- db.Tx(context.Background(), func(tx *sql.Tx) error {
			_, err := tx.Exec("INSERT INTO things (id, n) VALUES ('queued', 1)")
			return err
		})
	}()
	waitQueued(t, db, 1)
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	require.NoError(t, release())
	require.NoError(t, <-errc, "a transaction queued before Close commits")
	require.NoError(t, <-closed)
	err := db.Tx(context.Background(), func(*sql.Tx) error { return nil })
	require.ErrorContains(t, err, "closed")
}
