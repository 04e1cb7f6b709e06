package sqldb

import (
	"context"
	"database/sql"
	"sync"
)

// maxPoolStmts bounds the statements a Pool keeps prepared; queries past
// it (built from varying filters, say) run as text.
const maxPoolStmts = 256

// Pool is a connection pool whose queries are prepared the first time
// their text is seen and bound thereafter, sparing the parse that
// otherwise costs as much as a point query itself. It is a Querier.
type Pool struct {
	db    *sql.DB
	mu    sync.RWMutex
	stmts map[string]*sql.Stmt
}

func newPool(db *sql.DB) *Pool { return &Pool{db: db, stmts: map[string]*sql.Stmt{}} }

// DB returns the underlying pool.
func (p *Pool) DB() *sql.DB { return p.db }

// stmt returns q prepared, or nil to run it as text.
func (p *Pool) stmt(ctx context.Context, q string) *sql.Stmt {
	p.mu.RLock()
	st, ok := p.stmts[q]
	n := len(p.stmts)
	p.mu.RUnlock()
	if ok || n >= maxPoolStmts {
		return st
	}
	st, err := p.db.PrepareContext(ctx, q)
	if err != nil {
		return nil // run as text, which reports the error if there is one
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if prev, ok := p.stmts[q]; ok {
		st.Close()
		return prev
	}
	p.stmts[q] = st
	return st
}

// QueryContext runs q, prepared.
func (p *Pool) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := p.stmt(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return p.db.QueryContext(ctx, q, args...)
}

// QueryRowContext runs q, prepared.
func (p *Pool) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if st := p.stmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return p.db.QueryRowContext(ctx, q, args...)
}

// ExecContext runs q, prepared.
func (p *Pool) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st := p.stmt(ctx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return p.db.ExecContext(ctx, q, args...)
}

func (p *Pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, st := range p.stmts {
		st.Close()
	}
	clear(p.stmts)
}
