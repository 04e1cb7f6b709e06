package webhook

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/payments"
)

// MaxEndpoints bounds the number of endpoints: each event fans out to all
// of them.
const MaxEndpoints = 100

// RotationOverlap is how long the previous secret keeps signing after a
// rotation, beside the new one.
const RotationOverlap = 24 * time.Hour

// AllEvents subscribes an endpoint to every event type.
const AllEvents = "*"

// subjectPrefix is cut from a payments subject to name its event type.
const subjectPrefix = "payments."

// publicSubjects are the payments subjects delivered to webhooks; the
// others (payments.payment_intent.settle) are internal work orders.
var publicSubjects = []string{
	payments.SubjectIntentSucceeded,
	payments.SubjectIntentFailed,
	payments.SubjectPurchaseCompleted,
	payments.SubjectPurchaseRefunded,
}

// EventTypes returns the event types an endpoint may subscribe to: the
// public payments subjects without "payments.", such as
// "purchase.completed".
func EventTypes() []string {
	out := make([]string, len(publicSubjects))
	for i, s := range publicSubjects {
		out[i] = strings.TrimPrefix(s, subjectPrefix)
	}
	return out
}

// Endpoint is a URL that receives the events it subscribes to.
type Endpoint struct {
	ID     strata.ID
	URL    string
	Events []string // event types, or ["*"] for all
	// Enabled endpoints receive events; a disabled one gets no new
	// deliveries and its pending ones wait.
	Enabled bool
	// Secret is the current signing secret, set only by CreateEndpoint,
	// RotateSecret and RevealSecret.
	Secret string
	// PreviousExpiresAt, when not zero, is until when the secret replaced
	// by the last rotation still signs too.
	PreviousExpiresAt time.Time
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// subscribes reports whether the endpoint wants events of type typ.
func (e *Endpoint) subscribes(typ string) bool {
	return slices.Contains(e.Events, AllEvents) || slices.Contains(e.Events, typ)
}

// EndpointUpdate changes the fields that are set.
type EndpointUpdate struct {
	URL     *string
	Events  *[]string
	Enabled *bool
}

// invalidField is a validation error naming field.
func invalidField(field, msg string) *strata.Error { return strata.Invalid(field, msg) }

var (
	errEndpointNotFound = &strata.Error{Code: strata.CodeNotFound, Reason: "endpoint_not_found", Message: "no such webhook endpoint"}
	errTooManyEndpoints = &strata.Error{Code: strata.CodeConflict, Reason: "too_many_endpoints",
		Message: "there are already as many webhook endpoints as allowed; delete one first"}
)

// checkEvents validates a subscription list and returns it normalized:
// duplicates dropped, ["*"] when "*" is present.
func checkEvents(events []string) ([]string, error) {
	if len(events) == 0 {
		return nil, invalidField("events", "must list at least one event type, or \"*\"")
	}
	known := EventTypes()
	var out []string
	for _, e := range events {
		if e == AllEvents {
			return []string{AllEvents}, nil
		}
		if !slices.Contains(known, e) {
			return nil, invalidField("events", "has an unknown event type "+quote(e)+"; known: "+strings.Join(known, ", ")+", or \"*\"")
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// quote quotes s for a message, cut to a sane length.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return `"` + strings.ToValidUTF8(s, "?") + `"`
}

// CreateEndpoint adds an enabled endpoint with a fresh secret, returned
// in Secret (the only time it is shown unasked). Errors: invalid naming url
// or events; conflict too_many_endpoints.
func (s *Service) CreateEndpoint(ctx context.Context, rawURL string, events []string) (*Endpoint, error) {
	u, err := checkURL(rawURL, s.cfg.AllowPrivate)
	if err != nil {
		return nil, err
	}
	evs, err := checkEvents(events)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	secret := NewSecret()
	row := endpointRow{Endpoint: Endpoint{ID: strata.NewID("whe", HomeShard, now), URL: u, Events: evs, Enabled: true,
		CreatedAt: now, UpdatedAt: now}}
	if row.Secret, err = s.sealSecret(row.ID, secret); err != nil {
		return nil, strata.Internal(err)
	}
	if err := s.store.insertEndpoint(ctx, &row, MaxEndpoints); err != nil {
		return nil, err
	}
	s.invalidate()
	ep := row.public()
	ep.Secret = secret
	return &ep, nil
}

// Endpoints returns every endpoint, oldest first, without secrets.
func (s *Service) Endpoints(ctx context.Context) ([]Endpoint, error) {
	rows, err := s.store.endpoints(ctx, false)
	if err != nil {
		return nil, err
	}
	out := make([]Endpoint, len(rows))
	for i := range rows {
		out[i] = rows[i].public()
	}
	return out, nil
}

// Endpoint returns one endpoint without its secret; not_found
// endpoint_not_found.
func (s *Service) Endpoint(ctx context.Context, id strata.ID) (*Endpoint, error) {
	row, err := s.store.endpoint(ctx, id)
	if err != nil {
		return nil, err
	}
	ep := row.public()
	return &ep, nil
}

// UpdateEndpoint changes an endpoint's URL, subscriptions or state.
// Pending deliveries go to the new URL. Errors: not_found
// endpoint_not_found; invalid naming url or events.
func (s *Service) UpdateEndpoint(ctx context.Context, id strata.ID, up EndpointUpdate) (*Endpoint, error) {
	var u string
	var evs []string
	var err error
	if up.URL != nil {
		if u, err = checkURL(*up.URL, s.cfg.AllowPrivate); err != nil {
			return nil, err
		}
	}
	if up.Events != nil {
		if evs, err = checkEvents(*up.Events); err != nil {
			return nil, err
		}
	}
	row, err := s.store.updateEndpoint(ctx, id, func(r *endpointRow) error {
		if up.URL != nil {
			r.URL = u
		}
		if up.Events != nil {
			r.Events = evs
		}
		if up.Enabled != nil {
			r.Enabled = *up.Enabled
		}
		r.UpdatedAt = s.clock.Now()
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.invalidate()
	ep := row.public()
	return &ep, nil
}

// DeleteEndpoint removes an endpoint with its deliveries and their log.
// Errors: not_found endpoint_not_found.
func (s *Service) DeleteEndpoint(ctx context.Context, id strata.ID) error {
	if err := s.store.deleteEndpoint(ctx, id); err != nil {
		return err
	}
	s.invalidate()
	return nil
}

// RotateSecret gives an endpoint a new secret, returned in Secret; the
// replaced one keeps signing beside it for RotationOverlap (a secret
// replaced earlier stops at once). Errors: not_found endpoint_not_found.
func (s *Service) RotateSecret(ctx context.Context, id strata.ID) (*Endpoint, error) {
	secret := NewSecret()
	row, err := s.store.updateEndpoint(ctx, id, func(r *endpointRow) error {
		sealed, err := s.sealSecret(r.ID, secret)
		if err != nil {
			return strata.Internal(err)
		}
		now := s.clock.Now()
		r.PreviousSecret, r.PreviousExpiresAt = r.Secret, now.Add(RotationOverlap)
		r.Secret, r.UpdatedAt = sealed, now
		return nil
	})
	if err != nil {
		return nil, err
	}
	ep := row.public()
	ep.Secret = secret
	return &ep, nil
}

// RevealSecret returns an endpoint with its current secret, for an admin
// who lost it (Stripe's dashboard shows it again too). Errors: not_found
// endpoint_not_found.
func (s *Service) RevealSecret(ctx context.Context, id strata.ID) (*Endpoint, error) {
	row, err := s.store.endpoint(ctx, id)
	if err != nil {
		return nil, err
	}
	secret, err := s.openSecret(row.ID, row.Secret)
	if err != nil {
		return nil, strata.Internal(err)
	}
	ep := row.public()
	ep.Secret = secret
	return &ep, nil
}

// endpointCacheTTL is how long the dispatcher trusts its list of enabled
// endpoints; changes made through this Service apply at once, those made
// on other instances within this time.
const endpointCacheTTL = 5 * time.Second

// enabledEndpoints returns the enabled endpoints, cached briefly.
func (s *Service) enabledEndpoints(ctx context.Context) ([]endpointRow, error) {
	now := s.clock.Now()
	s.mu.Lock()
	if !s.cachedAt.IsZero() && now.Sub(s.cachedAt) < endpointCacheTTL && !now.Before(s.cachedAt) {
		rows := s.cached
		s.mu.Unlock()
		return rows, nil
	}
	gen := s.cacheGen
	s.mu.Unlock()
	rows, err := s.store.endpoints(ctx, true)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.cacheGen == gen { // no change since the read began
		s.cached, s.cachedAt = rows, now
	}
	s.mu.Unlock()
	return rows, nil
}

// invalidate drops the cached endpoints after a change.
func (s *Service) invalidate() {
	s.mu.Lock()
	s.cached, s.cachedAt = nil, time.Time{}
	s.cacheGen++
	s.mu.Unlock()
}
