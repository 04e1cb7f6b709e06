package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stratadev/strata"
)

// maxBatch bounds how many transactions one SQLite commit carries.
const maxBatch = 128

// committer runs a SQLite database's write transactions with group commit.
// SQLite has one writer, and a commit's cost is mostly writing the pages it
// changed to the WAL: consecutive small transactions touch the same pages
// (the end of a table, an index leaf), so committing them together writes
// those pages once instead of once each, and the writer is handed over once
// per batch instead of once per transaction.
//
// Transactions queue; one goroutine takes everything queued (up to
// maxBatch), opens one SQLite transaction and runs each function inside a
// savepoint of its own, so a function that fails (or panics) is rolled back
// alone and the others go on; then it commits once and answers every
// caller. Nobody waits for a batch to fill: a lone transaction is committed
// at once, and batches form only while the writer is busy, exactly when
// they pay. A caller returns only after the commit that holds its work, so
// an acknowledged write is as durable as without batching.
//
// Functions run one at a time on the committer's goroutine, in queue
// order, with the caller's context stripped of its cancellation: SQLite
// answers an interrupted write inside a transaction by rolling back the
// whole transaction, which here would be the whole batch. A caller whose
// context ends while its function is still queued gives up and the
// function never runs; once started, a function runs to its end.
type committer struct {
	writer *sql.DB
	stmts  *stmtCache

	mu     sync.Mutex
	queue  []*txReq
	closed bool

	wake chan struct{} // one token: the queue is not empty
	done chan struct{} // closed when the committer has stopped

	batches, txs atomic.Int64 // for BatchStats
}

// The states of a queued transaction: only one of the caller (giving up)
// and the committer (starting it) moves it out of reqQueued.
const (
	reqQueued int32 = iota
	reqStarted
	reqAbandoned
)

type txReq struct {
	ctx   context.Context
	fn    func(*sql.Tx) error
	state atomic.Int32
	err   error
	panic any // what fn panicked with, re-raised in the caller
	done  chan struct{}
}

var errClosed = errors.New("the database is closed")

func newCommitter(writer *sql.DB, stmts *stmtCache) *committer {
	c := &committer{writer: writer, stmts: stmts, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go c.run()
	return c
}

// do runs fn in a write transaction of a batch and returns once that batch
// has committed or rolled back.
func (c *committer) do(ctx context.Context, fn func(*sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return Translate(fmt.Errorf("begin: %w", err))
	}
	r := &txReq{ctx: ctx, fn: fn, done: make(chan struct{})}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return fmt.Errorf("begin: %w", errClosed)
	}
	c.queue = append(c.queue, r)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqAbandoned) {
			return Translate(fmt.Errorf("begin: %w", ctx.Err()))
		}
		<-r.done // started: its outcome is the caller's to know
	}
	if r.panic != nil {
		panic(r.panic)
	}
	return r.err
}

// close stops taking transactions, runs those already queued and stops.
func (c *committer) close() {
	c.mu.Lock()
	already := c.closed
	c.closed = true
	c.mu.Unlock()
	if !already {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	<-c.done
}

func (c *committer) run() {
	defer close(c.done)
	for range c.wake {
		for {
			c.mu.Lock()
			n := min(len(c.queue), maxBatch)
			batch := c.queue[:n:n]
			c.queue = c.queue[n:]
			if len(c.queue) == 0 {
				c.queue = nil // let the backing array go
			}
			closed := c.closed
			c.mu.Unlock()
			if n == 0 {
				if closed {
					return
				}
				break
			}
			c.commit(batch)
		}
	}
}

// commit runs batch in one transaction.
func (c *committer) commit(batch []*txReq) {
	live := batch[:0]
	for _, r := range batch {
		if r.state.CompareAndSwap(reqQueued, reqStarted) {
			live = append(live, r)
		}
	}
	if len(live) == 0 {
		return
	}
	defer func() {
		for _, r := range live {
			close(r.done)
		}
	}()
	// Statements the batch ran as text are prepared once it has released
	// the writer (see Exec).
	defer c.stmts.prepare(context.Background(), c.writer)
	c.batches.Add(1)
	c.txs.Add(int64(len(live)))

	tx, err := c.writer.BeginTx(context.Background(), nil)
	if err != nil {
		err = Translate(fmt.Errorf("begin: %w", err))
		for _, r := range live {
			r.err = err
		}
		return
	}
	if len(live) == 1 {
		// Alone: no savepoint needed, fn's failure rolls back everything.
		r := live[0]
		if !r.call(tx) {
			_ = tx.Rollback()
			return
		}
		if err := tx.Commit(); err != nil {
			r.err = Translate(fmt.Errorf("commit: %w", err))
		}
		return
	}
	var ok []*txReq
	var broken error
	for _, r := range live {
		if broken != nil {
			r.err = broken
			continue
		}
		if _, err := c.exec(tx, "SAVEPOINT strata_tx"); err != nil {
			broken = batchFailed(err)
			r.err = broken
			continue
		}
		succeeded := r.call(tx)
		if !succeeded {
			if _, err := c.exec(tx, "ROLLBACK TO strata_tx"); err != nil {
				// SQLite rolled the whole transaction back (an I/O error,
				// a full disk): nothing of the batch survives.
				broken = batchFailed(err)
				continue
			}
		}
		if _, err := c.exec(tx, "RELEASE strata_tx"); err != nil {
			broken = batchFailed(err)
			if succeeded {
				r.err = broken
			}
			continue
		}
		if succeeded {
			ok = append(ok, r)
		}
	}
	if broken != nil {
		_ = tx.Rollback()
		for _, r := range ok {
			r.err = broken
		}
		return
	}
	if err := tx.Commit(); err != nil {
		err = Translate(fmt.Errorf("commit: %w", err))
		for _, r := range ok {
			r.err = err
		}
	}
}

// exec runs one of the batch's own statements in tx, prepared once seen.
func (c *committer) exec(tx *sql.Tx, q string) (sql.Result, error) {
	if st := c.stmts.get(q); st != nil {
		return tx.Stmt(st).Exec()
	}
	return tx.Exec(q)
}

// batchFailed is the error of every transaction of a batch SQLite could
// not keep: none of them committed, and each may be run again.
func batchFailed(err error) error {
	return &strata.Error{Code: strata.CodeUnavailable, Reason: "database_busy",
		Message: "the database could not complete the transaction; retry", RetryAfter: time.Second,
		Err: fmt.Errorf("group commit: %w", err)}
}

// call runs the function of r in tx and reports whether it succeeded; a
// failure or a panic is kept in r for its caller.
func (r *txReq) call(tx *sql.Tx) (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			r.panic = p
			ok = false
		}
	}()
	if err := r.fn(tx); err != nil {
		r.err = err
		return false
	}
	return true
}

// BatchStats reports how many write batches db committed (or tried to)
// and how many transactions they carried: their ratio is the mean batch
// size. Both are zero on PostgreSQL, which has no group commit here.
func (db *DB) BatchStats() (batches, txs int64) {
	if db.commits == nil {
		return 0, 0
	}
	return db.commits.batches.Load(), db.commits.txs.Load()
}
