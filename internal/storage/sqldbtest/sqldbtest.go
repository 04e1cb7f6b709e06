// Package sqldbtest opens real databases for tests: SQLite files in the
// test's temporary folder, and PostgreSQL databases on a server started
// for the test process (postgres.go).
package sqldbtest

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stratadev/strata/internal/storage/sqldb"
)

// DefaultShards is the logical shard count tests use unless they say.
const DefaultShards = 16

// DialectEnv selects the dialect of the store suites: STRATA_TEST_DIALECT
// set to "postgres" makes OpenShards and Open give PostgreSQL databases,
// so a module's whole suite runs on PostgreSQL; unset or "sqlite" means
// SQLite. Main, unless it is set, runs a suite once with it unset and
// once with it set to "postgres".
const DialectEnv = "STRATA_TEST_DIALECT"

// Dialect returns the dialect the store suites run on (DialectEnv).
func Dialect(t testing.TB) sqldb.Dialect {
	switch v := os.Getenv(DialectEnv); v {
	case "", string(sqldb.SQLite):
		return sqldb.SQLite
	case string(sqldb.Postgres):
		return sqldb.Postgres
	default:
		t.Fatalf("%s=%q: want sqlite or postgres", DialectEnv, v)
		return ""
	}
}

// Open returns a router over one fresh database with DefaultShards
// logical shards, closed when the test ends (see OpenShards).
func Open(t testing.TB) *sqldb.Router {
	t.Helper()
	return OpenShards(t, DefaultShards, 1)
}

// OpenShards returns a router spreading numShards logical shards over files
// fresh databases of the suites' dialect (Dialect): SQLite files, or
// PostgreSQL databases.
func OpenShards(t testing.TB, numShards, files int) *sqldb.Router {
	t.Helper()
	if Dialect(t) == sqldb.Postgres {
		return OpenPostgresShards(t, numShards, files)
	}
	return OpenSQLiteShards(t, numShards, files)
}

// OpenSQLiteShards is OpenShards on SQLite whatever the environment, for
// tests of SQLite itself.
func OpenSQLiteShards(t testing.TB, numShards, files int) *sqldb.Router {
	t.Helper()
	dir := t.TempDir()
	i := 0
	return router(t, numShards, files, func() (*sqldb.DB, error) {
		i++
		return sqldb.OpenSQLite(context.Background(), filepath.Join(dir, fmt.Sprintf("shard-%d.db", i-1)), sqldb.SQLiteOptions{})
	})
}

// router opens n databases with open, closed when the test ends, and
// spreads numShards logical shards over them.
func router(t testing.TB, numShards, n int, open func() (*sqldb.DB, error)) *sqldb.Router {
	t.Helper()
	var dbs []*sqldb.DB
	for range n {
		db, err := open()
		if err != nil {
			t.Fatalf("open database: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		dbs = append(dbs, db)
	}
	r, err := sqldb.NewRouter(numShards, dbs...)
	if err != nil {
		t.Fatalf("router: %v", err)
	}
	return r
}

// Migrate applies a module's migrations on every database of r or fails t.
func Migrate(t testing.TB, r *sqldb.Router, module string, fsys fs.FS) {
	t.Helper()
	if err := sqldb.MigrateAll(context.Background(), r, module, fsys); err != nil {
		t.Fatalf("migrate %s: %v", module, err)
	}
}
