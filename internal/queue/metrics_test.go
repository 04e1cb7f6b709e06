package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stratadev/strata/internal/queue"
	"github.com/stretchr/testify/require"
)

// metricValue sums the samples of the named metric whose labels include
// want.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue next
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	r, c, _ := outboxSetup(t)
	reg := prometheus.NewRegistry()
	m := queue.NewMetrics(reg)
	c.Metrics = m
	ctx := context.Background()

	require.NoError(t, c.Publish(ctx, "orders.created", "evt_x", []byte(`{}`)))
	require.NoError(t, c.Publish(ctx, "orders.created", "evt_x", []byte(`{}`)))
	require.Equal(t, 1.0, metricValue(t, reg, "strata_queue_published_total", map[string]string{"stream": "ORDERS", "result": "ok"}))
	require.Equal(t, 1.0, metricValue(t, reg, "strata_queue_published_total", map[string]string{"stream": "ORDERS", "result": "duplicate"}))

	consume(t, c, queue.ConsumerConfig{Durable: "metered", Metrics: m}, func(ctx context.Context, msg queue.Message) error { return nil })
	require.Eventually(t, func() bool {
		return metricValue(t, reg, "strata_queue_consumed_total", map[string]string{"consumer": "metered", "result": "ack"}) == 1
	}, waitFor, tick)

	write(t, r, "orders.created", nil)
	runRelay(t, queue.NewRelay(r, c, queue.RelayConfig{PollInterval: 10 * time.Millisecond, Metrics: m}, nil, nil))
	require.Eventually(t, func() bool {
		return metricValue(t, reg, "strata_outbox_relayed_total", nil) == 1 &&
			metricValue(t, reg, "strata_outbox_pending", nil) == 0
	}, waitFor, tick)

	var nilMetrics *queue.Metrics
	require.NotPanics(t, func() { queue.NewRelay(r, c, queue.RelayConfig{Metrics: nilMetrics}, nil, nil) })
}
