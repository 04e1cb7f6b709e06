package sqldb_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/storage/sqldb"
	"github.com/stratadev/strata/internal/storage/sqldbtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func setup(t *testing.T, shards, files int) *sqldb.Router {
	t.Helper()
	return setupOn(t, sqldb.SQLite, shards, files)
}

// setupOn opens shards logical shards over files databases of dialect
// and migrates them.
func setupOn(t *testing.T, dialect sqldb.Dialect, shards, files int) *sqldb.Router {
	t.Helper()
	var r *sqldb.Router
	if dialect == sqldb.Postgres {
		r = sqldbtest.OpenPostgresShards(t, shards, files)
	} else {
		r = sqldbtest.OpenSQLiteShards(t, shards, files)
	}
	sqldbtest.Migrate(t, r, "test", os.DirFS("testdata/migrations"))
	return r
}

// eachDialect runs fn as a subtest on SQLite and on PostgreSQL.
func eachDialect(t *testing.T, fn func(t *testing.T, dialect sqldb.Dialect)) {
	for _, d := range []sqldb.Dialect{sqldb.SQLite, sqldb.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			fn(t, d)
		})
	}
}

func TestPragmas(t *testing.T) {
	t.Parallel()
	db := setup(t, 4, 1).Shard(0)
	ctx := context.Background()
	for pragma, want := range map[string]string{"journal_mode": "wal", "synchronous": "1", "foreign_keys": "1", "busy_timeout": "5000", "temp_store": "2"} {
		var got string
		require.NoError(t, db.Writer().QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got))
		require.Equal(t, want, got, pragma)
		require.NoError(t, db.Reader().QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got))
		require.Equal(t, want, got, "reader "+pragma)
	}
	_, err := db.Reader().ExecContext(ctx, "INSERT INTO things (id, n) VALUES ('x', 1)")
	require.Error(t, err, "the reader pool is read-only")
	require.Equal(t, sqldb.SQLite, db.Dialect())
	require.Empty(t, db.ForUpdate(), "SQLite's single writer needs no row locks")
}

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	r := setup(t, 4, 1)
	require.NoError(t, sqldb.MigrateAll(context.Background(), r, "test", os.DirFS("testdata/migrations")))
}

func TestTxCommitRollbackTranslate(t *testing.T) {
	t.Parallel()
	eachDialect(t, testTxCommitRollbackTranslate)
}

func testTxCommitRollbackTranslate(t *testing.T, dialect sqldb.Dialect) {
	ctx := context.Background()
	db := setupOn(t, dialect, 4, 1).Shard(0)
	insert := func(tx *sql.Tx, id string) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO things (id, n) VALUES ($1, $2)", id, 1)
		return sqldb.Translate(err)
	}
	require.NoError(t, db.Tx(ctx, func(tx *sql.Tx) error { return insert(tx, "a") }))

	boom := errors.New("boom")
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		require.NoError(t, insert(tx, "b"))
		return boom
	})
	require.ErrorIs(t, err, boom)

	err = db.Tx(ctx, func(tx *sql.Tx) error { return insert(tx, "a") })
	require.Equal(t, strata.CodeConflict, strata.ErrorCode(err))

	var n int
	require.NoError(t, db.Reader().QueryRowContext(ctx, "SELECT count(*) FROM things").Scan(&n))
	require.Equal(t, 1, n, "only the committed row exists")

	err = sqldb.Translate(db.Reader().QueryRowContext(ctx, "SELECT n FROM things WHERE id = $1", "zz").Scan(&n))
	require.Equal(t, strata.CodeNotFound, strata.ErrorCode(err))
}

func TestConcurrentWritersSerialize(t *testing.T) {
	t.Parallel()
	eachDialect(t, testConcurrentWritersSerialize)
}

func testConcurrentWritersSerialize(t *testing.T, dialect sqldb.Dialect) {
	ctx := context.Background()
	db := setupOn(t, dialect, 4, 1).Shard(0)
	_, err := db.Writer().ExecContext(ctx, "INSERT INTO things (id, n) VALUES ('counter', 0)")
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for range 10 {
				err := db.Tx(ctx, func(tx *sql.Tx) error {
					var n int
					if err := tx.QueryRowContext(ctx, "SELECT n FROM things WHERE id = 'counter'"+db.ForUpdate()).Scan(&n); err != nil {
						return err
					}
					_, err := tx.ExecContext(ctx, "UPDATE things SET n = $1 WHERE id = 'counter'", n+1)
					return err
				})
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	var n int
	require.NoError(t, db.Reader().QueryRowContext(ctx, "SELECT n FROM things WHERE id = 'counter'").Scan(&n))
	require.Equal(t, 200, n, "read-modify-write transactions never lose an update")
}

func TestRouterSpreadsShards(t *testing.T) {
	t.Parallel()
	r := setup(t, 8, 2)
	require.Len(t, r.DBs(), 2)
	require.Same(t, r.DBs()[0], r.Shard(3))
	require.Same(t, r.DBs()[1], r.Shard(4))
	id := strata.NewID("usr", 6, time.Now())
	db, err := r.ForID(id)
	require.NoError(t, err)
	require.Same(t, r.DBs()[1], db)

	_, err = r.ForID(strata.NewID("usr", 9, time.Now()))
	require.Equal(t, strata.CodeNotFound, strata.ErrorCode(err), "a shard past the count")
	_, err = r.ForID("garbage")
	require.Equal(t, strata.CodeNotFound, strata.ErrorCode(err))
	require.NoError(t, r.Ping(context.Background()))

	_, err = sqldb.NewRouter(0, r.DBs()...)
	require.Error(t, err)
	_, err = sqldb.NewRouter(1, r.DBs()...)
	require.Error(t, err, "more databases than shards")
}

func TestPostgresDialect(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := setupOn(t, sqldb.Postgres, 4, 2)
	db := r.Shard(0)
	require.Equal(t, sqldb.Postgres, db.Dialect())
	require.Equal(t, " FOR UPDATE", db.ForUpdate())
	require.NotSame(t, r.Shard(0), r.Shard(3), "two databases")
	require.NoError(t, r.Ping(ctx))
	require.NotContains(t, db.Name(), "password")

	// A boolean parameter, a BIGINT at the int64 limits, an upsert.
	_, err := db.Writer().ExecContext(ctx, "INSERT INTO things (id, n, flag) VALUES ($1, $2, $3)", "big", int64(9223372036854775807), true)
	require.NoError(t, err)
	var n int64
	var flag bool
	require.NoError(t, db.Reader().QueryRowContext(ctx, "SELECT n, flag FROM things WHERE id = $1 AND (flag OR $2)", "big", false).Scan(&n, &flag))
	require.Equal(t, int64(9223372036854775807), n)
	require.True(t, flag)
	_, err = db.Writer().ExecContext(ctx, "INSERT INTO things (id, n) VALUES ('big', 1) ON CONFLICT (id) DO NOTHING")
	require.NoError(t, err)

	// Crossing transactions, which deadlock, are retried: retry_test.go.
}

func TestStatementsArePreparedAfterTheirFirstTransaction(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, dialect sqldb.Dialect) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		db := setupOn(t, dialect, 4, 1).Shard(0)
		const q = "INSERT INTO things (id, n) VALUES ($1, $2)"
		insert := func(id string) error {
			return db.Tx(ctx, func(tx *sql.Tx) error {
				n, err := db.Exec(ctx, tx, "insert thing", q, id, 1)
				if err == nil && n != 1 {
					err = errors.New("one row expected")
				}
				return err
			})
		}
		require.False(t, sqldb.Prepared(db, q))
		require.NoError(t, insert("a"))
		require.True(t, sqldb.Prepared(db, q), "prepared once the transaction ended")
		require.NoError(t, insert("b"), "and bound in the next")
		err := insert("a")
		require.Equal(t, strata.CodeConflict, strata.ErrorCode(err), "errors still translate")
		require.True(t, sqldb.IsUniqueViolation(err), "and keep the driver's error underneath")
		require.Contains(t, err.Error(), "insert thing")
		// A failed transaction prepares after its rollback, without
		// waiting on itself for the writer.
		require.Error(t, db.Tx(ctx, func(tx *sql.Tx) error {
			var n int
			_ = db.QueryRow(ctx, tx, "SELECT n FROM things WHERE id = $1", "a").Scan(&n)
			return errors.New("give up")
		}))
		var n int
		require.NoError(t, db.Tx(ctx, func(tx *sql.Tx) error {
			return db.QueryRow(ctx, tx, "SELECT n FROM things WHERE id = $1", "a").Scan(&n)
		}))
		require.Equal(t, 1, n)
		require.True(t, sqldb.Prepared(db, "SELECT n FROM things WHERE id = $1"))
	})
}
