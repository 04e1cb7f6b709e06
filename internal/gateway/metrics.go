package gateway

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

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
			Help: "Retry decisions, by pool and decision (retried, budget_exhausted, not_retryable, no_instance_left: every instance tried, the last answer stands).",
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

// child is one child of a metric vector (one set of label values), looked
// up on its first use and kept: WithLabelValues hashes the labels and takes
// a lock on every call, too much for every proxied request, and making all
// children up front would publish series that nothing has counted yet.
type child[T any] struct {
	with   func(...string) T // the vector's WithLabelValues
	labels []string
	v      atomic.Pointer[T]
}

func newChild[T any](with func(...string) T, labels ...string) *child[T] {
	return &child[T]{with: with, labels: labels}
}

func (c *child[T]) get() T {
	if v := c.v.Load(); v != nil {
		return *v
	}
	v := c.with(c.labels...) // the same child whoever asks first
	c.v.Store(&v)
	return v
}

// Attempt outcomes, retry decisions and shed reasons: the label values
// the gateway counts by.
const (
	outcomeOK = iota
	outcomeRefused
	outcomeError
	outcome5xx
	numOutcomes
)

var outcomes = [numOutcomes]string{"ok", "refused", "error", "status_5xx"}

const (
	retried = iota
	budgetExhausted
	notRetryable
	noInstanceLeft
	numDecisions
)

var decisions = [numDecisions]string{"retried", "budget_exhausted", "not_retryable", "no_instance_left"}

const (
	shedNoRoute = iota
	shedRateLimited
	shedOverloaded
	shedBreakerOpen
	shedNoInstance
	numShedReasons
)

var shedReasons = [numShedReasons]string{"no_route", "rate_limited", "overloaded", "breaker_open", "no_instance"}

// statusClasses are the values of the status_class label; statusClass
// indexes them.
var statusClasses = [...]string{"canceled", "1xx", "2xx", "3xx", "4xx", "5xx"}

// poolMetrics are the children of one pool.
type poolMetrics struct {
	requests [len(statusClasses)]*child[prometheus.Counter]
	duration *child[prometheus.Observer]
	attempts [numOutcomes]*child[prometheus.Counter]
	retries  [numDecisions]*child[prometheus.Counter]
}

func (m *Metrics) forPool(pool string) *poolMetrics {
	pm := &poolMetrics{duration: newChild(m.duration.WithLabelValues, pool)}
	for i, class := range statusClasses {
		pm.requests[i] = newChild(m.requests.WithLabelValues, pool, class)
	}
	for i, outcome := range outcomes {
		pm.attempts[i] = newChild(m.attempts.WithLabelValues, pool, outcome)
	}
	for i, decision := range decisions {
		pm.retries[i] = newChild(m.retries.WithLabelValues, pool, decision)
	}
	return pm
}

// sheds are the children of the shed counter, by reason.
func (m *Metrics) sheds() (out [numShedReasons]*child[prometheus.Counter]) {
	for i, reason := range shedReasons {
		out[i] = newChild(m.shed.WithLabelValues, reason)
	}
	return out
}
