package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// PostgreSQL streaming replicas serve the reads that tolerate staleness
// (DB.Read): a replica is used while it is healthy and its replay lag is
// under a bound, and a read that carries a consistency token (see
// Consistency) goes only to a replica that has replayed the caller's last
// write. Writes, and reads through DB.Primary or inside a transaction,
// always go to the primary. With no replica fit, reads fall back to the
// primary.

// ReplicaOptions tunes a database's replicas.
type ReplicaOptions struct {
	// MaxLag is the replay lag past which a replica is skipped (default
	// 5 s): the time since the last transaction it replayed, when it has
	// not replayed everything the primary wrote.
	MaxLag time.Duration
	// CheckInterval is how often each replica's health and lag are
	// measured (default 1 s).
	CheckInterval time.Duration
}

func (o ReplicaOptions) withDefaults() ReplicaOptions {
	if o.MaxLag <= 0 {
		o.MaxLag = 5 * time.Second
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = time.Second
	}
	return o
}

// replica is one streaming replica of a PostgreSQL database.
type replica struct {
	name    string
	pool    *Pool
	healthy atomic.Bool
	replay  atomic.Uint64 // the WAL position it had replayed at the last check
	lag     atomic.Int64  // nanoseconds, at the last check
	reads   atomic.Int64
	lastErr atomic.Pointer[string]
}

// replicaSet holds a database's replicas and routes reads among them.
type replicaSet struct {
	opts      ReplicaOptions
	replicas  []*replica
	next      atomic.Uint64 // round robin
	primary   atomic.Int64  // reads that went to the primary
	fallbacks atomic.Int64  // ... because no replica was fit
	stop      context.CancelFunc
	done      sync.WaitGroup
}

// AddReplicas attaches streaming replicas to a PostgreSQL database, by
// DSN, and starts checking them; DB.Close stops it. Their connection
// pools are sized like the primary's. A replica that cannot be reached
// now is kept, unhealthy, until it can.
func (db *DB) AddReplicas(ctx context.Context, dsns []string, pgOpts PostgresOptions, opts ReplicaOptions, logger *slog.Logger) error {
	if db.dialect != Postgres {
		return fmt.Errorf("replicas: %s is not a PostgreSQL database", db.name)
	}
	if db.replicas != nil {
		return fmt.Errorf("replicas: %s has its replicas already", db.name)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	rs := &replicaSet{opts: opts.withDefaults()}
	for _, dsn := range dsns {
		pool, err := openPostgresPool(dsn, pgOpts)
		if err != nil {
			rs.close()
			return fmt.Errorf("replica %s: %w", redactDSN(dsn), err)
		}
		rs.replicas = append(rs.replicas, &replica{name: redactDSN(dsn), pool: newPool(pool)})
	}
	rs.checkAll(ctx, db.writer, logger) // know the replicas' state before the first read
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	rs.stop = cancel
	rs.done.Go(func() {
		t := time.NewTicker(rs.opts.CheckInterval)
		defer t.Stop()
		for {
			select {
			case <-cctx.Done():
				return
			case <-t.C:
				rs.checkAll(cctx, db.writer, logger)
			}
		}
	})
	db.replicas = rs
	return nil
}

func (rs *replicaSet) close() {
	if rs.stop != nil {
		rs.stop()
		rs.done.Wait()
	}
	for _, r := range rs.replicas {
		r.pool.close()
		r.pool.db.Close()
	}
}

// checkAll measures every replica against the primary's WAL position.
func (rs *replicaSet) checkAll(ctx context.Context, primary *sql.DB, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, rs.opts.CheckInterval+time.Second)
	defer cancel()
	var head string
	if err := primary.QueryRowContext(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&head); err != nil {
		logger.Warn("replica check: read the primary's WAL position", "error", err)
		return // without the primary's position, keep what is known
	}
	headLSN, _ := parseLSN(head)
	for _, r := range rs.replicas {
		was := r.healthy.Load()
		err := r.check(ctx, headLSN, rs.opts.MaxLag)
		now := r.healthy.Load()
		if err != nil {
			msg := err.Error()
			r.lastErr.Store(&msg)
		}
		if was != now {
			logger.Info("replica health changed", "replica", r.name, "healthy", now,
				"lag", time.Duration(r.lag.Load()).String(), "error", err)
		}
	}
}

// check measures one replica: in recovery (a standby), its replay
// position and lag; healthy when reachable and lagging at most maxLag.
func (r *replica) check(ctx context.Context, head uint64, maxLag time.Duration) error {
	var inRecovery bool
	var replayed string
	var idle float64
	err := r.pool.db.QueryRowContext(ctx, `SELECT pg_is_in_recovery(), COALESCE(pg_last_wal_replay_lsn()::text, ''),
		COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)::float8`).Scan(&inRecovery, &replayed, &idle)
	if err != nil {
		r.healthy.Store(false)
		return err
	}
	if !inRecovery {
		r.healthy.Store(false)
		return fmt.Errorf("not a standby (pg_is_in_recovery is false)")
	}
	lsn, err := parseLSN(replayed)
	if err != nil {
		r.healthy.Store(false)
		return err
	}
	r.replay.Store(lsn)
	var lag time.Duration
	if lsn < head {
		// Behind: as far behind as the last transaction it replayed.
		lag = time.Duration(idle * float64(time.Second))
	}
	r.lag.Store(int64(lag))
	r.healthy.Store(lag <= maxLag)
	return nil
}

// pick returns the replica to read from for a caller who has seen the
// primary at position need (0: no token), or nil for the primary.
func (rs *replicaSet) pick(need uint64) *replica {
	n := len(rs.replicas)
	start := rs.next.Add(1)
	for i := range n {
		r := rs.replicas[(start+uint64(i))%uint64(n)]
		if r.healthy.Load() && r.replay.Load() >= need {
			r.reads.Add(1)
			return r
		}
	}
	rs.fallbacks.Add(1)
	rs.primary.Add(1)
	return nil
}

// routedReads is DB.Read on a database with replicas.
type routedReads struct{ db *DB }

func (q routedReads) target(ctx context.Context) *Pool {
	if r := q.db.replicas.pick(ConsistencyFrom(ctx).need(q.db.tokenName())); r != nil {
		return r.pool
	}
	return q.db.primary
}

func (q routedReads) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	p := q.target(ctx)
	rows, err := p.QueryContext(ctx, query, args...)
	if err != nil && p != q.db.primary && ctx.Err() == nil {
		// The replica failed under us: the primary answers this one, and
		// the next check takes the replica out.
		return q.db.primary.QueryContext(ctx, query, args...)
	}
	return rows, err
}

func (q routedReads) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return q.target(ctx).QueryRowContext(ctx, query, args...)
}

// ExecContext writes, so it goes to the primary.
func (q routedReads) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return q.db.primary.ExecContext(ctx, query, args...)
}

// ReplicaStat describes one replica for metrics.
type ReplicaStat struct {
	Name    string
	Healthy bool
	Lag     time.Duration
	Reads   int64
	LastErr string
}

// ReplicaStats reports db's replicas, and how many stale-tolerant reads
// went to the primary and how many of those fell back for want of a fit
// replica. Empty without replicas.
func (db *DB) ReplicaStats() (replicas []ReplicaStat, primaryReads, fallbacks int64) {
	if db.replicas == nil {
		return nil, 0, 0
	}
	for _, r := range db.replicas.replicas {
		s := ReplicaStat{Name: r.name, Healthy: r.healthy.Load(), Lag: time.Duration(r.lag.Load()), Reads: r.reads.Load()}
		if e := r.lastErr.Load(); e != nil {
			s.LastErr = *e
		}
		replicas = append(replicas, s)
	}
	return replicas, db.replicas.primary.Load(), db.replicas.fallbacks.Load()
}

// observeCommit records, for a caller carrying a Consistency, the
// primary's WAL position after a transaction of theirs committed: a later
// read with the token waits for a replica that has replayed that far.
// Only databases with replicas pay the extra query.
func (db *DB) observeCommit(ctx context.Context) {
	c := ConsistencyFrom(ctx)
	if c == nil || db.replicas == nil {
		return
	}
	// The insert position, not the write position: with asynchronous
	// commit our commit record may be inserted but not yet written.
	var pos string
	if err := db.writer.QueryRowContext(context.WithoutCancel(ctx), "SELECT pg_current_wal_insert_lsn()::text").Scan(&pos); err != nil {
		c.taint(db.tokenName()) // unknown: read from the primary from now on
		return
	}
	lsn, err := parseLSN(pos)
	if err != nil {
		c.taint(db.tokenName())
		return
	}
	c.observe(db.tokenName(), lsn)
}

// tokenName names db in consistency tokens: its name in the shard map, or
// "db" for a database used on its own.
func (db *DB) tokenName() string {
	if db.label == "" {
		return "db"
	}
	return db.label
}

// parseLSN parses PostgreSQL's text form of a WAL position, "16/B374D848".
func parseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("WAL position %q: want hi/lo", s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("WAL position %q: %w", s, err)
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("WAL position %q: %w", s, err)
	}
	return h<<32 | l, nil
}

func formatLSN(v uint64) string { return fmt.Sprintf("%X/%X", v>>32, v&0xffffffff) }

// Consistency is a client's consistency token: for each database it wrote
// to, the primary's WAL position after its last write. HTTP carries it in
// the Strata-Consistency header (see httpx.Consistency): Strata returns it
// after writes, and a client that sends it back reads its own writes even
// from replicas. Safe for concurrent use.
type Consistency struct {
	mu  sync.Mutex
	pos map[string]uint64 // database name -> WAL position; maxLSN: primary only
}

// maxLSN marks a database whose position is unknown: only the primary
// is sure to have it.
const maxLSN = ^uint64(0)

// ParseConsistency reads a token as Consistency.String writes it:
// "name=16/B374D848;other=0/3000060". An empty token is an empty
// Consistency.
func ParseConsistency(s string) (*Consistency, error) {
	c := &Consistency{pos: map[string]uint64{}}
	if s == "" {
		return c, nil
	}
	for part := range strings.SplitSeq(s, ";") {
		name, pos, ok := strings.Cut(part, "=")
		if !ok || name == "" || len(c.pos) >= 64 {
			return nil, fmt.Errorf("consistency token: want name=hi/lo pairs separated by ';'")
		}
		lsn, err := parseLSN(pos)
		if err != nil {
			return nil, fmt.Errorf("consistency token: %w", err)
		}
		c.observe(name, lsn)
	}
	return c, nil
}

// String writes the token, names sorted; "" when it holds nothing.
func (c *Consistency) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var parts []string
	for name, lsn := range c.pos {
		if lsn != maxLSN {
			parts = append(parts, name+"="+formatLSN(lsn))
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ";")
}

// observe raises the position of database name to lsn.
func (c *Consistency) observe(name string, lsn uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pos == nil {
		c.pos = map[string]uint64{}
	}
	if lsn > c.pos[name] {
		c.pos[name] = lsn
	}
}

func (c *Consistency) taint(name string) { c.observe(name, maxLSN) }

// Empty reports whether c holds no position: the client wrote nothing
// (or sent no token).
func (c *Consistency) Empty() bool {
	if c == nil {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pos) == 0
}

// need returns the position a replica must have replayed for the holder
// of c to read database name from it; 0 for no token.
func (c *Consistency) need(name string) uint64 {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pos[name]
}

type consistencyKey struct{}

// WithConsistency returns ctx carrying c: reads route by it, and writes
// record their position in it.
func WithConsistency(ctx context.Context, c *Consistency) context.Context {
	return context.WithValue(ctx, consistencyKey{}, c)
}

// ConsistencyFrom returns the Consistency ctx carries, or nil.
func ConsistencyFrom(ctx context.Context) *Consistency {
	c, _ := ctx.Value(consistencyKey{}).(*Consistency)
	return c
}
