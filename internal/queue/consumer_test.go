package queue_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratadev/strata/internal/queue"
	"github.com/stretchr/testify/require"
)

// consume starts a consumer on ORDERS with test-sized back-off, stopped
// when the test ends.
func consume(t *testing.T, c *queue.Client, cfg queue.ConsumerConfig, h queue.Handler) *queue.Consumer {
	t.Helper()
	cfg.Stream = "ORDERS"
	if cfg.Durable == "" {
		cfg.Durable = "worker"
	}
	cfg.BackoffBase = time.Millisecond
	cfg.BackoffMax = 5 * time.Millisecond
	k, err := c.Consume(context.Background(), cfg, h, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = k.Stop(context.Background()) })
	return k
}

// settled reports whether the consumer has nothing left to deliver or
// to have acknowledged: after it, no further handler call can happen.
func settled(t *testing.T, c *queue.Client, durable string, ackFloor uint64) func() bool {
	return func() bool {
		info := consumerInfo(t, c, "ORDERS", durable)
		return info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream == ackFloor
	}
}

func TestConsumerAcks(t *testing.T) {
	t.Parallel()
	c := setup(t)
	got := make(chan queue.Message, 1)
	consume(t, c, queue.ConsumerConfig{}, func(ctx context.Context, m queue.Message) error {
		got <- m
		return nil
	})
	require.NoError(t, c.Publish(context.Background(), "orders.created", "evt_1", []byte(`{"n":1}`)))
	m := <-got
	require.Equal(t, "orders.created", m.Subject)
	require.Equal(t, "evt_1", m.ID)
	require.JSONEq(t, `{"n":1}`, string(m.Data))
	require.Equal(t, uint64(1), m.NumDelivered)
	require.Eventually(t, settled(t, c, "worker", 1), waitFor, tick)
}

func TestConsumerRetries(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		handler func(calls int32) error // calls counts this one
	}{
		{"error", func(calls int32) error {
			if calls <= 2 {
				return errors.New("not yet")
			}
			return nil
		}},
		{"panic", func(calls int32) error {
			if calls <= 2 {
				panic("handler bug")
			}
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := setup(t)
			var calls atomic.Int32
			var mu sync.Mutex
			var deliveries []uint64
			consume(t, c, queue.ConsumerConfig{}, func(ctx context.Context, m queue.Message) error {
				mu.Lock()
				deliveries = append(deliveries, m.NumDelivered)
				mu.Unlock()
				return tc.handler(calls.Add(1))
			})
			require.NoError(t, c.Publish(context.Background(), "orders.created", "evt_1", []byte(`{}`)))
			require.Eventually(t, func() bool { return calls.Load() == 3 }, waitFor, tick)
			require.Eventually(t, settled(t, c, "worker", 1), waitFor, tick)
			require.EqualValues(t, 3, calls.Load(), "acked once, on the third delivery")
			mu.Lock()
			defer mu.Unlock()
			require.Equal(t, []uint64{1, 2, 3}, deliveries)
			require.Zero(t, streamMsgs(t, c, queue.DeadLetterStream))
		})
	}
}

func TestConsumerDeadLetters(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		err        error
		wantCalls  int32
		wantReason string
	}{
		{"after MaxDeliver failures", errors.New("boom\r\non two lines"), 3, "boom  on two lines"},
		{"at once when permanent", queue.Permanent(errors.New("malformed payload")), 1, "malformed payload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := setup(t)
			var calls atomic.Int32
			consume(t, c, queue.ConsumerConfig{MaxDeliver: 3}, func(ctx context.Context, m queue.Message) error {
				calls.Add(1)
				return tc.err
			})
			require.NoError(t, c.Publish(context.Background(), "orders.created", "evt_1", []byte(`{"n":1}`)))
			require.Eventually(t, func() bool { return streamMsgs(t, c, queue.DeadLetterStream) == 1 }, waitFor, tick)
			require.Eventually(t, settled(t, c, "worker", 1), waitFor, tick, "the original is terminated")
			require.Equal(t, tc.wantCalls, calls.Load())

			s, err := c.JetStream().Stream(context.Background(), queue.DeadLetterStream)
			require.NoError(t, err)
			dl, err := s.GetLastMsgForSubject(context.Background(), "dlq.ORDERS.orders.created")
			require.NoError(t, err)
			require.JSONEq(t, `{"n":1}`, string(dl.Data))
			require.Equal(t, tc.wantReason, dl.Header.Get(queue.HeaderDLQReason))
			require.Equal(t, "ORDERS", dl.Header.Get(queue.HeaderDLQStream))
			require.Equal(t, "worker", dl.Header.Get(queue.HeaderDLQConsumer))
			require.Equal(t, "orders.created", dl.Header.Get(queue.HeaderOriginalSubject))
			require.Equal(t, "evt_1", dl.Header.Get(queue.HeaderOriginalMsgID))
			require.EqualValues(t, tc.wantCalls, mustAtoi(t, dl.Header.Get(queue.HeaderDeliveries)))
		})
	}
}

func TestConsumerRunsConcurrently(t *testing.T) {
	t.Parallel()
	c := setup(t)
	const n = 4
	var running sync.WaitGroup
	running.Add(n)
	all := make(chan struct{})
	go func() { running.Wait(); close(all) }()
	consume(t, c, queue.ConsumerConfig{Concurrency: n}, func(ctx context.Context, m queue.Message) error {
		running.Done()
		select { // returns only once all n run at the same time
		case <-all:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	for i := range n {
		require.NoError(t, c.Publish(context.Background(), "orders.created", string(rune('a'+i)), []byte(`{}`)))
	}
	<-all
	require.Eventually(t, settled(t, c, "worker", n), waitFor, tick)
}

func TestStopWaitsForInFlightHandler(t *testing.T) {
	t.Parallel()
	c := setup(t)
	ctx := context.Background()
	started, release := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	k := consume(t, c, queue.ConsumerConfig{}, func(ctx context.Context, m queue.Message) error {
		close(started)
		<-release
		finished.Store(true)
		return nil
	})
	require.NoError(t, c.Publish(ctx, "orders.created", "evt_1", []byte(`{}`)))
	<-started

	stopping := make(chan struct{})
	queue.SetStopHook(k, func() { close(stopping) })
	stopped := make(chan error, 1)
	go func() { stopped <- k.Stop(ctx) }()
	<-stopping // Stop no longer pulls; the handler is still running
	close(release)
	require.NoError(t, <-stopped)
	require.True(t, finished.Load(), "Stop returned before the handler finished")
	info := consumerInfo(t, c, "ORDERS", "worker")
	require.Zero(t, info.NumAckPending, "Stop returned before the ack was confirmed")
	require.Equal(t, uint64(1), info.AckFloor.Stream)

	// A new instance on the same durable gets the next message, not the
	// one the stopped instance finished.
	got := make(chan string, 2)
	consume(t, c, queue.ConsumerConfig{}, func(ctx context.Context, m queue.Message) error {
		got <- m.ID
		return nil
	})
	require.NoError(t, c.Publish(ctx, "orders.created", "evt_2", []byte(`{}`)))
	require.Equal(t, "evt_2", <-got)
}

func TestStopIsBoundedByContext(t *testing.T) {
	t.Parallel()
	c := setup(t)
	started, cancelled := make(chan struct{}), make(chan struct{})
	k := consume(t, c, queue.ConsumerConfig{}, func(ctx context.Context, m queue.Message) error {
		close(started)
		<-ctx.Done() // a handler stuck until cancelled
		close(cancelled)
		return ctx.Err()
	})
	require.NoError(t, c.Publish(context.Background(), "orders.created", "evt_1", []byte(`{}`)))
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, k.Stop(ctx), context.DeadlineExceeded)
	<-cancelled // the stuck handler was told to give up
}

func TestPermanent(t *testing.T) {
	t.Parallel()
	require.NoError(t, queue.Permanent(nil))
	base := errors.New("bad")
	err := queue.Permanent(base)
	require.True(t, queue.IsPermanent(err))
	require.ErrorIs(t, err, base)
	require.False(t, queue.IsPermanent(base))
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	require.NoError(t, err)
	return n
}
