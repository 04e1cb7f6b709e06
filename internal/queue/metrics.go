package queue

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts what the queue does. A nil *Metrics records nothing, so
// every config may leave it unset.
type Metrics struct {
	publishedTotal  *prometheus.CounterVec
	consumedTotal   *prometheus.CounterVec
	relayedTotal    prometheus.Counter
	outboxPending   prometheus.Gauge
	publishFailures prometheus.Counter
	oldestUnsentAge prometheus.Gauge
}

// NewMetrics creates the queue metrics and registers them with reg (when
// reg is not nil). Registering twice on one registry panics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		publishedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_queue_published_total",
			Help: "Messages published to JetStream, by stream and result (ok, duplicate, error).",
		}, []string{"stream", "result"}),
		consumedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_queue_consumed_total",
			Help: "Messages handled by consumers, by consumer and result (ack, nak, dead_letter).",
		}, []string{"consumer", "result"}),
		relayedTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_outbox_relayed_total",
			Help: "Outbox rows published and marked sent by the relay.",
		}),
		outboxPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_outbox_pending",
			Help: "Unsent outbox rows, over all databases, at the end of the relay's last pass.",
		}),
		publishFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_outbox_publish_failures_total",
			Help: "Failed publishes of outbox rows by the relay; each failed row is retried with back-off.",
		}),
		oldestUnsentAge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_outbox_oldest_unsent_seconds",
			Help: "Age of the oldest unsent outbox row, over all databases, at the end of the relay's last pass; 0 when none. Alert when it keeps growing: a row is stuck.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.publishedTotal, m.consumedTotal, m.relayedTotal, m.outboxPending, m.publishFailures, m.oldestUnsentAge)
	}
	return m
}

func (m *Metrics) published(stream, result string) {
	if m != nil {
		m.publishedTotal.WithLabelValues(stream, result).Inc()
	}
}

func (m *Metrics) consumed(consumer, result string) {
	if m != nil {
		m.consumedTotal.WithLabelValues(consumer, result).Inc()
	}
}

func (m *Metrics) relayed(n int) {
	if m != nil && n > 0 {
		m.relayedTotal.Add(float64(n))
	}
}

func (m *Metrics) pending(n int) {
	if m != nil {
		m.outboxPending.Set(float64(n))
	}
}

func (m *Metrics) publishFailed() {
	if m != nil {
		m.publishFailures.Inc()
	}
}

func (m *Metrics) oldestUnsent(d time.Duration) {
	if m != nil {
		m.oldestUnsentAge.Set(max(d, 0).Seconds())
	}
}
