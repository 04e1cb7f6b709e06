package observability_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stratadev/strata/internal/httpx"
	"github.com/stratadev/strata/internal/observability"
	"github.com/stretchr/testify/require"
)

// newServer serves a small API behind the metrics middleware, with /metrics
// on the same mux and the in-flight gauge on every route, as run.go wires it.
// register, when not nil, adds more routes.
func newServer(t *testing.T, m *observability.Metrics, register ...func(*httpx.Mux)) *httptest.Server {
	t.Helper()
	mux := httpx.NewMux()
	mux.Wrap(m.InFlight)
	for _, f := range register {
		f(mux)
	}
	mux.HandleFunc("GET /v1/items/{id}", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id")})
	})
	mux.HandleFunc("POST /v1/items", func(w http.ResponseWriter, r *http.Request) { panic("boom") })
	mux.Handle("GET /metrics", m.Handler())
	srv := httptest.NewServer(httpx.Chain(mux, httpx.RequestID, m.HTTPMiddleware, httpx.Recover))
	t.Cleanup(srv.Close)
	return srv
}

func scrape(t *testing.T, srv *httptest.Server, accept string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
	require.NoError(t, err)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(body)
}

func TestHTTPMetrics(t *testing.T) {
	t.Parallel()
	m := observability.NewMetrics()
	srv := newServer(t, m)
	for _, req := range []struct{ method, path string }{
		{"GET", "/v1/items/itm_1"}, {"GET", "/v1/items/itm_2"}, {"GET", "/v1/items/itm_3"},
		{"POST", "/v1/items"}, {"GET", "/no/such/route"}, {"DELETE", "/v1/items/itm_1"}, {"BREW", "/v1/items/x"},
	} {
		r, err := http.NewRequest(req.method, srv.URL+req.path, nil)
		require.NoError(t, err)
		resp, err := srv.Client().Do(r)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
	}

	out := scrape(t, srv, "")
	for _, want := range []string{
		`strata_http_requests_total{method="GET",route="GET /v1/items/{id}",status_class="2xx"} 3`,
		`strata_http_requests_total{method="POST",route="POST /v1/items",status_class="5xx"} 1`,
		`strata_http_requests_total{method="GET",route="unmatched",status_class="4xx"} 1`,
		`strata_http_requests_total{method="DELETE",route="unmatched",status_class="4xx"} 1`,
		`strata_http_requests_total{method="other",route="unmatched",status_class="4xx"} 1`,
		`strata_http_request_duration_seconds_count{method="GET",route="GET /v1/items/{id}",status_class="2xx"} 3`,
		`strata_http_requests_in_flight{route="GET /metrics"} 1`, // the scrape itself
		`strata_http_requests_in_flight{route="GET /v1/items/{id}"} 0`,
		"go_goroutines ",
		"process_cpu_seconds_total ",
	} {
		require.Contains(t, out, want)
	}
	require.NotContains(t, out, `strata_http_requests_in_flight{route="unmatched"}`)
	require.NotContains(t, out, "itm_1", "raw paths must never become labels")
	require.NotContains(t, out, "/no/such/route")

	// The scrape above is counted once it is done.
	require.Contains(t, scrape(t, srv, ""),
		`strata_http_requests_total{method="GET",route="GET /metrics",status_class="2xx"} 1`)
}

func TestMetricsOpenMetrics(t *testing.T) {
	t.Parallel()
	srv := newServer(t, observability.NewMetrics())
	out := scrape(t, srv, "application/openmetrics-text; version=1.0.0")
	require.True(t, strings.HasSuffix(out, "# EOF\n"), "OpenMetrics output ends with # EOF")
}

func TestMetricsRegistriesAreSeparate(t *testing.T) {
	t.Parallel()
	a, b := observability.NewMetrics(), observability.NewMetrics()
	require.NotSame(t, a.Registry(), b.Registry())
	a.HTTPMiddleware(http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(),
		httptest.NewRequest(http.MethodGet, "/x", nil))
	require.Equal(t, 1, countRequests(t, a, "GET", "unmatched", "4xx"))
	require.Equal(t, 0, countRequests(t, b, "GET", "unmatched", "4xx"))
}

// countRequests returns the value of strata_http_requests_total for the labels.
func countRequests(t *testing.T, m *observability.Metrics, method, route, class string) int {
	t.Helper()
	families, err := m.Registry().Gather()
	require.NoError(t, err)
	want := map[string]string{"method": method, "route": route, "status_class": class}
	for _, f := range families {
		if f.GetName() != "strata_http_requests_total" {
			continue
		}
	metrics:
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				if want[l.GetName()] != l.GetValue() {
					continue metrics
				}
			}
			return int(metric.GetCounter().GetValue())
		}
	}
	return 0
}

// The middleware also learns the route from a plain http.ServeMux placed
// directly inside it.
func TestHTTPMetricsPlainServeMux(t *testing.T) {
	t.Parallel()
	m := observability.NewMetrics()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /plain/{id}", func(w http.ResponseWriter, r *http.Request) {})
	w := httptest.NewRecorder()
	m.HTTPMiddleware(mux).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/plain/7", nil))
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, 1, countRequests(t, m, "GET", "GET /plain/{id}", "2xx"))
}

func TestHTTPInFlightPerRoute(t *testing.T) {
	t.Parallel()
	m := observability.NewMetrics()
	entered, release := make(chan struct{}), make(chan struct{})
	srv := newServer(t, m, func(mux *httpx.Mux) {
		mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
			close(entered)
			<-release
		})
	})
	// Released at the latest in cleanup, which runs before srv.Close (that
	// waits for the blocked request), so a failed check cannot hang the test.
	unblock := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unblock)
	done := make(chan error, 1)
	go func() {
		resp, err := srv.Client().Get(srv.URL + "/slow")
		if err == nil {
			err = resp.Body.Close()
		}
		done <- err
	}()
	<-entered

	tests := []struct {
		name    string
		blocked bool // whether /slow is still being served during the scrape
		want    []string
	}{
		{name: "while blocked", blocked: true, want: []string{
			`strata_http_requests_in_flight{route="GET /slow"} 1`,
			`strata_http_requests_in_flight{route="GET /metrics"} 1`,
			`strata_http_requests_in_flight{route="GET /v1/items/{id}"} 0`,
		}},
		{name: "after it returns", want: []string{
			`strata_http_requests_in_flight{route="GET /slow"} 0`,
			`strata_http_requests_in_flight{route="GET /metrics"} 1`,
		}},
	}
	// Sequential: the cases are steps in time.
	for _, tt := range tests {
		if !tt.blocked {
			unblock()
			// The response is sent only after the handler chain has returned,
			// so the gauge is already down when the client has it.
			require.NoError(t, <-done)
		}
		out := scrape(t, srv, "")
		for _, want := range tt.want {
			require.Contains(t, out, want, tt.name)
		}
	}
}

func TestHTTPInFlightPanic(t *testing.T) {
	t.Parallel()
	m := observability.NewMetrics()
	srv := newServer(t, m)
	resp, err := srv.Client().Post(srv.URL+"/v1/items", "application/json", nil) // panics
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	require.Contains(t, scrape(t, srv, ""), `strata_http_requests_in_flight{route="POST /v1/items"} 0`)
}
