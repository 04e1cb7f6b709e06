// Package sqldbtest opens real databases for tests: SQLite files in the
// test's temporary folder (PostgreSQL joins when its dialect lands).
package sqldbtest

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/stratadev/strata/internal/storage/sqldb"
)

// DefaultShards is the logical shard count tests use unless they say.
const DefaultShards = 16

// Open returns a router over one fresh SQLite database with DefaultShards
// logical shards, closed when the test ends.
func Open(t testing.TB) *sqldb.Router {
	t.Helper()
	return OpenShards(t, DefaultShards, 1)
}

// OpenShards returns a router spreading numShards logical shards over files
// fresh SQLite databases.
func OpenShards(t testing.TB, numShards, files int) *sqldb.Router {
	t.Helper()
	dir := t.TempDir()
	var dbs []*sqldb.DB
	for i := range files {
		db, err := sqldb.OpenSQLite(context.Background(), filepath.Join(dir, fmt.Sprintf("shard-%d.db", i)), sqldb.SQLiteOptions{})
		if err != nil {
			t.Fatalf("open sqlite: %v", err)
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
