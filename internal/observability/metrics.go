package observability

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stratadev/strata/internal/httpx"
)

// Metrics owns a Prometheus registry, with the Go runtime and process
// collectors, and the HTTP server metrics. Modules register their own
// collectors on Registry().
type Metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight *prometheus.GaugeVec
}

// NewMetrics returns Metrics on a new registry.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	labels := []string{"method", "route", "status_class"}
	m := &Metrics{
		registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_http_requests_total",
			Help: "HTTP requests served, by method, route pattern and status class.",
		}, labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strata_http_request_duration_seconds",
			Help:    "Time to serve HTTP requests, by method, route pattern and status class.",
			Buckets: prometheus.DefBuckets,
		}, labels),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_http_requests_in_flight",
			Help: "HTTP requests being served, by route pattern.",
		}, []string{"route"}),
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration, m.inFlight,
	)
	return m
}

// Registry returns the registry, for modules to register their collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// Handler serves the registry in the Prometheus text format, or OpenMetrics
// when the scraper asks for it.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		Registry:          m.registry, // counts its own errors
	})
}

// HTTPMiddleware records the request count and duration of the requests it
// serves, by method, route and status class. route is the pattern of the
// route that served the request ("unmatched" when none did). Place it outside
// the httpx.Mux and outside httpx.Recover, so that a recovered panic counts
// as the 500 it became. The in-flight gauge is per route, so it is not kept
// here, where the route is unknown until the request is done: see InFlight.
func (m *Metrics) HTTPMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		r, route := httpx.CaptureRoute(r)
		rw := httpx.NewResponseWriter(w)
		completed := false
		defer func() {
			status := rw.Status()
			if !completed && !rw.Written() {
				status = http.StatusInternalServerError // a panic passing through
			}
			pattern := route()
			if pattern == "" {
				pattern = "unmatched"
			}
			method, class := methodLabel(r.Method), statusClass(status)
			m.requests.WithLabelValues(method, pattern, class).Inc()
			m.duration.WithLabelValues(method, pattern, class).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(rw, r)
		completed = true
	})
}

// InFlight wraps h, the handler of the route pattern, so that
// strata_http_requests_in_flight{route=pattern} counts the requests it is
// serving; the series exists, at 0, from the moment h is wrapped. Its
// signature fits httpx.Mux.Wrap: call mux.Wrap(m.InFlight) before the routes
// are registered. Unmatched requests (404, 405) are not counted; the total is
// sum(strata_http_requests_in_flight).
func (m *Metrics) InFlight(pattern string, h http.Handler) http.Handler {
	g := m.inFlight.WithLabelValues(pattern)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.Inc()
		defer g.Dec() // deferred, so a panic passing through is not counted forever
		h.ServeHTTP(w, r)
	})
}

// methodLabel folds methods outside the standard set into "other": clients
// may send any token as a method.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "other"
}

func statusClass(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return strconv.Itoa(status/100) + "xx"
}
