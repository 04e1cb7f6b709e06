package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// stmtCache holds a database's prepared statements by SQL text. Parsing
// SQL text was a quarter of a purchase's CPU, spent while holding
// SQLite's one writer. Statements cannot be prepared on the writer while
// a transaction holds its only connection, so a query first seen inside a
// transaction runs as text and is prepared when the transaction ends;
// later transactions bind the prepared statement (Tx.StmtContext reuses
// it on a connection that has it, and prepares it on one that has not).
type stmtCache struct {
	mu      sync.Mutex
	ready   map[string]*sql.Stmt
	pending map[string]bool
}

func newStmtCache() *stmtCache {
	return &stmtCache{ready: map[string]*sql.Stmt{}, pending: map[string]bool{}}
}

// get returns the prepared q, or nil after noting q for preparation.
func (c *stmtCache) get(q string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.ready[q]
	if st == nil {
		c.pending[q] = true
	}
	return st
}

// prepare prepares on pool the queries noted since the last call; one
// that cannot be prepared keeps running as text.
func (c *stmtCache) prepare(ctx context.Context, pool *sql.DB) {
	c.mu.Lock()
	var qs []string
	for q := range c.pending {
		qs = append(qs, q)
	}
	clear(c.pending)
	c.mu.Unlock()
	for _, q := range qs {
		st, err := pool.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		c.mu.Lock()
		if c.ready[q] == nil {
			c.ready[q], st = st, nil
		}
		c.mu.Unlock()
		if st != nil {
			st.Close()
		}
	}
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.ready {
		st.Close()
	}
	clear(c.ready)
}

// Exec runs q in tx, prepared once db has seen it, and returns the rows it
// affected; an error names action and is translated (see Translate).
func (db *DB) Exec(ctx context.Context, tx *sql.Tx, action, q string, args ...any) (int64, error) {
	var res sql.Result
	var err error
	if st := db.stmts.get(q); st != nil {
		res, err = tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	} else {
		res, err = tx.ExecContext(ctx, q, args...)
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", action, Translate(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", action, err)
	}
	return n, nil
}

// QueryRow runs q in tx, prepared once db has seen it.
func (db *DB) QueryRow(ctx context.Context, tx *sql.Tx, q string, args ...any) *sql.Row {
	if st := db.stmts.get(q); st != nil {
		return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, q, args...)
}
