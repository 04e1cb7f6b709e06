package observability

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stratadev/strata/internal/httpx"
)

// Check reports whether one dependency is usable; nil means ready. It should
// return promptly once ctx is done.
type Check func(ctx context.Context) error

// DefaultCheckTimeout bounds each readiness check.
const DefaultCheckTimeout = 2 * time.Second

// Probes serves the liveness (/healthz) and readiness (/readyz) probes.
type Probes struct {
	mu     sync.Mutex
	checks []namedCheck

	draining atomic.Bool
	logger   atomic.Pointer[slog.Logger]
	// timeout bounds each check; tests shorten it.
	timeout time.Duration
}

type namedCheck struct {
	name  string
	check Check
}

// ProbeStatus is the body of both probes.
type ProbeStatus struct {
	// Status is "ok" (liveness), "ready", "not_ready" or "draining".
	Status string `json:"status"`
	// Checks maps each readiness check to CheckOK or CheckFailing; the
	// reason a check fails is only logged (see SetLogger).
	Checks map[string]string `json:"checks,omitempty"`
}

// The result of a readiness check, in ProbeStatus.Checks.
const (
	CheckOK      = "ok"
	CheckFailing = "failing"
)

// NewProbes returns Probes with no readiness checks, that log nothing until
// SetLogger is called.
func NewProbes() *Probes {
	return &Probes{timeout: DefaultCheckTimeout}
}

// SetLogger sets the logger that failing readiness checks are reported to,
// at warn level, with the keys check and error; nil discards them.
func (p *Probes) SetLogger(l *slog.Logger) {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	p.logger.Store(l)
}

// AddReadinessCheck adds a check that must pass for the process to be ready.
// Names must be unique and non-empty; a bad name is a wiring bug and panics.
func (p *Probes) AddReadinessCheck(name string, c Check) {
	if name == "" || c == nil {
		panic("observability: readiness check needs a name and a func")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, nc := range p.checks {
		if nc.name == name {
			panic(fmt.Sprintf("observability: readiness check %q added twice", name))
		}
	}
	p.checks = append(p.checks, namedCheck{name: name, check: c})
}

// SetDraining makes readiness fail from now on, at once and without running
// the checks. Call it when shutdown begins, so load balancers stop sending
// requests while those in flight finish.
func (p *Probes) SetDraining() { p.draining.Store(true) }

// HealthzHandler answers 200 {"status":"ok"} while the process can serve.
func (p *Probes) HealthzHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		httpx.WriteJSON(w, http.StatusOK, ProbeStatus{Status: "ok"})
	})
}

// ReadyzHandler runs every readiness check concurrently, each bounded by a
// 2 s timeout, and answers 200 {"status":"ready","checks":{name: "ok"}} when
// all pass, else 503 {"status":"not_ready","checks":{name: "ok" or
// "failing"}} with Retry-After: 1. Once draining it answers 503
// {"status":"draining"}. Error texts (file paths, server addresses) never
// reach the response, which is served on the public listener; each failing
// check is logged instead (see SetLogger).
//
// With ?scope=instance it runs no check: it answers whether this instance
// takes requests (200 ready, 503 draining). Load balancers in front of
// many instances (the gateway) ask that, so that a dependency all
// instances share being down — a database, NATS — does not take every
// instance out of rotation at once; requests then fail on their own, fast,
// behind the dependency's circuit breaker.
func (p *Probes) ReadyzHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if p.draining.Load() {
			w.Header().Set("Retry-After", "1")
			httpx.WriteJSON(w, http.StatusServiceUnavailable, ProbeStatus{Status: "draining"})
			return
		}
		if r.URL.Query().Get("scope") == "instance" {
			httpx.WriteJSON(w, http.StatusOK, ProbeStatus{Status: "ready"})
			return
		}
		results, ready := p.runChecks(r.Context())
		if p.draining.Load() { // shutdown began while the checks ran
			w.Header().Set("Retry-After", "1")
			httpx.WriteJSON(w, http.StatusServiceUnavailable, ProbeStatus{Status: "draining"})
			return
		}
		if !ready {
			w.Header().Set("Retry-After", "1")
			httpx.WriteJSON(w, http.StatusServiceUnavailable, ProbeStatus{Status: "not_ready", Checks: results})
			return
		}
		httpx.WriteJSON(w, http.StatusOK, ProbeStatus{Status: "ready", Checks: results})
	})
}

// runChecks runs the checks concurrently and returns each one's result.
func (p *Probes) runChecks(ctx context.Context) (map[string]string, bool) {
	p.mu.Lock()
	checks := append([]namedCheck(nil), p.checks...)
	p.mu.Unlock()

	errs := make([]error, len(checks))
	var wg sync.WaitGroup
	for i, nc := range checks {
		wg.Go(func() { errs[i] = p.runCheck(ctx, nc.check) })
	}
	wg.Wait()

	logger := p.logger.Load()
	if logger == nil { // a Probes not made by NewProbes
		logger = slog.New(slog.DiscardHandler)
	}
	results := make(map[string]string, len(checks))
	ready := true
	for i, nc := range checks {
		results[nc.name] = CheckOK
		if errs[i] != nil {
			results[nc.name] = CheckFailing
			ready = false
			logger.LogAttrs(ctx, slog.LevelWarn, "readiness check failed",
				slog.String("check", nc.name), slog.String("error", errs[i].Error()))
		}
	}
	return results, ready
}

// runCheck runs c with the timeout. A check that ignores its context is
// abandoned when the timeout passes (its goroutine finishes on its own), and
// a check that panics counts as failed rather than crashing the process.
func (p *Probes) runCheck(ctx context.Context, c Check) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- fmt.Errorf("check panicked: %v", v)
			}
		}()
		done <- c(ctx)
	}()
	select {
	case err := <-done:
		if errors.Is(err, context.DeadlineExceeded) && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("timed out after %s", p.timeout)
		}
		return err
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("timed out after %s", p.timeout)
		}
		return ctx.Err()
	}
}
