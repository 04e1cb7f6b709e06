package gateway

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the gateway's Prometheus collectors: what it routed, how
// each try ended, what it retried and shed, and how it sees its pools.
type Metrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	attempts  *prometheus.CounterVec
	retries   *prometheus.CounterVec
	shed      *prometheus.CounterVec
	ejections *prometheus.CounterVec
	instances *prometheus.GaugeVec
	breaker   *prometheus.GaugeVec
	limit     prometheus.GaugeFunc
}

// NewMetrics registers the gateway's collectors on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_gateway_requests_total",
			Help: "Requests the gateway answered, by pool and status class.",
		}, []string{"pool", "status_class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strata_gateway_request_duration_seconds",
			Help:    "Time from a request's arrival to its upstream's response headers, retries included, by pool.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"pool"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_gateway_attempts_total",
			Help: "Tries sent to instances, by pool and outcome (ok, status_5xx, refused, error).",
		}, []string{"pool", "outcome"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_gateway_retries_total",
			Help: "Retry decisions, by pool and decision (retried, budget_exhausted, not_retryable).",
		}, []string{"pool", "decision"}),
		shed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_gateway_shed_total",
			Help: "Requests answered by the gateway itself without reaching an instance, by reason (rate_limited, overloaded, breaker_open, no_instance, no_route).",
		}, []string{"reason"}),
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_gateway_ejections_total",
			Help: "Instances ejected by passive checks (failed requests in a row), by pool.",
		}, []string{"pool"}),
		instances: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_gateway_instances",
			Help: "Instances per pool: known (discovered), healthy (passing /readyz) and usable (healthy and not ejected).",
		}, []string{"pool", "state"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_gateway_breaker_state",
			Help: "Each pool's circuit breaker: 0 closed, 1 half-open, 2 open.",
		}, []string{"pool"}),
	}
	reg.MustRegister(m.requests, m.duration, m.attempts, m.retries, m.shed, m.ejections, m.instances, m.breaker)
	return m
}
