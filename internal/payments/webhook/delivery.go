package webhook

import (
	"context"
	"time"

	"github.com/stratadev/strata"
)

// DeliveryStatus is where a delivery stands.
type DeliveryStatus string

// Delivery statuses.
const (
	// StatusPending: not delivered yet; attempts continue at NextAttemptAt.
	StatusPending DeliveryStatus = "pending"
	// StatusSucceeded: the endpoint answered 2xx.
	StatusSucceeded DeliveryStatus = "succeeded"
	// StatusFailed: no attempt succeeded within Config.MaxAge of the
	// first; a replay starts over.
	StatusFailed DeliveryStatus = "failed"
)

// Delivery is one event on its way to one endpoint.
type Delivery struct {
	ID         strata.ID
	EventID    string // the envelope's id: the outbox event id
	EndpointID strata.ID
	EventType  string
	Status     DeliveryStatus
	Attempts   int
	// NextAttemptAt is when a pending delivery is tried next; zero
	// otherwise.
	NextAttemptAt  time.Time
	LastStatusCode int // 0: no response
	LastError      string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	// Log is the delivery's last attempts, newest first.
	Log []Attempt
}

// Attempt is one try at a delivery: the "delivery log".
type Attempt struct {
	At         time.Time
	StatusCode int // 0: no response (refused, unreachable, timed out)
	Duration   time.Duration
	Error      string // why it failed; "" on success
}

var (
	errDeliveryNotFound = &strata.Error{Code: strata.CodeNotFound, Reason: "delivery_not_found", Message: "no such webhook delivery"}
	errDeliveryInFlight = &strata.Error{Code: strata.CodeConflict, Reason: "delivery_in_flight",
		Message: "the delivery is being sent right now; retry in a minute", RetryAfter: time.Minute}
	errEndpointDisabled = &strata.Error{Code: strata.CodeConflict, Reason: "endpoint_disabled",
		Message: "the endpoint is disabled; enable it first"}
)

// DeliveryFilter selects a page of an endpoint's deliveries.
type DeliveryFilter struct {
	Before strata.ID      // only deliveries older than this one; "" for the newest
	Status DeliveryStatus // only these; "" for all
	Limit  int
}

// Deliveries returns an endpoint's deliveries, newest first, each with its
// log. Errors: not_found endpoint_not_found.
func (s *Service) Deliveries(ctx context.Context, endpoint strata.ID, f DeliveryFilter) ([]Delivery, error) {
	if _, err := s.store.endpoint(ctx, endpoint); err != nil {
		return nil, err
	}
	ds, err := s.store.deliveries(ctx, endpoint, f.Before, f.Status, f.Limit)
	if err != nil {
		return nil, err
	}
	ids := make([]strata.ID, len(ds))
	for i := range ds {
		ids[i] = ds[i].ID
	}
	logs, err := s.store.attempts(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i := range ds {
		ds[i].Log = logs[ds[i].ID]
	}
	return ds, nil
}

// Delivery returns one delivery with its log. Errors: not_found
// delivery_not_found.
func (s *Service) Delivery(ctx context.Context, id strata.ID) (*Delivery, error) {
	d, err := s.store.delivery(ctx, id)
	if err != nil {
		return nil, err
	}
	logs, err := s.store.attempts(ctx, []strata.ID{id})
	if err != nil {
		return nil, err
	}
	d.Log = logs[id]
	return d, nil
}

// Replay sends a delivery again, whatever its status: it becomes pending,
// due now, with a fresh retry window of Config.MaxAge; its attempt count
// and log go on. The envelope is the same, event id included, so a
// receiver that processed it already ignores it. Errors: not_found
// delivery_not_found; conflict delivery_in_flight (a sender holds it) or
// endpoint_disabled.
func (s *Service) Replay(ctx context.Context, id strata.ID) (*Delivery, error) {
	if err := s.store.replay(ctx, id, s.clock.Now()); err != nil {
		return nil, err
	}
	s.notifySender()
	return s.Delivery(ctx, id)
}
