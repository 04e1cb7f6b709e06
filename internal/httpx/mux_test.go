package httpx_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stratadev/strata/internal/httpx"
	"github.com/stretchr/testify/require"
)

func newTestMux(t *testing.T) *httpx.Mux {
	t.Helper()
	mux := httpx.NewMux()
	mux.HandleFunc("GET /v1/items/{id}", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id"), "pattern": r.Pattern})
	})
	mux.HandleFunc("DELETE /v1/items/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.Handle("POST /v1/items", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
	}))
	mux.HandleFunc("/v1/dir/", func(w http.ResponseWriter, r *http.Request) {})
	return mux
}

func TestMux(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		method     string
		path       string
		wantStatus int
		wantCode   string // problem code, for error responses
		wantAllow  string
		wantBody   string // JSON, for success responses
		wantTo     string // Location of a redirect, whose status varies by Go version
	}{
		{name: "match with path value", method: "GET", path: "/v1/items/itm_1", wantStatus: 200,
			wantBody: `{"id":"itm_1","pattern":"GET /v1/items/{id}"}`},
		{name: "head matches get", method: "HEAD", path: "/v1/items/itm_1", wantStatus: 200},
		{name: "other method", method: "DELETE", path: "/v1/items/itm_1", wantStatus: 204},
		{name: "unknown route", method: "GET", path: "/v1/nothing", wantStatus: 404, wantCode: "route_not_found"},
		{name: "root", method: "GET", path: "/", wantStatus: 404, wantCode: "route_not_found"},
		{name: "wrong method", method: "PUT", path: "/v1/items/itm_1", wantStatus: 405,
			wantCode: "method_not_allowed", wantAllow: "DELETE, GET, HEAD"},
		{name: "wrong method on collection", method: "GET", path: "/v1/items", wantStatus: 405,
			wantCode: "method_not_allowed", wantAllow: "POST"},
		{name: "trailing slash redirect", method: "GET", path: "/v1/dir", wantTo: "/v1/dir/"},
	}
	mux := newTestMux(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := httptest.NewRecorder()
			httpx.RequestID(mux).ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, nil))
			if tt.wantTo != "" {
				require.Equal(t, 3, w.Code/100)
				require.Equal(t, tt.wantTo, w.Header().Get("Location"))
				return
			}
			require.Equal(t, tt.wantStatus, w.Code)
			require.Equal(t, tt.wantAllow, w.Header().Get("Allow"))
			if tt.wantCode != "" {
				p := decodeProblem(t, w)
				require.Equal(t, tt.wantCode, p.Code)
				require.Equal(t, tt.wantStatus, p.Status)
				require.Equal(t, "https://strata.dev/problems/"+tt.wantCode, p.Type)
				require.Equal(t, w.Header().Get(httpx.HeaderRequestID), p.RequestID)
			}
			if tt.wantBody != "" {
				require.JSONEq(t, tt.wantBody, w.Body.String())
			}
		})
	}
}

func TestMuxPatterns(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"GET /v1/items/{id}", "DELETE /v1/items/{id}", "POST /v1/items", "/v1/dir/"},
		newTestMux(t).Patterns())
}

func TestMuxConflictPanics(t *testing.T) {
	t.Parallel()
	mux := httpx.NewMux()
	mux.HandleFunc("GET /a", func(http.ResponseWriter, *http.Request) {})
	require.Panics(t, func() { mux.HandleFunc("GET /a", func(http.ResponseWriter, *http.Request) {}) })
}

func TestAccessLogRoute(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		method    string
		path      string
		wantRoute string
		wantLevel string
	}{
		{name: "matched", method: "GET", path: "/v1/items/itm_1", wantRoute: "GET /v1/items/{id}", wantLevel: "INFO"},
		{name: "unmatched", method: "GET", path: "/v1/nothing", wantRoute: "", wantLevel: "INFO"},
		{name: "probe is quiet", method: "GET", path: "/healthz", wantRoute: "GET /healthz", wantLevel: "DEBUG"},
	}
	mux := newTestMux(t)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			h := httpx.Chain(mux, httpx.RequestID, httpx.AccessLog(logger), httpx.Recover)
			r := httptest.NewRequest(tt.method, tt.path, nil)
			r.RemoteAddr = "192.0.2.7:5555"
			r.Header.Set(httpx.HeaderRequestID, "rid-1")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)

			var line map[string]any
			require.NoError(t, json.Unmarshal(logs.Bytes(), &line), logs.String())
			require.Equal(t, tt.wantLevel, line["level"])
			require.Equal(t, "http request", line["msg"])
			require.Equal(t, tt.method, line["method"])
			require.Equal(t, tt.wantRoute, line["route"])
			require.Equal(t, tt.path, line["path"])
			require.InDelta(t, float64(w.Code), line["status"], 0)
			require.InDelta(t, float64(w.Body.Len()), line["bytes"], 0)
			require.Contains(t, line, "duration_us")
			require.Equal(t, "rid-1", line["request_id"])
			require.Equal(t, "192.0.2.7:5555", line["remote_addr"])
		})
	}
}

func TestMuxWrap(t *testing.T) {
	t.Parallel()
	// tag returns a wrapper that appends its name and the pattern to the
	// X-Wrapped response header, before calling the handler.
	tag := func(name string) func(string, http.Handler) http.Handler {
		return func(pattern string, h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Add("X-Wrapped", name+" "+pattern+" "+r.Pattern)
				h.ServeHTTP(w, r)
			})
		}
	}
	mux := httpx.NewMux()
	mux.HandleFunc("GET /before", func(http.ResponseWriter, *http.Request) {})
	mux.Wrap(tag("outer"))
	mux.HandleFunc("GET /once/{id}", func(http.ResponseWriter, *http.Request) {})
	mux.Wrap(tag("inner"))
	mux.HandleFunc("GET /twice", func(http.ResponseWriter, *http.Request) {})

	tests := []struct {
		name        string
		path        string
		wantStatus  int
		wantWrapped []string
	}{
		{name: "registered before Wrap", path: "/before", wantStatus: 200},
		{name: "one wrapper", path: "/once/7", wantStatus: 200,
			wantWrapped: []string{"outer GET /once/{id} GET /once/{id}"}},
		{name: "first added is outermost", path: "/twice", wantStatus: 200,
			wantWrapped: []string{"outer GET /twice GET /twice", "inner GET /twice GET /twice"}},
		{name: "unmatched is not wrapped", path: "/nothing", wantStatus: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, tt.path, nil))
			require.Equal(t, tt.wantStatus, w.Code)
			require.Equal(t, tt.wantWrapped, w.Header().Values("X-Wrapped"))
		})
	}
}

func TestMuxWrapNilPanics(t *testing.T) {
	t.Parallel()
	require.Panics(t, func() { httpx.NewMux().Wrap(nil) })
}
