package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stratadev/strata/internal/resilience"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/stratadev/strata"
	"modernc.org/sqlite" // the pure-Go SQLite driver, registered as "sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect names a SQL engine.
type Dialect string

// The dialects Strata supports.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Querier is what *sql.DB and *sql.Tx have in common: module queries take one
// so they run inside or outside a transaction alike.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// DB is one physical database: a writer pool and a reader pool. For SQLite
// the writer is a single connection (SQLite has one writer at a time; queuing
// in Go is cheaper than spinning on SQLITE_BUSY) and readers are a pool of
// read-only connections that WAL lets run beside the writer.
type DB struct {
	name    string
	dialect Dialect
	writer  *sql.DB
	reader  *sql.DB
	stmts   *stmtCache   // statements prepared on the writer
	commits *committer   // SQLite's group commit; nil on PostgreSQL
	reads   *Pool        // the reader pool, preparing its queries
	primary *Pool        // the pool that sees every committed write
	retries atomic.Int64 // PostgreSQL transactions run again (see Retries)
	// label is the database's name in the shard map ("" outside a
	// router): consistency tokens name databases by it.
	label    string
	replicas *replicaSet // PostgreSQL streaming replicas; nil without
	// guard runs PostgreSQL transactions and pings through the database's
	// resilience policies (nil: none; see SetGuard).
	guard *resilience.Guard
}

// SetGuard makes the transactions and pings of a PostgreSQL database go
// through g: a timeout, a circuit breaker (a database that keeps failing
// fails requests at once, 503 with Retry-After, instead of each waiting
// on it) and a bulkhead. Transactions are never retried by the guard —
// Tx retries serialization failures and deadlocks itself. SQLite, a file
// of this process, is not guarded. Call it before use.
func (db *DB) SetGuard(g *resilience.Guard) {
	if db.dialect == Postgres {
		db.guard = g
	}
}

// SQLiteOptions tunes OpenSQLite.
type SQLiteOptions struct {
	// BusyTimeout is how long a connection waits for a lock held by another
	// process (a CLI command beside the server) before failing.
	BusyTimeout time.Duration
	// ReadConns is the size of the reader pool; 0 means max(4, NumCPU).
	ReadConns int
}

// OpenSQLite opens (creating if needed) the SQLite database at path with
// busy_timeout first, then WAL, synchronous=NORMAL and foreign keys on.
func OpenSQLite(ctx context.Context, path string, opts SQLiteOptions) (*DB, error) {
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	if opts.ReadConns <= 0 {
		opts.ReadConns = max(4, runtime.NumCPU())
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create database folder: %w", err)
	}
	pragmas := []string{
		fmt.Sprintf("busy_timeout(%d)", opts.BusyTimeout.Milliseconds()),
		"journal_mode(WAL)",
		"synchronous(NORMAL)",
		"foreign_keys(ON)",
		// Savepoints (group commit runs each transaction in one) keep their
		// undo pages in memory rather than in a temporary file.
		"temp_store(MEMORY)",
	}
	dsn := func(extra ...string) string {
		q := url.Values{}
		for _, p := range append(pragmas, extra...) {
			q.Add("_pragma", p)
		}
		q.Set("_txlock", "immediate") // take the write lock at BEGIN: no upgrade deadlocks
		return "file:" + path + "?" + q.Encode()
	}
	wc, err := newWriterConnector(dsn())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	writer := sql.OpenDB(wc)
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	// The writer connection creates the file and switches it to WAL before
	// any reader opens it.
	if err := writer.PingContext(ctx); err != nil {
		writer.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	reader, err := sql.Open("sqlite", dsn("query_only(1)"))
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	reader.SetMaxOpenConns(opts.ReadConns)
	reader.SetMaxIdleConns(opts.ReadConns)
	stmts := newStmtCache()
	reads := newPool(reader)
	// WAL readers see every committed write, and a write is acknowledged
	// only once committed: reads need not queue for the one writer.
	return &DB{name: path, dialect: SQLite, writer: writer, reader: reader, stmts: stmts,
		commits: newCommitter(writer, stmts), reads: reads, primary: reads}, nil
}

// Name identifies the database in logs and metrics (a file path or a host).
func (db *DB) Name() string { return db.name }

// Dialect returns the engine of db.
func (db *DB) Dialect() Dialect { return db.dialect }

// Writer returns the pool for writes and read-your-writes reads.
func (db *DB) Writer() *sql.DB { return db.writer }

// Reader returns the pool for reads that tolerate a little staleness. On
// SQLite it sees every committed write.
func (db *DB) Reader() *sql.DB { return db.reader }

// Read returns the reader pool as a Querier that prepares its queries:
// for reads that tolerate a little staleness.
//
// On PostgreSQL with replicas (AddReplicas), each read goes to a healthy
// replica lagging at most the bound — one that has replayed the caller's
// writes, when the context carries a Consistency — or else to the
// primary.
func (db *DB) Read() Querier {
	if db.replicas != nil {
		return routedReads{db}
	}
	return db.reads
}

// Primary returns a Querier, preparing its queries, for reads outside a
// transaction that must see every write acknowledged so far (a purchase
// seen by the buyer's next request): the primary on PostgreSQL; on SQLite
// the reader pool, whose WAL snapshots include every commit — such reads
// do not queue behind the one writer.
func (db *DB) Primary() *Pool { return db.primary }

// Ping checks that the database answers a query.
func (db *DB) Ping(ctx context.Context) error {
	return db.guard.Do(ctx, resilience.Once, func(ctx context.Context) error {
		var one int
		if err := db.reader.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
			return fmt.Errorf("ping %s: %w", db.name, err)
		}
		return nil
	})
}

// ForUpdate returns the clause that makes a SELECT inside a transaction
// lock the rows it reads: " FOR UPDATE" on PostgreSQL, nothing on SQLite,
// where a write transaction (BEGIN IMMEDIATE, one writer) already excludes
// every other writer.
func (db *DB) ForUpdate() string {
	if db.dialect == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// Close runs the transactions already queued, then closes both pools.
func (db *DB) Close() error {
	if db.commits != nil {
		db.commits.close()
	}
	if db.replicas != nil {
		db.replicas.close()
	}
	db.stmts.close()
	db.reads.close()
	if db.primary != db.reads {
		db.primary.close()
	}
	return errors.Join(db.reader.Close(), db.writer.Close())
}

// Tx runs fn in a write transaction, committing when fn returns nil and
// rolling back otherwise (also when fn panics, which is re-raised).
//
// On SQLite, fn runs on the group committer (see committer): inside a
// savepoint of a transaction it may share with others queued at the same
// time, one at a time, and Tx returns after that transaction committed.
// So fn must do database work only — what it reads and writes through tx —
// and must not wait for anything another transaction would do.
//
// On PostgreSQL, a transaction that fails with a serialization failure or
// a deadlock, at any statement or at commit, is rolled back and fn runs
// again, up to txAttempts times in all (see pgTxRetry). So fn may run more
// than once and must have no effect outside the transaction beyond setting
// its own results, which each run sets afresh.
func (db *DB) Tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if db.commits != nil {
		return db.commits.do(ctx, fn)
	}
	if err := db.guard.Do(ctx, resilience.Once, func(ctx context.Context) error { return db.pgTxRetry(ctx, fn) }); err != nil {
		return err
	}
	db.observeCommit(ctx)
	return nil
}

// pgTx runs fn in one PostgreSQL transaction (see Tx).
func (db *DB) pgTx(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	tx, err := db.writer.BeginTx(ctx, nil)
	if err != nil {
		return Translate(fmt.Errorf("begin: %w", err))
	}
	// The queries this transaction ran as text are prepared once it has
	// released the writer (see Exec): deferred first, so it runs after the
	// rollback below.
	defer db.stmts.prepare(context.WithoutCancel(ctx), db.writer)
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return Translate(fmt.Errorf("commit: %w", err))
	}
	return nil
}

// Translate turns driver errors into strata errors at the storage boundary:
// sql.ErrNoRows is not_found, a unique-constraint violation is conflict, a
// busy or locked database (or, on PostgreSQL, a serialization failure or a
// deadlock, which a retry resolves) is unavailable. Other errors pass
// through.
func Translate(err error) error {
	if err == nil {
		return nil
	}
	var se *strata.Error
	switch {
	case errors.As(err, &se):
		return err
	case errors.Is(err, sql.ErrNoRows):
		return &strata.Error{Code: strata.CodeNotFound, Reason: "not_found", Message: "not found", Err: err}
	case IsUniqueViolation(err):
		return &strata.Error{Code: strata.CodeConflict, Reason: "conflict", Message: "already exists", Err: err}
	case isBusy(err), pgCode(err) == pgSerializationFailure, pgCode(err) == pgDeadlockDetected:
		return &strata.Error{Code: strata.CodeUnavailable, Reason: "database_busy", Message: "the database is busy; retry", RetryAfter: time.Second, Err: err}
	}
	return err
}

// IsUniqueViolation reports whether err is a unique or primary-key
// constraint violation, on any dialect.
func IsUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return pgCode(err) == pgUniqueViolation
}

func isBusy(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code() & 0xff
		return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
	}
	return false
}

// Outage reports whether err means the database could not be reached or
// dropped the connection — what a circuit breaker should count (the
// FailureFunc of a database's guard) — rather than an answer (not found,
// a conflict, contention) or an error of the caller's own making.
func Outage(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var ne net.Error
	var ce *pgconn.ConnectError
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &ne), errors.As(err, &ce):
		return true
	case errors.As(err, &pe):
		// 08: connection exception; 57P: the server shutting down or
		// unable to serve; 53300: too many connections.
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57P") || pe.Code == "53300"
	}
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.DeadlineExceeded)
}
