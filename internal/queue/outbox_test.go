package queue_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/queue"
	"github.com/stratadev/strata/internal/storage/sqldb"
	"github.com/stratadev/strata/internal/storage/sqldbtest"
	"github.com/stratadev/strata/stratatest"
	"github.com/stretchr/testify/require"
)

// outboxSetup returns a migrated database router and a queue client whose
// ORDERS stream has a consumer counting its deliveries by message id.
func outboxSetup(t *testing.T) (*sqldb.Router, *queue.Client, *deliveries) {
	t.Helper()
	r := sqldbtest.Open(t)
	require.NoError(t, queue.MigrateOutbox(context.Background(), r))
	c := setup(t)
	d := &deliveries{byID: map[string]int{}, got: make(chan string, 16)}
	consume(t, c, queue.ConsumerConfig{}, func(ctx context.Context, m queue.Message) error {
		d.mu.Lock()
		d.byID[m.ID]++
		d.mu.Unlock()
		d.got <- m.ID
		return nil
	})
	return r, c, d
}

type deliveries struct {
	mu   sync.Mutex
	byID map[string]int
	got  chan string
}

func (d *deliveries) count(id strata.ID) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.byID[string(id)]
}

// runRelay runs a relay until the returned stop is called or the test ends.
func runRelay(t *testing.T, rl *queue.Relay) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rl.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return stop
}

// write records an event in a transaction on shard 0 that commits unless
// fail is set.
func write(t *testing.T, r *sqldb.Router, subject string, fail error) strata.ID {
	t.Helper()
	var id strata.ID
	err := r.Shard(0).Tx(context.Background(), func(tx *sql.Tx) error {
		var err error
		id, err = queue.WriteOutbox(context.Background(), tx, 0, queue.Event{Subject: subject, Payload: []byte(`{"order":"o1"}`)}, time.Now())
		require.NoError(t, err)
		return fail
	})
	if fail == nil {
		require.NoError(t, err)
	} else {
		require.ErrorIs(t, err, fail)
	}
	return id
}

func unsent(t *testing.T, r *sqldb.Router, id strata.ID) (exists, sent bool) {
	t.Helper()
	var sentAt sql.NullInt64
	err := r.Shard(0).Reader().QueryRowContext(context.Background(), "SELECT sent_at FROM outbox_events WHERE id = $1", string(id)).Scan(&sentAt)
	if errors.Is(err, sql.ErrNoRows) {
		return false, false
	}
	require.NoError(t, err)
	return true, sentAt.Valid
}

func TestOutboxCommitAndRollback(t *testing.T) {
	t.Parallel()
	r, c, d := outboxSetup(t)
	runRelay(t, queue.NewRelay(r, c, queue.RelayConfig{PollInterval: 10 * time.Millisecond}, nil, nil))

	rolledBack := write(t, r, "orders.cancelled", errors.New("rollback"))
	committed := write(t, r, "orders.created", nil)
	require.Equal(t, string(committed), <-d.got)
	require.Eventually(t, func() bool { _, sent := unsent(t, r, committed); return sent }, waitFor, tick)

	exists, _ := unsent(t, r, rolledBack)
	require.False(t, exists)
	require.Zero(t, d.count(rolledBack))
	require.Equal(t, uint64(1), streamMsgs(t, c, "ORDERS"), "only the committed event was published")
}

// crashingPublisher publishes for real, then reports failure, as if the
// process died before marking the row sent.
type crashingPublisher struct {
	pub   queue.Publisher
	calls chan string
}

func (p *crashingPublisher) Publish(ctx context.Context, subject, msgID string, data []byte) error {
	if err := p.pub.Publish(ctx, subject, msgID, data); err != nil {
		return err
	}
	select {
	case p.calls <- msgID:
	default:
	}
	return errors.New("crashed before marking")
}

func TestOutboxCrashBetweenPublishAndMark(t *testing.T) {
	t.Parallel()
	r, c, d := outboxSetup(t)
	id := write(t, r, "orders.created", nil)

	crash := &crashingPublisher{pub: c, calls: make(chan string, 1)}
	stop := runRelay(t, queue.NewRelay(r, crash, queue.RelayConfig{PollInterval: time.Hour}, nil, nil))
	require.Equal(t, string(id), <-crash.calls)
	stop()
	_, sent := unsent(t, r, id)
	require.False(t, sent, "an unconfirmed publish is never marked")

	runRelay(t, queue.NewRelay(r, c, queue.RelayConfig{PollInterval: 10 * time.Millisecond}, nil, nil))
	require.Eventually(t, func() bool { _, sent := unsent(t, r, id); return sent }, waitFor, tick)
	require.Eventually(t, settled(t, c, "worker", 1), waitFor, tick)
	require.Equal(t, 1, d.count(id), "the republished copy was de-duplicated")
	require.Equal(t, uint64(1), streamMsgs(t, c, "ORDERS"))
}

func TestRelayNotify(t *testing.T) {
	t.Parallel()
	r, c, d := outboxSetup(t)
	rl := queue.NewRelay(r, c, queue.RelayConfig{PollInterval: time.Hour}, nil, nil)
	runRelay(t, rl)
	// With an hour between polls only Notify can deliver these in time.
	for _, subject := range []string{"orders.created", "orders.paid"} {
		id := write(t, r, subject, nil)
		rl.Notify()
		select {
		case got := <-d.got:
			require.Equal(t, string(id), got)
		case <-time.After(waitFor):
			t.Fatalf("%s not relayed after Notify", subject)
		}
	}
}

func TestRelayPublishesInBatchesInOrder(t *testing.T) {
	t.Parallel()
	r, c, d := outboxSetup(t)
	var ids []strata.ID
	for range 7 {
		ids = append(ids, write(t, r, "orders.created", nil))
	}
	runRelay(t, queue.NewRelay(r, c, queue.RelayConfig{PollInterval: time.Hour, BatchSize: 3}, nil, nil))
	for _, id := range ids {
		require.Equal(t, string(id), <-d.got, "a full batch is followed by the next at once, in id order")
	}
}

func TestRelayPurgesOldSentRows(t *testing.T) {
	t.Parallel()
	r, c, d := outboxSetup(t)
	clock := stratatest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	rl := queue.NewRelay(r, c, queue.RelayConfig{PollInterval: time.Hour, RetainSent: time.Hour}, nil, clock)
	runRelay(t, rl)

	old := write(t, r, "orders.created", nil)
	rl.Notify()
	<-d.got
	require.Eventually(t, func() bool { _, sent := unsent(t, r, old); return sent }, waitFor, tick)

	clock.Advance(time.Hour + time.Minute)
	fresh := write(t, r, "orders.paid", nil)
	rl.Notify()
	<-d.got
	require.Eventually(t, func() bool {
		oldExists, _ := unsent(t, r, old)
		_, freshSent := unsent(t, r, fresh)
		return !oldExists && freshSent
	}, waitFor, tick, "the row sent over an hour ago is purged, the fresh one kept")
}

func TestWriteOutboxValidates(t *testing.T) {
	t.Parallel()
	r := sqldbtest.Open(t)
	require.NoError(t, queue.MigrateOutbox(context.Background(), r))
	require.NoError(t, queue.MigrateOutbox(context.Background(), r), "migrating twice is harmless")
	db := r.Shard(0).Writer()
	ctx := context.Background()
	_, err := queue.WriteOutbox(ctx, db, 0, queue.Event{Subject: "orders.created", Payload: []byte(`{not json`)}, time.Now())
	require.Error(t, err)
	_, err = queue.WriteOutbox(ctx, db, 0, queue.Event{Payload: []byte(`{}`)}, time.Now())
	require.Error(t, err)

	now := time.Now()
	id, err := queue.WriteOutbox(ctx, db, 5, queue.Event{Subject: "orders.created", Payload: []byte(`{}`)}, now)
	require.NoError(t, err)
	require.Equal(t, "evt", id.Prefix())
	shard, ok := id.Shard()
	require.True(t, ok)
	require.Equal(t, 5, shard)
	require.Equal(t, now.UnixMilli(), id.Time().UnixMilli())
}
