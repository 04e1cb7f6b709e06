package webhook_test

import (
	"context"
	"testing"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/payments"
	"github.com/stratadev/strata/internal/payments/webhook"
	"github.com/stratadev/strata/internal/queue"
	"github.com/stratadev/strata/internal/queue/queuetest"
	"github.com/stretchr/testify/require"
)

func TestDispatchIsIdempotentAndFollowsSubscriptions(t *testing.T) {
	t.Parallel()
	h := newHarness(t, webhook.Config{})
	ctx := context.Background()
	all, _ := h.createEndpoint("https://all.example.com/", "*")
	purchases, _ := h.createEndpoint("https://purchases.example.com/", "purchase.completed", "purchase.refunded")
	topups, _ := h.createEndpoint("https://topups.example.com/", "payment_intent.succeeded")
	off, _ := h.createEndpoint("https://off.example.com/", "*")
	_, err := h.svc.UpdateEndpoint(ctx, off, webhook.EndpointUpdate{Enabled: new(false)})
	require.NoError(t, err)

	m := h.message(payments.SubjectPurchaseCompleted, map[string]any{"purchase_id": "pur_1"})
	h.dispatch(m)
	m.NumDelivered = 2 // the queue redelivers it: an ack was lost
	h.dispatch(m)
	h.dispatch(m)
	require.Len(t, h.deliveries(all), 1)
	require.Len(t, h.deliveries(purchases), 1)
	require.Empty(t, h.deliveries(topups), "not subscribed")
	require.Empty(t, h.deliveries(off), "disabled")
	d := h.only(all)
	require.Equal(t, m.ID, d.EventID)
	require.Equal(t, "purchase.completed", d.EventType)
	require.Equal(t, webhook.StatusPending, d.Status)

	// The settle work order is internal: never delivered, even to "*".
	h.dispatch(h.message(payments.SubjectIntentSettle, map[string]any{"intent_id": "pi_1", "attempt": 1}))
	h.dispatch(h.message(payments.SubjectIntentSucceeded, map[string]any{"intent_id": "pi_1"}))
	require.Len(t, h.deliveries(all), 2)
	require.Len(t, h.deliveries(topups), 1)
	require.Len(t, h.deliveries(purchases), 1)

	// Events from before an endpoint existed are not sent to it.
	old := h.message(payments.SubjectPurchaseRefunded, map[string]any{"purchase_id": "pur_1"})
	h.clock.Advance(time.Second)
	late, _ := h.createEndpoint("https://late.example.com/", "*")
	h.dispatch(old)
	require.Empty(t, h.deliveries(late))
	require.Len(t, h.deliveries(all), 3)

	// A payload that is not JSON cannot be delivered: dead-lettered.
	bad := h.message(payments.SubjectPurchaseCompleted, nil)
	bad.Data = []byte("{nope")
	err = webhook.Dispatcher{Service: h.svc}.Handle(ctx, bad)
	require.True(t, queue.IsPermanent(err), "%v", err)
}

func TestDispatcherCachesEndpointsBriefly(t *testing.T) {
	t.Parallel()
	h := newHarness(t, webhook.Config{})
	other := h.newService(webhook.Config{}) // another worker
	first, _ := h.createEndpoint("https://one.example.com/", "*")
	h.dispatch(h.message(payments.SubjectPurchaseCompleted, map[string]any{}))
	require.NoError(t, webhook.Dispatcher{Service: other}.Handle(context.Background(),
		h.message(payments.SubjectPurchaseCompleted, map[string]any{}))) // other caches [first]
	require.Len(t, h.deliveries(first), 2)

	second, _ := h.createEndpoint("https://two.example.com/", "*") // through h.svc: other does not know yet
	require.NoError(t, webhook.Dispatcher{Service: other}.Handle(context.Background(),
		h.message(payments.SubjectPurchaseCompleted, map[string]any{})))
	require.Empty(t, h.deliveries(second), "other's cache is still fresh")
	h.clock.Advance(5 * time.Second)
	require.NoError(t, webhook.Dispatcher{Service: other}.Handle(context.Background(),
		h.message(payments.SubjectPurchaseCompleted, map[string]any{})))
	require.Len(t, h.deliveries(second), 1, "the cache expired")

	// An endpoint deleted while cached gets no delivery, and no error.
	require.NoError(t, h.svc.DeleteEndpoint(context.Background(), second))
	require.NoError(t, webhook.Dispatcher{Service: other}.Handle(context.Background(),
		h.message(payments.SubjectPurchaseCompleted, map[string]any{})))
	require.Len(t, h.deliveries(first), 5)
}

// TestDispatchThroughTheQueue runs the dispatcher as the worker does, on a
// real JetStream consumer: the public events make deliveries, the settle
// work order does not even reach it.
func TestDispatchThroughTheQueue(t *testing.T) {
	t.Parallel()
	h := newHarness(t, webhook.Config{})
	ctx := context.Background()
	ep, _ := h.createEndpoint("https://all.example.com/", "*")
	q := queuetest.Connect(t)
	require.NoError(t, q.EnsureStream(ctx, payments.StreamConfig()))

	var seen []string
	handled := make(chan string, 10)
	d := webhook.Dispatcher{Service: h.svc}
	c, err := q.Consume(ctx, d.ConsumerConfig(), func(ctx context.Context, m queue.Message) error {
		err := d.Handle(ctx, m)
		handled <- m.Subject
		return err
	}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop(context.Background()) })

	publish := func(subject string) string {
		id := string(strata.NewID("evt", 3, h.clock.Now()))
		require.NoError(t, q.Publish(ctx, subject, id, []byte(`{"x":1}`)))
		return id
	}
	publish(payments.SubjectIntentSettle)
	want := publish(payments.SubjectPurchaseCompleted)
	publish(payments.SubjectPurchaseCompleted) // a second event
	deadline := time.After(10 * time.Second)
	for len(seen) < 2 {
		select {
		case s := <-handled:
			seen = append(seen, s)
		case <-deadline:
			t.Fatalf("handled only %v", seen)
		}
	}
	require.Equal(t, []string{payments.SubjectPurchaseCompleted, payments.SubjectPurchaseCompleted}, seen)
	ds := h.deliveries(ep)
	require.Len(t, ds, 2)
	require.Equal(t, want, ds[1].EventID, "the envelope id is the message id")
}
