package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/payments"
	"github.com/stratadev/strata/internal/queue"
)

// Envelope is the JSON body of every webhook request.
type Envelope struct {
	// ID is the event's id (the outbox id, "evt_..."), the same on every
	// attempt and replay: receivers de-duplicate on it.
	ID string `json:"id"`
	// Type is the event type, such as "purchase.completed".
	Type string `json:"type"`
	// Created is when the event happened, in Unix seconds.
	Created int64 `json:"created"`
	// Data is the event's payload, as payments published it.
	Data json.RawMessage `json:"data"`
}

// Dispatcher is the worker's consumer of payments' public events: for
// each it records a pending delivery to every enabled endpoint subscribed
// to its type, then acknowledges; the sender (RunSender) does the HTTP.
// It is idempotent: a redelivered message finds its rows there already
// (unique on event and endpoint) and adds none.
type Dispatcher struct {
	Service *Service
	Logger  *slog.Logger
}

// DispatchMaxDeliver bounds how long a message that cannot be recorded
// (the database is down) is retried, with back-off up to a minute: about
// an hour, before it is dead-lettered.
const DispatchMaxDeliver = 64

// ConsumerConfig is the durable consumer the worker runs: the public
// payments subjects only, so internal work orders such as
// payments.payment_intent.settle never leave the system.
func (Dispatcher) ConsumerConfig() queue.ConsumerConfig {
	return queue.ConsumerConfig{Stream: payments.Stream, Durable: "payments-webhooks", FilterSubjects: slices.Clone(publicSubjects),
		MaxDeliver: DispatchMaxDeliver, BackoffBase: time.Second, BackoffMax: time.Minute}
}

// Handle records the deliveries of one event.
func (d Dispatcher) Handle(ctx context.Context, m queue.Message) error {
	s := d.Service
	if !slices.Contains(publicSubjects, m.Subject) {
		return nil // not for receivers
	}
	if !json.Valid(m.Data) {
		return queue.Permanent(fmt.Errorf("dispatch event %s: payload is not JSON", m.ID))
	}
	typ := strings.TrimPrefix(m.Subject, subjectPrefix)
	created := strata.ID(m.ID).Time()
	if created.IsZero() { // not an outbox id: published by hand
		created = s.clock.Now()
	}
	endpoints, err := s.enabledEndpoints(ctx)
	if err != nil {
		return err
	}
	var targets []strata.ID
	for i := range endpoints {
		ep := &endpoints[i].Endpoint
		// An endpoint receives the events that happen once it exists, not
		// the backlog before it.
		if ep.subscribes(typ) && !created.Before(ep.CreatedAt.Truncate(time.Millisecond)) {
			targets = append(targets, ep.ID)
		}
	}
	if len(targets) == 0 {
		return nil
	}
	body, err := json.Marshal(Envelope{ID: m.ID, Type: typ, Created: created.Unix(), Data: json.RawMessage(m.Data)})
	if err != nil {
		return queue.Permanent(fmt.Errorf("encode event %s: %w", m.ID, err))
	}
	n, err := s.store.enqueue(ctx, eventRow{ID: m.ID, Type: typ, Body: body, CreatedAt: created}, targets, s.clock.Now())
	if err != nil {
		return err
	}
	if n > 0 {
		s.notifySender()
		if d.Logger != nil {
			d.Logger.Debug("webhook deliveries queued", "msg_id", m.ID, "subject", m.Subject, "deliveries", n)
		}
	}
	return nil
}
