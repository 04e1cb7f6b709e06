package resilience_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/resilience"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var errDown = errors.New("connection refused")

func fastConfig() resilience.Config {
	c := resilience.Defaults(200*time.Millisecond, 2, 0)
	c.Backoff = time.Millisecond
	c.BreakerMinCalls = 4
	c.BreakerWindow = 2 * time.Second
	c.BreakerDelay = 200 * time.Millisecond
	return c
}

func TestBreakerOpensFailsFastAndCloses(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := resilience.New("blob storage", fastConfig(), resilience.NewMetrics(reg), nil)
	var calls atomic.Int64
	down := func(context.Context) error { calls.Add(1); return errDown }
	for range 4 {
		require.ErrorIs(t, g.Do(t.Context(), resilience.Once, down), errDown)
	}
	require.Equal(t, "open", g.State())

	before := calls.Load()
	start := time.Now()
	err := g.Do(t.Context(), resilience.Idempotent, down)
	assert.Less(t, time.Since(start), 500*time.Millisecond, "an open breaker fails at once (generous: CI machines are busy)")
	assert.Equal(t, before, calls.Load(), "the dependency is not called while open")
	var e *strata.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, strata.CodeUnavailable, e.Code)
	assert.Equal(t, "dependency_unavailable", e.Reason)
	assert.Positive(t, e.RetryAfter)

	// After the delay, trial calls go through; successes close it.
	require.Eventually(t, func() bool {
		_ = g.Do(t.Context(), resilience.Once, func(context.Context) error { return nil })
		return g.State() == "closed"
	}, 2*time.Second, 10*time.Millisecond)
	assert.Equal(t, 4.0, testutil.ToFloat64(mustCounter(t, reg, "strata_dependency_calls_total", "failure")))
	assert.GreaterOrEqual(t, testutil.ToFloat64(mustCounter(t, reg, "strata_dependency_calls_total", "breaker_open")), 1.0)
}

func TestRetriesOnlyIdempotentCallsAndOnlyFailures(t *testing.T) {
	cfg := fastConfig()
	cfg.BreakerMinCalls = 100 // this test is about retries
	g := resilience.New("nats", cfg, nil, nil)
	var n atomic.Int64
	flaky := func(context.Context) error {
		if n.Add(1) < 3 {
			return errDown
		}
		return nil
	}
	require.NoError(t, g.Do(t.Context(), resilience.Idempotent, flaky))
	assert.Equal(t, int64(3), n.Load(), "two retries")

	n.Store(0)
	require.ErrorIs(t, g.Do(t.Context(), resilience.Once, flaky), errDown)
	assert.Equal(t, int64(1), n.Load(), "a call that must not be repeated is tried once")

	n.Store(0)
	notFound := strata.Errorf(strata.CodeNotFound, "not_found", "no such object")
	err := g.Do(t.Context(), resilience.Idempotent, func(context.Context) error { n.Add(1); return notFound })
	require.ErrorIs(t, err, notFound)
	assert.Equal(t, int64(1), n.Load(), "an answer on purpose is not retried")
	strict := resilience.New("nats", fastConfig(), nil, nil) // opens after 4 calls
	for range 10 {
		_ = strict.Do(t.Context(), resilience.Once, func(context.Context) error { return notFound })
	}
	assert.Equal(t, "closed", strict.State(), "answers on purpose never open the breaker")
}

func TestTimeoutBoundsCallsButNotStreams(t *testing.T) {
	cfg := fastConfig()
	cfg.Retries = 0
	g := resilience.New("postgres", cfg, nil, nil)
	hang := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	start := time.Now()
	err := g.Do(t.Context(), resilience.Once, hang)
	assert.Less(t, time.Since(start), time.Second)
	var e *strata.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "dependency_timeout", e.Reason)

	err = g.Do(t.Context(), resilience.Stream, func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(400 * time.Millisecond): // twice the timeout
			return nil
		}
	})
	assert.NoError(t, err, "a stream runs as long as its body does")
}

func TestBulkheadBoundsCallsInFlight(t *testing.T) {
	cfg := fastConfig()
	cfg.MaxConcurrent, cfg.MaxWait, cfg.Timeout = 1, 20*time.Millisecond, 0
	g := resilience.New("blob storage", cfg, nil, nil)
	inside, release := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		done <- g.Do(context.Background(), resilience.Once, func(context.Context) error {
			close(inside)
			<-release
			return nil
		})
	}()
	<-inside
	err := g.Do(t.Context(), resilience.Once, func(context.Context) error { return nil })
	var e *strata.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "dependency_busy", e.Reason)
	require.NoError(t, g.Do(t.Context(), resilience.Stream, func(context.Context) error { return nil }),
		"a stream (a client's upload) takes no slot, so slow clients cannot starve the others")
	close(release)
	require.NoError(t, <-done)
	require.NoError(t, g.Do(t.Context(), resilience.Once, func(context.Context) error { return nil }))
}

func TestOpenTimesOutTheOpeningOnly(t *testing.T) {
	g := resilience.New("blob storage", fastConfig(), nil, nil) // 200 ms
	var opened context.Context
	require.NoError(t, g.Do(t.Context(), resilience.Open, func(ctx context.Context) error { opened = ctx; return nil }))
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, opened.Err(), "what was opened stays readable past the timeout")
	err := g.Do(t.Context(), resilience.Open, func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	var e *strata.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "dependency_timeout", e.Reason)
}

func TestCallerCancellationIsNoFailure(t *testing.T) {
	cfg := fastConfig()
	g := resilience.New("postgres", cfg, nil, nil)
	for range 10 {
		ctx, cancel := context.WithCancel(t.Context())
		err := g.Do(ctx, resilience.Idempotent, func(ctx context.Context) error { cancel(); return errDown })
		require.Error(t, err) // the call's, or the context's
	}
	assert.Equal(t, "closed", g.State(), "clients that went away do not open the breaker")

	sentinel := errors.New("not across databases") // a caller's control flow
	cfg.FailureFunc = func(err error) bool { return errors.Is(err, errDown) }
	g = resilience.New("postgres", cfg, nil, nil)
	for range 10 {
		require.ErrorIs(t, g.Do(t.Context(), resilience.Once, func(context.Context) error { return sentinel }), sentinel)
	}
	assert.Equal(t, "closed", g.State(), "FailureFunc decides what is the dependency's failure")
}

func TestNilGuardRunsBare(t *testing.T) {
	var g *resilience.Guard
	require.ErrorIs(t, g.Do(t.Context(), resilience.Idempotent, func(context.Context) error { return errDown }), errDown)
	assert.Equal(t, "closed", g.State())
}

func mustCounter(t *testing.T, reg *prometheus.Registry, name, outcome string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
					c.Add(m.GetCounter().GetValue())
					return c
				}
			}
		}
	}
	return prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
}
