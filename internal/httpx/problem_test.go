package httpx_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/httpx"
	"github.com/stretchr/testify/require"
)

// serveError runs WriteError behind RequestID and AccessLog, as in
// production, and returns the response and what was logged.
func serveError(t *testing.T, err error) (*httptest.ResponseRecorder, string) {
	t.Helper()
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := httpx.Chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, r, err)
	}), httpx.RequestID, httpx.AccessLog(logger))
	r := httptest.NewRequest(http.MethodGet, "/v1/things/1", nil)
	r.Header.Set(httpx.HeaderRequestID, "req-123")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w, logs.String()
}

func decodeProblem(t *testing.T, w *httptest.ResponseRecorder) httpx.Problem {
	t.Helper()
	require.Equal(t, httpx.ContentTypeProblem, w.Header().Get("Content-Type"))
	var p httpx.Problem
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&p))
	return p
}

func TestWriteError(t *testing.T) {
	t.Parallel()
	cause := errors.New("pq: password authentication failed for user strata")
	tests := []struct {
		name           string
		err            error
		wantStatus     int
		wantCode       string
		wantDetail     string
		wantRetryAfter string
		wantAuth       string
		wantFields     []strata.FieldError
		wantLogged     bool
	}{
		{name: "invalid with fields", err: strata.Invalid("email", "is required", "age", "must be positive"),
			wantStatus: 400, wantCode: "validation_failed", wantDetail: "the request has invalid fields",
			wantFields: []strata.FieldError{{Field: "email", Message: "is required"}, {Field: "age", Message: "must be positive"}}},
		{name: "unauthenticated without reason", err: &strata.Error{Code: strata.CodeUnauthenticated, Message: "sign in"},
			wantStatus: 401, wantCode: "unauthenticated", wantDetail: "sign in", wantAuth: "Bearer"},
		{name: "unauthenticated with reason", err: strata.Errorf(strata.CodeUnauthenticated, "token_expired", "the token expired"),
			wantStatus: 401, wantCode: "token_expired", wantDetail: "the token expired", wantAuth: `Bearer error="invalid_token"`},
		{name: "payment required", err: strata.Errorf(strata.CodePaymentRequired, "insufficient_funds", "top up"),
			wantStatus: 402, wantCode: "insufficient_funds", wantDetail: "top up"},
		{name: "permission denied", err: strata.Errorf(strata.CodePermissionDenied, "", "not yours"),
			wantStatus: 403, wantCode: "permission_denied", wantDetail: "not yours"},
		{name: "not found wrapped", err: fmt.Errorf("get item: %w", strata.Errorf(strata.CodeNotFound, "item_not_found", "no such item")),
			wantStatus: 404, wantCode: "item_not_found", wantDetail: "no such item"},
		{name: "conflict with cause", err: &strata.Error{Code: strata.CodeConflict, Reason: "email_taken", Message: "email taken", Err: cause},
			wantStatus: 409, wantCode: "email_taken", wantDetail: "email taken"},
		{name: "too large", err: strata.Errorf(strata.CodeTooLarge, "body_too_large", "too big"),
			wantStatus: 413, wantCode: "body_too_large", wantDetail: "too big"},
		{name: "unsupported", err: strata.Errorf(strata.CodeUnsupported, "unsupported_media_type", "json only"),
			wantStatus: 415, wantCode: "unsupported_media_type", wantDetail: "json only"},
		{name: "unprocessable", err: strata.Errorf(strata.CodeUnprocessable, "", "cannot refund"),
			wantStatus: 422, wantCode: "unprocessable", wantDetail: "cannot refund"},
		{name: "rate limited rounds up", err: &strata.Error{Code: strata.CodeRateLimited, Message: "slow down", RetryAfter: 1500 * time.Millisecond},
			wantStatus: 429, wantCode: "rate_limited", wantDetail: "slow down", wantRetryAfter: "2"},
		{name: "rate limited at least one second", err: &strata.Error{Code: strata.CodeRateLimited, RetryAfter: time.Millisecond},
			wantStatus: 429, wantCode: "rate_limited", wantDetail: "Too Many Requests", wantRetryAfter: "1"},
		{name: "rate limited default", err: &strata.Error{Code: strata.CodeRateLimited, Message: "slow down"},
			wantStatus: 429, wantCode: "rate_limited", wantDetail: "slow down", wantRetryAfter: "1"},
		{name: "internal", err: strata.Internal(cause),
			wantStatus: 500, wantCode: "internal", wantDetail: "internal error", wantLogged: true},
		{name: "plain error", err: cause,
			wantStatus: 500, wantCode: "internal", wantDetail: "internal error", wantLogged: true},
		{name: "unknown code", err: &strata.Error{Code: "bogus", Reason: "bogus_reason", Message: "m", Err: cause},
			wantStatus: 500, wantCode: "internal", wantDetail: "m", wantLogged: true},
		{name: "unavailable default retry", err: &strata.Error{Code: strata.CodeUnavailable, Message: "try later", Err: cause},
			wantStatus: 503, wantCode: "unavailable", wantDetail: "try later", wantRetryAfter: "1", wantLogged: true},
		{name: "unavailable retry after", err: &strata.Error{Code: strata.CodeUnavailable, Message: "try later", RetryAfter: 30 * time.Second},
			wantStatus: 503, wantCode: "unavailable", wantDetail: "try later", wantRetryAfter: "30", wantLogged: true},
		{name: "server error hides fields", err: &strata.Error{Code: strata.CodeInternal, Message: "oops", Fields: []strata.FieldError{{Field: "f", Message: "m"}}},
			wantStatus: 500, wantCode: "internal", wantDetail: "oops", wantLogged: true},
		{name: "nil error", err: nil,
			wantStatus: 500, wantCode: "internal", wantDetail: "internal error", wantLogged: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w, logs := serveError(t, tt.err)
			require.Equal(t, tt.wantStatus, w.Code)
			require.Equal(t, tt.wantRetryAfter, w.Header().Get("Retry-After"))
			require.Equal(t, tt.wantAuth, w.Header().Get("WWW-Authenticate"))
			require.NotContains(t, w.Body.String(), "password")
			p := decodeProblem(t, w)
			require.Equal(t, httpx.Problem{
				Type:      "https://strata.dev/problems/" + tt.wantCode,
				Title:     http.StatusText(tt.wantStatus),
				Status:    tt.wantStatus,
				Detail:    tt.wantDetail,
				Code:      tt.wantCode,
				RequestID: "req-123",
				Errors:    tt.wantFields,
			}, p)
			if tt.wantLogged {
				require.Contains(t, logs, `"msg":"request failed"`)
				require.Contains(t, logs, `"request_id":"req-123"`)
				if tt.err != nil && errors.Is(tt.err, cause) {
					require.Contains(t, logs, cause.Error())
				}
			} else {
				require.NotContains(t, logs, "request failed")
			}
		})
	}
}

func TestWriteErrorAfterWrite(t *testing.T) {
	t.Parallel()
	h := httpx.Recover(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusCreated, map[string]int{"n": 1})
		httpx.WriteError(w, r, strata.Internal(errors.New("late")))
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	require.Equal(t, http.StatusCreated, w.Code)
	require.JSONEq(t, `{"n":1}`, w.Body.String())
}

func TestWriteJSON(t *testing.T) {
	t.Parallel()
	w := httptest.NewRecorder()
	httpx.WriteJSON(w, http.StatusAccepted, struct {
		ID string `json:"id"`
	}{ID: "itm_1"})
	require.Equal(t, http.StatusAccepted, w.Code)
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	require.JSONEq(t, `{"id":"itm_1"}`, w.Body.String())
}

func TestWriteJSONUnencodable(t *testing.T) {
	t.Parallel()
	h := httpx.Recover(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"c": make(chan int)})
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	require.Equal(t, http.StatusInternalServerError, w.Code)
	require.Equal(t, "internal", decodeProblem(t, w).Code)
}
