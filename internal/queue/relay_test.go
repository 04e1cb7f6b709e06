package queue_test

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/queue"
	"github.com/stratadev/strata/internal/queue/queuetest"
	"github.com/stratadev/strata/internal/storage/sqldb"
	"github.com/stratadev/strata/internal/storage/sqldbtest"
	"github.com/stratadev/strata/stratatest"
	"github.com/stretchr/testify/require"
)

// countingPublisher passes publishes on to pub (or fails them with err when
// pub is nil) and remembers the message ids it was asked to publish.
type countingPublisher struct {
	pub queue.Publisher
	err error

	mu    sync.Mutex
	calls []string
}

func (p *countingPublisher) Publish(ctx context.Context, subject, msgID string, data []byte) error {
	p.mu.Lock()
	p.calls = append(p.calls, msgID)
	p.mu.Unlock()
	if p.pub == nil {
		return fmt.Errorf("publish %s: %w", subject, p.err)
	}
	return p.pub.Publish(ctx, subject, msgID, data)
}

// tries returns how often id was published, or every call for "".
func (p *countingPublisher) tries(id strata.ID) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if id == "" {
		return len(p.calls)
	}
	n := 0
	for _, c := range p.calls {
		if c == string(id) {
			n++
		}
	}
	return n
}

// logRecorder is a slog.Handler keeping the records it is given.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}

// attrs returns the attributes of the records with message msg.
func (h *logRecorder) attrs(msg string) []map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]string
	for _, r := range h.records {
		if r.Message != msg {
			continue
		}
		m := map[string]string{}
		r.Attrs(func(a slog.Attr) bool {
			m[a.Key] = a.Value.String()
			return true
		})
		out = append(out, m)
	}
	return out
}

// writeAt records an event on db outside any transaction, at now.
func writeAt(t *testing.T, db *sqldb.DB, subject string, now time.Time) strata.ID {
	t.Helper()
	id, err := queue.WriteOutbox(context.Background(), db.Writer(), 0, queue.Event{Subject: subject, Payload: []byte(`{"order":"o1"}`)}, now)
	require.NoError(t, err)
	return id
}

type retryState struct {
	attempts      int64
	nextAttemptAt time.Time
	lastError     string
	sent          bool
}

func rowState(t *testing.T, db *sqldb.DB, id strata.ID) retryState {
	t.Helper()
	var s retryState
	var next int64
	var sentAt *int64
	err := db.Reader().QueryRowContext(context.Background(),
		"SELECT attempts, next_attempt_at, last_error, sent_at FROM outbox_events WHERE id = $1", string(id)).
		Scan(&s.attempts, &next, &s.lastError, &sentAt)
	require.NoError(t, err)
	s.nextAttemptAt = time.UnixMilli(next)
	s.sent = sentAt != nil
	return s
}

func receive(t *testing.T, d *deliveries) string {
	t.Helper()
	select {
	case id := <-d.got:
		return id
	case <-time.After(waitFor):
		t.Fatal("no delivery")
		return ""
	}
}

func TestRelayFailingRowDoesNotBlockLaterRows(t *testing.T) {
	t.Parallel()
	r, c, d := outboxSetup(t)
	db := r.Shard(0)
	ctx := context.Background()
	clock := stratatest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	reg := prometheus.NewRegistry()
	logs := &logRecorder{}
	pub := &countingPublisher{pub: c}
	rl := queue.NewRelay(r, pub, queue.RelayConfig{Metrics: queue.NewMetrics(reg)}, slog.New(logs), clock)
	gauge := func() float64 { return metricValue(t, reg, "strata_outbox_oldest_unsent_seconds", nil) }

	stuck := writeAt(t, db, "nobody.listens", clock.Now()) // no stream captures it
	next := writeAt(t, db, "orders.created", clock.Now())

	queue.RelayPass(ctx, rl)
	require.Equal(t, string(next), receive(t, d), "the row after the failing one is delivered")
	require.True(t, rowState(t, db, next).sent)
	s := rowState(t, db, stuck)
	require.False(t, s.sent)
	require.Equal(t, int64(1), s.attempts)
	require.Contains(t, s.lastError, "no response from stream")
	require.WithinRange(t, s.nextAttemptAt, clock.Now().Add(queue.RetryBackoffBase/2), clock.Now().Add(queue.RetryBackoffBase))
	require.Equal(t, 1.0, metricValue(t, reg, "strata_outbox_publish_failures_total", nil))
	require.Equal(t, 1.0, metricValue(t, reg, "strata_outbox_pending", nil))
	logged := logs.attrs("publish outbox row")
	require.Len(t, logged, 1)
	require.Equal(t, string(stuck), logged[0]["msg_id"])
	require.Contains(t, logged[0]["error"], "no response from stream")

	queue.RelayPass(ctx, rl)
	require.Equal(t, 1, pub.tries(stuck), "backing off: not retried before its time")
	require.Equal(t, int64(1), rowState(t, db, stuck).attempts)

	clock.Advance(queue.RetryBackoffBase)
	queue.RelayPass(ctx, rl)
	require.Equal(t, 2, pub.tries(stuck), "retried once the back-off passed")
	s = rowState(t, db, stuck)
	require.Equal(t, int64(2), s.attempts)
	require.WithinRange(t, s.nextAttemptAt, clock.Now().Add(queue.RetryBackoffBase), clock.Now().Add(2*queue.RetryBackoffBase), "the back-off doubled")
	require.Equal(t, 2.0, metricValue(t, reg, "strata_outbox_publish_failures_total", nil))
	require.Equal(t, queue.RetryBackoffBase.Seconds(), gauge(), "the stuck row's age")

	// Once a stream captures the subject the row goes out.
	require.NoError(t, c.EnsureStream(ctx, queue.StreamConfig{Name: "NOBODY", Subjects: []string{"nobody.>"}}))
	clock.Advance(2 * queue.RetryBackoffBase)
	queue.RelayPass(ctx, rl)
	require.True(t, rowState(t, db, stuck).sent)
	require.Equal(t, uint64(1), streamMsgs(t, c, "NOBODY"))
	require.Zero(t, gauge())
	require.Zero(t, metricValue(t, reg, "strata_outbox_pending", nil))
	require.Equal(t, 1, d.count(next))
}

func TestRelayStopsPassWhenNATSLooksDown(t *testing.T) {
	t.Parallel()
	// noStreams returns a publisher on a fresh server without streams; fake one
	// failing every publish with err.
	noStreams := func(t *testing.T) queue.Publisher { return queuetest.Connect(t) }
	closed := func(t *testing.T) queue.Publisher {
		c := queuetest.Connect(t)
		c.Close()
		return c
	}
	fake := func(err error) func(*testing.T) queue.Publisher {
		return func(*testing.T) queue.Publisher { return &countingPublisher{err: err} }
	}
	for _, tc := range []struct {
		name string
		pub  func(t *testing.T) queue.Publisher
		// wantCalls is the publishes made over three rows on each of two
		// databases; wantPutOff the rows given a failed attempt.
		wantCalls, wantPutOff int
	}{
		{"connection closed stops at once", closed, 1, 0},
		{"no stream anywhere stops after two alike", noStreams, 2, 2},
		{"timeouts stop after two alike", fake(nats.ErrTimeout), 2, 2},
		{"deadlines stop after two alike", fake(context.DeadlineExceeded), 2, 2},
		{"errors of the rows do not stop", fake(nats.ErrMaxPayload), 6, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := sqldbtest.OpenShards(t, 2, 2)
			require.NoError(t, queue.MigrateOutbox(context.Background(), r))
			pub := &countingPublisher{pub: tc.pub(t)}
			clock := stratatest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			var ids []strata.ID
			for _, db := range r.DBs() {
				for range 3 {
					ids = append(ids, writeAt(t, db, "orders.created", clock.Now()))
				}
			}
			reg := prometheus.NewRegistry()
			rl := queue.NewRelay(r, pub, queue.RelayConfig{Metrics: queue.NewMetrics(reg)}, nil, clock)
			queue.RelayPass(context.Background(), rl)

			require.Equal(t, tc.wantCalls, pub.tries(""))
			require.Equal(t, float64(tc.wantCalls), metricValue(t, reg, "strata_outbox_publish_failures_total", nil))
			putOff := 0
			for i, id := range ids {
				s := rowState(t, r.DBs()[i/3], id)
				require.False(t, s.sent)
				if s.attempts > 0 {
					putOff++
					require.Less(t, i, tc.wantPutOff, "rows are tried in id order")
				}
			}
			require.Equal(t, tc.wantPutOff, putOff)
			require.Equal(t, 6.0, metricValue(t, reg, "strata_outbox_pending", nil))
		})
	}
}

func TestRelayRetryDelay(t *testing.T) {
	t.Parallel()
	least := func(int64) int64 { return 0 }
	most := func(n int64) int64 { return n - 1 }
	for _, tc := range []struct {
		name     string
		attempts uint64
		min, max time.Duration
	}{
		{"first failure", 1, 500 * time.Millisecond, time.Second},
		{"second doubles", 2, time.Second, 2 * time.Second},
		{"third doubles again", 3, 2 * time.Second, 4 * time.Second},
		{"capped", 12, queue.RetryBackoffMax / 2, queue.RetryBackoffMax},
		{"no overflow", 1 << 40, queue.RetryBackoffMax / 2, queue.RetryBackoffMax},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.min, queue.RetryDelay(tc.attempts, least))
			require.Equal(t, tc.max, queue.RetryDelay(tc.attempts, most))
		})
	}
}

func TestOutboxMigrationUpgradesAndServesRelayScan(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := sqldbtest.OpenSQLiteShards(t, sqldbtest.DefaultShards, 1) // it reads SQLite's query plan
	db := r.Shard(0)

	// A database at version 1 with a row written before the upgrade.
	v1, err := fs.ReadFile(queue.Migrations(), "00001_outbox_events.sql")
	require.NoError(t, err)
	sqldbtest.Migrate(t, r, "outbox", fstest.MapFS{"00001_outbox_events.sql": {Data: v1}})
	_, err = db.Writer().ExecContext(ctx,
		"INSERT INTO outbox_events (id, subject, payload, created_at) VALUES ('evt_old', 'orders.created', '{}', 1)")
	require.NoError(t, err)
	require.NoError(t, queue.MigrateOutbox(ctx, r))
	s := rowState(t, db, "evt_old")
	require.Equal(t, retryState{nextAttemptAt: time.UnixMilli(0)}, s, "old rows are due at once")

	rows, err := db.Writer().QueryContext(ctx,
		"EXPLAIN QUERY PLAN SELECT id, subject, payload, attempts FROM outbox_events WHERE sent_at IS NULL AND next_attempt_at <= $1 ORDER BY id LIMIT $2", 0, 100)
	require.NoError(t, err)
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
		plan = append(plan, detail)
	}
	require.NoError(t, rows.Err())
	require.Contains(t, strings.Join(plan, "\n"), "USING INDEX outbox_events_unsent")
	require.NotContains(t, strings.Join(plan, "\n"), "TEMP B-TREE", "the index gives the id order")
}

func TestDeadLetterStreamExpires(t *testing.T) {
	t.Parallel()
	c := setup(t)
	ctx := context.Background()
	// A DLQ made before dead letters expired is updated.
	require.NoError(t, c.EnsureStream(ctx, queue.StreamConfig{Name: queue.DeadLetterStream, Subjects: []string{"dlq.>"}}))
	require.NoError(t, c.EnsureDeadLetterStream(ctx))
	s, err := c.JetStream().Stream(ctx, queue.DeadLetterStream)
	require.NoError(t, err)
	cfg := s.CachedInfo().Config
	require.Equal(t, 14*24*time.Hour, cfg.MaxAge)
	require.Equal(t, queue.DeadLetterMaxAge, cfg.MaxAge)
	require.Equal(t, queue.DefaultDuplicates, cfg.Duplicates)
}
