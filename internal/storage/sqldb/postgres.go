package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// PostgresOptions tunes a PostgreSQL pool.
type PostgresOptions struct {
	// MaxConns bounds the pool (default 16), idle connections included.
	MaxConns int
	// ConnMaxLifetime recycles connections (default 30m), so a failover
	// or a rebalanced proxy is picked up.
	ConnMaxLifetime time.Duration
}

// OpenPostgres opens a pool on the PostgreSQL database at dsn (a
// postgres:// URL or a keyword/value string) through pgx's database/sql
// driver, and pings it. Reads and writes share the pool; AddReplicas
// sends the stale-tolerant reads to streaming replicas.
func OpenPostgres(ctx context.Context, dsn string, opts PostgresOptions) (*DB, error) {
	pool, err := openPostgresPool(dsn, opts)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.PingContext(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres %s: %w", redactDSN(dsn), err)
	}
	p := newPool(pool)
	return &DB{name: redactDSN(dsn), dialect: Postgres, writer: pool, reader: pool, stmts: newStmtCache(),
		reads: p, primary: p}, nil
}

// openPostgresPool opens (without connecting) a pool on dsn sized by opts.
func openPostgresPool(dsn string, opts PostgresOptions) (*sql.DB, error) {
	if opts.MaxConns <= 0 {
		opts.MaxConns = 16
	}
	if opts.ConnMaxLifetime <= 0 {
		opts.ConnMaxLifetime = 30 * time.Minute
	}
	pool, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	pool.SetMaxOpenConns(opts.MaxConns)
	// Keep the whole pool warm: a new PostgreSQL connection costs ~10 ms
	// of server CPU, and keeping only a quarter idle churned hundreds of
	// them per second under load (bench/payments-pg.sh). Idle ones still
	// close after ConnMaxIdleTime.
	pool.SetMaxIdleConns(opts.MaxConns)
	pool.SetConnMaxLifetime(opts.ConnMaxLifetime)
	pool.SetConnMaxIdleTime(5 * time.Minute)
	return pool, nil
}

// redactDSN drops the password of a URL DSN, for names and errors.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return "postgres"
	}
	return u.Redacted()
}

// PostgreSQL SQLSTATEs Translate knows.
const (
	pgUniqueViolation      = "23505"
	pgSerializationFailure = "40001"
	pgDeadlockDetected     = "40P01"
)

// pgCode returns the SQLSTATE of a PostgreSQL error, or "".
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// A PostgreSQL transaction that fails with a serialization failure or a
// deadlock runs at most txAttempts times in all, pausing between runs for
// a random time up to txBackoffBase, doubling after each run up to
// txBackoffMax ("full jitter": transactions that collided do not collide
// again in step).
const (
	txAttempts    = 3
	txBackoffBase = 5 * time.Millisecond
	txBackoffMax  = 100 * time.Millisecond
)

// pgTxRetry runs fn with pgTx, again while it fails with a serialization
// failure or a deadlock (see Tx), and returns the last failure translated
// (unavailable) once txAttempts runs failed or ctx is done.
func (db *DB) pgTxRetry(ctx context.Context, fn func(tx *sql.Tx) error) error {
	ceiling := txBackoffBase
	for attempt := 1; ; attempt++ {
		err := db.pgTx(ctx, fn)
		if !isTxConflict(err) {
			return err
		}
		if attempt == txAttempts || ctx.Err() != nil {
			return Translate(err)
		}
		pause := time.NewTimer(rand.N(ceiling + 1))
		select {
		case <-ctx.Done():
			pause.Stop()
			return Translate(err)
		case <-pause.C:
		}
		ceiling = min(2*ceiling, txBackoffMax)
		db.retries.Add(1)
	}
}

// isTxConflict reports whether err, however wrapped, is a PostgreSQL
// serialization failure or deadlock: the transaction lost to another and
// runs again.
func isTxConflict(err error) bool {
	c := pgCode(err)
	return c == pgSerializationFailure || c == pgDeadlockDetected
}

// Retries returns how many times Tx has run a PostgreSQL transaction again
// after a serialization failure or a deadlock (see Tx); 0 on SQLite.
func (db *DB) Retries() int64 { return db.retries.Load() }
