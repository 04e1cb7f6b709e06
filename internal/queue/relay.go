package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/storage/sqldb"
)

// purgeEvery is how often the relay deletes old sent rows.
const purgeEvery = time.Minute

// markTimeout bounds marking published rows sent.
const markTimeout = 5 * time.Second

// The back-off of an outbox row whose publish failed: after failure n
// (1-based) the row waits between half and all of
// min(RetryBackoffMax, RetryBackoffBase * 2^(n-1)) before the relay tries
// it again. The jitter spreads the retries of rows that failed together;
// the lower half bound keeps a failing row from being retried at once.
const (
	RetryBackoffBase = time.Second
	RetryBackoffMax  = 5 * time.Minute
)

// maxLastErrorLen bounds the error text kept in an outbox row.
const maxLastErrorLen = 1024

// RelayConfig tunes the outbox relay.
type RelayConfig struct {
	// PollInterval is how often the relay looks for unsent rows when
	// nobody calls Notify; default 250ms.
	PollInterval time.Duration
	// BatchSize is the most rows read, published and marked at once;
	// default 100.
	BatchSize int
	// RetainSent is how long sent rows are kept (for inspection) before
	// they are deleted; default 24h, negative keeps them forever.
	RetainSent time.Duration
	// Metrics, when set, counts relayed rows and the backlog.
	Metrics *Metrics
}

// Relay publishes outbox rows to the queue.
//
// It reads unsent rows of each physical database in id order, publishes
// each with the row id as Nats-Msg-Id, then marks the published ones sent.
// It never marks a row it did not see acknowledged, so every committed
// event is published at least once. A crash (or a failed mark) between the
// publish and the mark makes the next pass publish the row again; JetStream
// drops that copy as a duplicate provided it arrives inside the stream's
// Duplicates window. That window must therefore exceed the relay's
// worst-case downtime; past it a consumer may see the event twice, which
// idempotent consumers absorb.
//
// Several relays over the same databases (one per worker instance) are
// safe, for the same reason, but do duplicate work. One Relay value runs
// one Run at a time.
//
// A row whose publish fails (its subject is captured by no stream, say)
// does not hold up the rows after it: the relay records the failure on the
// row (attempts, last_error), puts it off with back-off (see
// RetryBackoffBase) and goes on with the next rows. Such a row is retried
// forever; the metrics strata_outbox_publish_failures_total and
// strata_outbox_oldest_unsent_seconds let operators notice it. Failures
// that show the connection to NATS is down are not the row's fault: the
// relay stops its pass at once (connection closed, no servers, JetStream
// disabled) or after two consecutive rows failed alike (timeouts and "no
// responders", which one bad subject can cause too), and tries again on the
// next pass, so an outage is not met with a publish per row.
type Relay struct {
	router *sqldb.Router
	pub    Publisher
	cfg    RelayConfig
	logger *slog.Logger
	clock  strata.Clock
	notify chan struct{}

	lastPurge time.Time
}

// NewRelay returns a relay over every physical database of r.
func NewRelay(r *sqldb.Router, pub Publisher, cfg RelayConfig, logger *slog.Logger, clock strata.Clock) *Relay {
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 250 * time.Millisecond
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 100
	}
	if cfg.RetainSent == 0 {
		cfg.RetainSent = 24 * time.Hour
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if clock == nil {
		clock = strata.SystemClock{}
	}
	return &Relay{
		router: r,
		pub:    pub,
		cfg:    cfg,
		logger: logger.With("component", "outbox_relay"),
		clock:  clock,
		notify: make(chan struct{}, 1),
	}
}

// Notify wakes the relay for an early pass. It never blocks; modules call
// it after committing a transaction that wrote to the outbox.
func (r *Relay) Notify() {
	select {
	case r.notify <- struct{}{}:
	default: // a pass is already due
	}
}

// Run relays until ctx ends, then returns nil. Errors are logged and the
// work retried on the next pass.
func (r *Relay) Run(ctx context.Context) error {
	tick := time.NewTicker(r.cfg.PollInterval)
	defer tick.Stop()
	for {
		r.pass(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-r.notify:
		}
	}
}

// pass relays every database's backlog and purges old rows when due.
func (r *Relay) pass(ctx context.Context) {
	now := r.clock.Now()
	purge := r.cfg.RetainSent > 0 && now.Sub(r.lastPurge) >= purgeEvery
	pending := 0
	var oldest time.Duration
	down := false
	for _, db := range r.router.DBs() {
		// With NATS unreachable the other databases wait for the next pass.
		if !down {
			down = r.relayDB(ctx, db)
		}
		if purge {
			if err := r.purge(ctx, db, now.Add(-r.cfg.RetainSent)); err != nil && ctx.Err() == nil {
				r.logger.Error("purge outbox", "db", db.Name(), "error", err)
			}
		}
		if r.cfg.Metrics != nil {
			var n int
			var created sql.NullInt64
			err := db.Primary().QueryRowContext(ctx,
				"SELECT count(*), min(created_at) FROM outbox_events WHERE sent_at IS NULL").Scan(&n, &created)
			if err == nil {
				pending += n
				if created.Valid {
					oldest = max(oldest, r.clock.Now().Sub(time.UnixMilli(created.Int64)))
				}
			}
		}
	}
	if purge {
		r.lastPurge = now
	}
	r.cfg.Metrics.pending(pending)
	r.cfg.Metrics.oldestUnsent(oldest)
}

// relayDB relays db's due rows batch after batch. It reports whether the
// queue looked unreachable.
func (r *Relay) relayDB(ctx context.Context, db *sqldb.DB) (down bool) {
	for ctx.Err() == nil {
		res, err := r.relayBatch(ctx, db)
		r.cfg.Metrics.relayed(res.sent)
		if err != nil {
			if ctx.Err() == nil {
				r.logger.Error("relay outbox", "db", db.Name(), "error", err)
			}
			return res.down
		}
		if !res.more {
			return false
		}
	}
	return false
}

type outboxRow struct {
	id, subject, payload string
	attempts             int64
}

type batchResult struct {
	sent int  // rows published and marked sent
	more bool // the batch was full: more rows may be due
	down bool // the queue looked unreachable; the batch stopped early
}

// relayBatch publishes up to BatchSize due rows of db, marks those the
// server acknowledged and puts off those that failed.
func (r *Relay) relayBatch(ctx context.Context, db *sqldb.DB) (batchResult, error) {
	batch, err := r.readDue(ctx, db)
	if err != nil {
		return batchResult{}, err
	}

	var published []outboxRow
	var prevConnErr error // the connection-level error of the previous row
	var stopErr error
	for _, row := range batch {
		err := r.pub.Publish(ctx, row.subject, row.id, []byte(row.payload))
		if err == nil {
			published = append(published, row)
			prevConnErr = nil
			continue
		}
		if ctx.Err() != nil {
			break // shutting down: not the row's fault
		}
		r.cfg.Metrics.publishFailed()
		err = fmt.Errorf("publish %s: %w", row.id, err)
		if connectionDown(err) {
			stopErr = err
			break
		}
		if rerr := r.putOff(ctx, db, row, err); rerr != nil {
			stopErr = rerr
			break
		}
		if maybeConnection(err) {
			if prevConnErr != nil && sameError(prevConnErr, err) {
				stopErr = fmt.Errorf("two rows in a row failed alike, nats looks unreachable: %w", err)
				break
			}
			prevConnErr = err
		} else {
			prevConnErr = nil
		}
	}
	res := batchResult{down: stopErr != nil && (connectionDown(stopErr) || maybeConnection(stopErr))}
	if err := r.markSent(ctx, db, published); err != nil {
		return res, err
	}
	res.sent = len(published)
	res.more = stopErr == nil && ctx.Err() == nil && len(batch) == r.cfg.BatchSize
	return res, stopErr
}

// readDue reads up to BatchSize unsent rows of db that are due, in id order.
func (r *Relay) readDue(ctx context.Context, db *sqldb.DB) ([]outboxRow, error) {
	// Read from the writer: a replica could lag behind and miss new rows.
	rows, err := db.Primary().QueryContext(ctx,
		"SELECT id, subject, payload, attempts FROM outbox_events WHERE sent_at IS NULL AND next_attempt_at <= $1 ORDER BY id LIMIT $2",
		r.clock.Now().UnixMilli(), r.cfg.BatchSize)
	if err != nil {
		return nil, sqldb.Translate(fmt.Errorf("read outbox: %w", err))
	}
	var batch []outboxRow
	for rows.Next() {
		var row outboxRow
		if err := rows.Scan(&row.id, &row.subject, &row.payload, &row.attempts); err != nil {
			rows.Close()
			return nil, sqldb.Translate(fmt.Errorf("read outbox: %w", err))
		}
		batch = append(batch, row)
	}
	// Close before publishing: on SQLite the writer is one connection, and
	// the updates after the publishes need it.
	if err := rows.Close(); err != nil {
		return nil, sqldb.Translate(fmt.Errorf("read outbox: %w", err))
	}
	if err := rows.Err(); err != nil {
		return nil, sqldb.Translate(fmt.Errorf("read outbox: %w", err))
	}
	return batch, nil
}

// putOff records the failed publish of row and schedules its retry.
func (r *Relay) putOff(ctx context.Context, db *sqldb.DB, row outboxRow, pubErr error) error {
	delay := retryDelay(uint64(row.attempts)+1, rand.Int64N)
	_, err := db.Writer().ExecContext(ctx,
		"UPDATE outbox_events SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2 WHERE id = $3 AND sent_at IS NULL",
		r.clock.Now().Add(delay).UnixMilli(), truncate(pubErr.Error(), maxLastErrorLen), row.id)
	if err != nil {
		return sqldb.Translate(fmt.Errorf("record failed publish of %s: %w", row.id, err))
	}
	r.logger.Warn("publish outbox row", "db", db.Name(), "msg_id", row.id, "subject", row.subject,
		"attempts", row.attempts+1, "retry_in", delay, "error", pubErr)
	return nil
}

// retryDelay returns how long a row waits after its publish failed for the
// n-th time (1-based): uniform in [c/2, c] where
// c = min(RetryBackoffMax, RetryBackoffBase·2^(n-1)).
func retryDelay(n uint64, randN func(int64) int64) time.Duration {
	c := backoffCeiling(n, RetryBackoffBase, RetryBackoffMax)
	half := c / 2
	return c - half + time.Duration(randN(int64(half)+1))
}

// connectionDown reports whether err shows that no publish can succeed
// now, whatever the subject.
func connectionDown(err error) bool {
	for _, target := range []error{
		nats.ErrConnectionClosed, nats.ErrNoServers, nats.ErrConnectionDraining,
		nats.ErrDisconnected, nats.ErrConnectionReconnecting,
		jetstream.ErrJetStreamNotEnabled, jetstream.ErrJetStreamNotEnabledForAccount,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// maybeConnection reports whether err is a timeout or a missing
// responder: an unreachable server, or only a subject no stream captures.
func maybeConnection(err error) bool {
	return errorKind(err) != ""
}

// sameError reports whether a and b are connection-level errors of one kind.
func sameError(a, b error) bool {
	k := errorKind(a)
	return k != "" && k == errorKind(b)
}

func errorKind(err error) string {
	switch {
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse):
		return "no_responders"
	case errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return ""
}

func (r *Relay) markSent(ctx context.Context, db *sqldb.DB, rows []outboxRow) error {
	if len(rows) == 0 {
		return nil
	}
	args := make([]any, 0, len(rows)+1)
	args = append(args, r.clock.Now().UnixMilli())
	marks := make([]string, len(rows))
	for i, row := range rows {
		args = append(args, row.id)
		marks[i] = fmt.Sprintf("$%d", i+2)
	}
	q := "UPDATE outbox_events SET sent_at = $1 WHERE sent_at IS NULL AND id IN (" + strings.Join(marks, ", ") + ")"
	// The rows are published: mark them even when shutdown has begun, so
	// the next start does not publish them again.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markTimeout)
	defer cancel()
	if _, err := db.Writer().ExecContext(ctx, q, args...); err != nil {
		return sqldb.Translate(fmt.Errorf("mark outbox rows sent: %w", err))
	}
	return nil
}

func (r *Relay) purge(ctx context.Context, db *sqldb.DB, before time.Time) error {
	res, err := db.Writer().ExecContext(ctx,
		"DELETE FROM outbox_events WHERE sent_at IS NOT NULL AND sent_at < $1", before.UnixMilli())
	if err != nil {
		return sqldb.Translate(fmt.Errorf("purge outbox: %w", err))
	}
	if n, _ := res.RowsAffected(); n > 0 {
		r.logger.Debug("purged outbox", "db", db.Name(), "rows", n)
	}
	return nil
}
