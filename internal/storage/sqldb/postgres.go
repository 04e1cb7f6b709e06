package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// PostgresOptions tunes a PostgreSQL pool.
type PostgresOptions struct {
	// MaxConns bounds the pool (default 16); idle connections are kept up
	// to a quarter of it.
	MaxConns int
	// ConnMaxLifetime recycles connections (default 30m), so a failover
	// or a rebalanced proxy is picked up.
	ConnMaxLifetime time.Duration
}

// OpenPostgres opens a pool on the PostgreSQL database at dsn (a
// postgres:// URL or a keyword/value string) through pgx's database/sql
// driver, and pings it. Reads and writes share the pool: replicas come
// with the replication work.
func OpenPostgres(ctx context.Context, dsn string, opts PostgresOptions) (*DB, error) {
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
	pool.SetMaxIdleConns(max(1, opts.MaxConns/4))
	pool.SetConnMaxLifetime(opts.ConnMaxLifetime)
	pool.SetConnMaxIdleTime(5 * time.Minute)
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
