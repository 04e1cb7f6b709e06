package queue

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/storage/sqldb"
)

// purgeEvery is how often the relay deletes old sent rows.
const purgeEvery = time.Minute

// markTimeout bounds marking published rows sent.
const markTimeout = 5 * time.Second

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
	for _, db := range r.router.DBs() {
		for ctx.Err() == nil {
			n, full, err := r.relayBatch(ctx, db)
			r.cfg.Metrics.relayed(n)
			if err != nil {
				if ctx.Err() == nil {
					r.logger.Error("relay outbox", "db", db.Name(), "err", err)
				}
				break
			}
			if !full {
				break
			}
		}
		if purge {
			if err := r.purge(ctx, db, now.Add(-r.cfg.RetainSent)); err != nil && ctx.Err() == nil {
				r.logger.Error("purge outbox", "db", db.Name(), "err", err)
			}
		}
		if r.cfg.Metrics != nil {
			var n int
			if err := db.Writer().QueryRowContext(ctx, "SELECT count(*) FROM outbox_events WHERE sent_at IS NULL").Scan(&n); err == nil {
				pending += n
			}
		}
	}
	if purge {
		r.lastPurge = now
	}
	r.cfg.Metrics.pending(pending)
}

type outboxRow struct {
	id, subject, payload string
}

// relayBatch publishes up to BatchSize unsent rows of db and marks those
// the server acknowledged. It reports how many it marked and whether the
// batch was full (more may be waiting).
func (r *Relay) relayBatch(ctx context.Context, db *sqldb.DB) (int, bool, error) {
	// Read from the writer: a replica could lag behind and miss new rows.
	rows, err := db.Writer().QueryContext(ctx,
		"SELECT id, subject, payload FROM outbox_events WHERE sent_at IS NULL ORDER BY id LIMIT $1", r.cfg.BatchSize)
	if err != nil {
		return 0, false, fmt.Errorf("read outbox: %w", err)
	}
	var batch []outboxRow
	for rows.Next() {
		var row outboxRow
		if err := rows.Scan(&row.id, &row.subject, &row.payload); err != nil {
			rows.Close()
			return 0, false, fmt.Errorf("read outbox: %w", err)
		}
		batch = append(batch, row)
	}
	// Close before publishing: on SQLite the writer is one connection, and
	// the mark below needs it.
	if err := rows.Close(); err != nil {
		return 0, false, fmt.Errorf("read outbox: %w", err)
	}
	if err := rows.Err(); err != nil {
		return 0, false, fmt.Errorf("read outbox: %w", err)
	}

	published := 0
	var pubErr error
	for _, row := range batch {
		if pubErr = r.pub.Publish(ctx, row.subject, row.id, []byte(row.payload)); pubErr != nil {
			pubErr = fmt.Errorf("publish %s: %w", row.id, pubErr)
			break
		}
		published++
	}
	if err := r.markSent(ctx, db, batch[:published]); err != nil {
		return 0, false, err
	}
	return published, pubErr == nil && len(batch) == r.cfg.BatchSize, pubErr
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
		return fmt.Errorf("mark outbox rows sent: %w", err)
	}
	return nil
}

func (r *Relay) purge(ctx context.Context, db *sqldb.DB, before time.Time) error {
	res, err := db.Writer().ExecContext(ctx,
		"DELETE FROM outbox_events WHERE sent_at IS NOT NULL AND sent_at < $1", before.UnixMilli())
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n > 0 {
		r.logger.Debug("purged outbox", "db", db.Name(), "rows", n)
	}
	return nil
}
