package cache

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stratadev/strata"
)

// Metrics count every cache's hits, misses, coalesced loads, evictions,
// stale serves and errors, per cache and tier.
type Metrics struct {
	requests  *prometheus.CounterVec
	loads     *prometheus.CounterVec
	coalesced *prometheus.CounterVec
	evictions *prometheus.CounterVec
	stale     *prometheus.CounterVec
	errors    *prometheus.CounterVec
}

// NewMetrics registers the collectors on reg; nil registers nowhere.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_cache_requests_total",
			Help: "Cache lookups, by cache and result: hit (per tier: local, redis) or miss (the loader ran).",
		}, []string{"cache", "tier", "result"}),
		loads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_cache_loads_total",
			Help: "Loader runs (database reads) on a miss or a refresh, by cache and result: ok, not_found, error.",
		}, []string{"cache", "result"}),
		coalesced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_cache_coalesced_total",
			Help: "Lookups that waited for another lookup's load of the same key instead of loading.",
		}, []string{"cache"}),
		evictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_cache_evictions_total",
			Help: "Entries evicted from the in-process tier for room.",
		}, []string{"cache"}),
		stale: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_cache_stale_total",
			Help: "Expired values served: while one request refreshed them, or because the loader failed.",
		}, []string{"cache"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_cache_errors_total",
			Help: "Redis tier errors (unreachable, slow, breaker open, undecodable); the lookup went on without it.",
		}, []string{"cache", "tier"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.loads, m.coalesced, m.evictions, m.stale, m.errors)
	}
	return m
}

// cacheMetrics are one cache's counters, looked up once.
type cacheMetrics struct {
	localHit, redisHit, miss                  prometheus.Counter
	loadOK, loadNotFound, loadError           prometheus.Counter
	coalesced, evictions, stale, remoteErrors prometheus.Counter
}

func (m *Metrics) forCache(name string) *cacheMetrics {
	return &cacheMetrics{
		localHit:     m.requests.WithLabelValues(name, "local", "hit"),
		redisHit:     m.requests.WithLabelValues(name, "redis", "hit"),
		miss:         m.requests.WithLabelValues(name, "all", "miss"),
		loadOK:       m.loads.WithLabelValues(name, "ok"),
		loadNotFound: m.loads.WithLabelValues(name, "not_found"),
		loadError:    m.loads.WithLabelValues(name, "error"),
		coalesced:    m.coalesced.WithLabelValues(name),
		evictions:    m.evictions.WithLabelValues(name),
		stale:        m.stale.WithLabelValues(name),
		remoteErrors: m.errors.WithLabelValues(name, "redis"),
	}
}

func (m *cacheMetrics) hit(tier string) {
	if tier == "local" {
		m.localHit.Inc()
		return
	}
	m.redisHit.Inc()
}

func (m *cacheMetrics) load(err error) {
	switch {
	case err == nil:
		m.loadOK.Inc()
	case strata.ErrorCode(err) == strata.CodeNotFound:
		m.loadNotFound.Inc()
	default:
		m.loadError.Inc()
	}
}
