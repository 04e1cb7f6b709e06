package httpx_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stratadev/strata/internal/httpx"
	"github.com/stretchr/testify/require"
)

// TestNestedMiddlewareSharesOneRequestState: a second RequestID layer (a
// module mounted behind another chain) keeps the id, the logger and the
// route the outer layers see, and request_id is logged once.
func TestNestedMiddlewareSharesOneRequestState(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	mux := httpx.NewMux()
	mux.HandleFunc("GET /things/{id}", func(w http.ResponseWriter, r *http.Request) {
		l := httpx.Logger(r.Context())
		l.Info("inside")
		r = r.WithContext(httpx.WithLogger(r.Context(), l.With("item_id", r.PathValue("id"))))
		httpx.Logger(r.Context()).Info("derived")
		w.WriteHeader(http.StatusNoContent)
	})
	inner := httpx.Chain(mux, httpx.RequestID)
	outer := httpx.Chain(inner, httpx.RequestID, httpx.AccessLog(logger))

	req := httptest.NewRequest("GET", "/things/7", nil)
	req.Header.Set(httpx.HeaderRequestID, "outer-id")
	rec := httptest.NewRecorder()
	outer.ServeHTTP(rec, req)
	require.Equal(t, http.StatusNoContent, rec.Code)
	require.Equal(t, "outer-id", rec.Header().Get(httpx.HeaderRequestID))

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	require.Len(t, lines, 3, logs.String())
	for _, l := range lines {
		require.Equal(t, 1, strings.Count(l, `"request_id":"outer-id"`), "request_id exactly once: %s", l)
	}
	require.Contains(t, lines[2], `"route":"GET /things/{id}"`, "the access log sees the route the inner mux matched")
	require.Contains(t, lines[1], `"item_id":"7"`)
}
