package queue_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stratadev/strata/internal/queue"
	"github.com/stratadev/strata/internal/queue/queuetest"
	"github.com/stretchr/testify/require"
)

// waitFor is the deadline of every poll for asynchronous work.
const waitFor = 10 * time.Second

const tick = 5 * time.Millisecond

// setup returns a client on a fresh server with the stream ORDERS on
// orders.>.
func setup(t *testing.T) *queue.Client {
	t.Helper()
	c := queuetest.Connect(t)
	require.NoError(t, c.EnsureStream(context.Background(), queue.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}}))
	return c
}

func streamMsgs(t *testing.T, c *queue.Client, name string) uint64 {
	t.Helper()
	s, err := c.JetStream().Stream(context.Background(), name)
	require.NoError(t, err)
	info, err := s.Info(context.Background())
	require.NoError(t, err)
	return info.State.Msgs
}

func consumerInfo(t *testing.T, c *queue.Client, stream, durable string) *jetstream.ConsumerInfo {
	t.Helper()
	cons, err := c.JetStream().Consumer(context.Background(), stream, durable)
	require.NoError(t, err)
	info, err := cons.Info(context.Background())
	require.NoError(t, err)
	return info
}

func TestPublishDeduplicatesByMsgID(t *testing.T) {
	t.Parallel()
	c := setup(t)
	ctx := context.Background()
	require.NoError(t, c.Publish(ctx, "orders.created", "evt_1", []byte(`{"n":1}`)))
	require.NoError(t, c.Publish(ctx, "orders.created", "evt_1", []byte(`{"n":1}`)), "a replay is acknowledged")
	require.Equal(t, uint64(1), streamMsgs(t, c, "ORDERS"), "and dropped")

	require.NoError(t, c.Publish(ctx, "orders.created", "evt_2", []byte(`{"n":2}`)))
	require.Equal(t, uint64(2), streamMsgs(t, c, "ORDERS"))
}

func TestPublishWithoutStreamFails(t *testing.T) {
	t.Parallel()
	c := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	require.Error(t, c.Publish(ctx, "nobody.listens", "x", []byte(`{}`)), "no stream stores it: no acknowledgement")
}

func TestEnsureStreamUpdates(t *testing.T) {
	t.Parallel()
	c := setup(t)
	ctx := context.Background()
	require.NoError(t, c.EnsureStream(ctx, queue.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>", "refunds.>"}, MaxAge: time.Minute}))
	s, err := c.JetStream().Stream(ctx, "ORDERS")
	require.NoError(t, err)
	cfg := s.CachedInfo().Config
	require.Equal(t, []string{"orders.>", "refunds.>"}, cfg.Subjects)
	require.Equal(t, jetstream.FileStorage, cfg.Storage)
	require.Equal(t, time.Minute, cfg.Duplicates, "the window defaults to MaxAge when that is shorter")

	require.Error(t, c.EnsureStream(ctx, queue.StreamConfig{Name: "EMPTY"}))
}

func TestPingInProcessAndOverTCP(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	require.NoError(t, queuetest.Connect(t).Ping(ctx))

	srv, err := queue.StartServer(queue.ServerConfig{StoreDir: t.TempDir(), Listen: true, Port: -1}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	c, err := queue.Connect(srv.ClientURL())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Ping(ctx))
}

func TestStartServerValidates(t *testing.T) {
	t.Parallel()
	_, err := queue.StartServer(queue.ServerConfig{}, nil)
	require.Error(t, err, "a store dir is required")
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	top := func(n int64) int64 { return n - 1 } // the largest draw
	for _, tc := range []struct {
		name      string
		delivered uint64
		base, max time.Duration
		want      time.Duration
	}{
		{"first failure waits up to base", 1, time.Second, 5 * time.Minute, time.Second},
		{"doubles per delivery", 2, time.Second, 5 * time.Minute, 2 * time.Second},
		{"doubles again", 3, time.Second, 5 * time.Minute, 4 * time.Second},
		{"capped at max", 10, time.Second, 5 * time.Minute, 5 * time.Minute},
		{"no overflow on huge counts", 1 << 40, time.Second, 5 * time.Minute, 5 * time.Minute},
		{"base above max is capped", 1, time.Hour, time.Minute, time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, queue.Backoff(tc.delivered, tc.base, tc.max, top))
			require.Zero(t, queue.Backoff(tc.delivered, tc.base, tc.max, func(int64) int64 { return 0 }), "full jitter reaches zero")
		})
	}
}
