package webhook

import (
	"context"
	"net/http"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/httpx"
)

// maxBody bounds every webhook request body.
const maxBody = 16 << 10

// Page sizes of the delivery list.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// Routes registers the webhook routes on mux, for admins only (there are
// no app keys yet); verifier checks the bearer token. wrapPost wraps the
// POST routes (the Idempotency-Key middleware in cmd/strata); nil means
// none.
func Routes(mux *httpx.Mux, s *Service, verifier httpx.TokenVerifier, wrapPost func(http.Handler) http.Handler) {
	if wrapPost == nil {
		wrapPost = func(h http.Handler) http.Handler { return h }
	}
	admin := func(h http.Handler) http.Handler {
		return httpx.Chain(h, httpx.Authenticate(verifier), httpx.RequireAuth(strata.RoleAdmin))
	}
	mux.Handle("POST /v1/webhooks/endpoints", admin(wrapPost(noStore(handleCreate(s)))))
	mux.Handle("GET /v1/webhooks/endpoints", admin(handleList(s)))
	mux.Handle("GET /v1/webhooks/endpoints/{id}", admin(handleGet(s)))
	mux.Handle("PATCH /v1/webhooks/endpoints/{id}", admin(handleUpdate(s)))
	mux.Handle("DELETE /v1/webhooks/endpoints/{id}", admin(handleDelete(s)))
	mux.Handle("POST /v1/webhooks/endpoints/{id}/rotate", admin(wrapPost(noStore(handleRotate(s)))))
	mux.Handle("GET /v1/webhooks/endpoints/{id}/secret", admin(noStore(handleSecret(s))))
	mux.Handle("GET /v1/webhooks/endpoints/{id}/deliveries", admin(handleDeliveries(s)))
	mux.Handle("GET /v1/webhooks/deliveries/{id}", admin(handleDelivery(s)))
	mux.Handle("POST /v1/webhooks/deliveries/{id}/replay", admin(wrapPost(handleReplay(s))))
}

// noStore keeps answers that carry a secret out of every cache.
func noStore(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

type endpointJSON struct {
	ID      strata.ID `json:"id"`
	URL     string    `json:"url"`
	Events  []string  `json:"events"`
	Enabled bool      `json:"enabled"`
	// Secret is present only in the answers of create, rotate and secret.
	Secret                  string `json:"secret,omitempty"`
	PreviousSecretExpiresAt string `json:"previous_secret_expires_at,omitempty"`
	CreatedAt               string `json:"created_at"`
	UpdatedAt               string `json:"updated_at"`
}

func toEndpointJSON(e *Endpoint) endpointJSON {
	j := endpointJSON{ID: e.ID, URL: e.URL, Events: e.Events, Enabled: e.Enabled, Secret: e.Secret,
		CreatedAt: formatTime(e.CreatedAt), UpdatedAt: formatTime(e.UpdatedAt)}
	if !e.PreviousExpiresAt.IsZero() {
		j.PreviousSecretExpiresAt = formatTime(e.PreviousExpiresAt)
	}
	return j
}

type attemptJSON struct {
	AttemptedAt string `json:"attempted_at"`
	StatusCode  int    `json:"status_code"`
	DurationMS  int64  `json:"duration_ms"`
	Error       string `json:"error,omitempty"`
}

type deliveryJSON struct {
	ID             strata.ID     `json:"id"`
	EventID        string        `json:"event_id"`
	EventType      string        `json:"event_type"`
	EndpointID     strata.ID     `json:"endpoint_id"`
	Status         string        `json:"status"`
	AttemptCount   int           `json:"attempt_count"`
	NextAttemptAt  string        `json:"next_attempt_at,omitempty"`
	LastStatusCode int           `json:"last_status_code"`
	LastError      string        `json:"last_error,omitempty"`
	CreatedAt      string        `json:"created_at"`
	UpdatedAt      string        `json:"updated_at"`
	Attempts       []attemptJSON `json:"attempts"`
}

func toDeliveryJSON(d *Delivery) deliveryJSON {
	j := deliveryJSON{ID: d.ID, EventID: d.EventID, EventType: d.EventType, EndpointID: d.EndpointID, Status: string(d.Status),
		AttemptCount: d.Attempts, LastStatusCode: d.LastStatusCode, LastError: d.LastError,
		CreatedAt: formatTime(d.CreatedAt), UpdatedAt: formatTime(d.UpdatedAt), Attempts: []attemptJSON{}}
	if !d.NextAttemptAt.IsZero() {
		j.NextAttemptAt = formatTime(d.NextAttemptAt)
	}
	for _, a := range d.Log {
		j.Attempts = append(j.Attempts, attemptJSON{AttemptedAt: formatTime(a.At), StatusCode: a.StatusCode,
			DurationMS: a.Duration.Milliseconds(), Error: a.Error})
	}
	return j
}

// endpointID reads the path's endpoint id; a malformed one names nothing.
func endpointID(r *http.Request) (strata.ID, error) {
	id, err := strata.ParseID(r.PathValue("id"), "whe")
	if err != nil {
		return "", errEndpointNotFound
	}
	return id, nil
}

func deliveryID(r *http.Request) (strata.ID, error) {
	id, err := strata.ParseID(r.PathValue("id"), "whd")
	if err != nil {
		return "", errDeliveryNotFound
	}
	return id, nil
}

// withID runs h with the path's id, or answers its error.
func withID(parse func(*http.Request) (strata.ID, error), h func(w http.ResponseWriter, r *http.Request, id strata.ID)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := parse(r)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		h(w, r, id)
	})
}

type createRequest struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
}

func handleCreate(s *Service) http.Handler {
	return httpx.JSONHandler(http.StatusCreated, maxBody, func(ctx context.Context, req createRequest) (any, error) {
		ep, err := s.CreateEndpoint(ctx, req.URL, req.Events)
		if err != nil {
			return nil, err
		}
		return toEndpointJSON(ep), nil
	})
}

func handleList(s *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		eps, err := s.Endpoints(r.Context())
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		out := struct {
			Endpoints []endpointJSON `json:"endpoints"`
		}{Endpoints: []endpointJSON{}}
		for i := range eps {
			out.Endpoints = append(out.Endpoints, toEndpointJSON(&eps[i]))
		}
		httpx.WriteJSON(w, http.StatusOK, out)
	})
}

// endpointAnswer answers with the endpoint get returns.
func endpointAnswer(get func(ctx context.Context, id strata.ID) (*Endpoint, error)) http.Handler {
	return withID(endpointID, func(w http.ResponseWriter, r *http.Request, id strata.ID) {
		ep, err := get(r.Context(), id)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, toEndpointJSON(ep))
	})
}

func handleGet(s *Service) http.Handler    { return endpointAnswer(s.Endpoint) }
func handleRotate(s *Service) http.Handler { return endpointAnswer(s.RotateSecret) }
func handleSecret(s *Service) http.Handler { return endpointAnswer(s.RevealSecret) }

type updateRequest struct {
	URL     *string   `json:"url"`
	Events  *[]string `json:"events"`
	Enabled *bool     `json:"enabled"`
}

func handleUpdate(s *Service) http.Handler {
	return withID(endpointID, func(w http.ResponseWriter, r *http.Request, id strata.ID) {
		httpx.JSONHandler(http.StatusOK, maxBody, func(ctx context.Context, req updateRequest) (any, error) {
			ep, err := s.UpdateEndpoint(ctx, id, EndpointUpdate(req))
			if err != nil {
				return nil, err
			}
			return toEndpointJSON(ep), nil
		}).ServeHTTP(w, r)
	})
}

func handleDelete(s *Service) http.Handler {
	return withID(endpointID, func(w http.ResponseWriter, r *http.Request, id strata.ID) {
		if err := s.DeleteEndpoint(r.Context(), id); err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// pageParams reads cursor, limit and status of the delivery list.
func pageParams(r *http.Request) (DeliveryFilter, error) {
	q := r.URL.Query()
	f := DeliveryFilter{Status: DeliveryStatus(q.Get("status"))}
	var err error
	if f.Limit, err = httpx.Limit(q, DefaultPageSize, MaxPageSize); err != nil {
		return f, err
	}
	switch f.Status {
	case "", StatusPending, StatusSucceeded, StatusFailed:
	default:
		return f, strata.Invalid("status", "must be pending, succeeded or failed")
	}
	if c := q.Get("cursor"); c != "" {
		id, err := strata.ParseID(c, "whd")
		if err != nil {
			return f, strata.Invalid("cursor", "is not a cursor this list returned")
		}
		f.Before = id
	}
	return f, nil
}

func handleDeliveries(s *Service) http.Handler {
	return withID(endpointID, func(w http.ResponseWriter, r *http.Request, id strata.ID) {
		f, err := pageParams(r)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		limit := f.Limit
		f.Limit++
		ds, err := s.Deliveries(r.Context(), id, f)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		page := struct {
			Deliveries []deliveryJSON `json:"deliveries"`
			NextCursor strata.ID      `json:"next_cursor,omitempty"`
		}{Deliveries: []deliveryJSON{}}
		if len(ds) > limit {
			ds = ds[:limit]
			page.NextCursor = ds[limit-1].ID
		}
		for i := range ds {
			page.Deliveries = append(page.Deliveries, toDeliveryJSON(&ds[i]))
		}
		httpx.WriteJSON(w, http.StatusOK, page)
	})
}

// deliveryAnswer answers status with the delivery get returns.
func deliveryAnswer(status int, get func(ctx context.Context, id strata.ID) (*Delivery, error)) http.Handler {
	return withID(deliveryID, func(w http.ResponseWriter, r *http.Request, id strata.ID) {
		d, err := get(r.Context(), id)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		httpx.WriteJSON(w, status, toDeliveryJSON(d))
	})
}

func handleDelivery(s *Service) http.Handler { return deliveryAnswer(http.StatusOK, s.Delivery) }

// handleReplay answers 202: the delivery is queued, not yet sent.
func handleReplay(s *Service) http.Handler { return deliveryAnswer(http.StatusAccepted, s.Replay) }
