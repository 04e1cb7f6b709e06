// Package resilience guards the calls a Strata instance makes to what it
// depends on — the database, NATS, blob storage — with one stack of
// failsafe-go policies per dependency, configured in one place
// (cmd/strata) and measured the same way:
//
//   - a timeout per call, so that a hung dependency costs a bounded wait;
//   - retries with jittered exponential back-off, only for calls that are
//     safe to repeat (Idempotent), never past an open breaker;
//   - a circuit breaker, which opens when a large share of recent calls
//     failed and then fails calls at once (503 with Retry-After) instead
//     of letting every request wait out the timeout, until trial calls
//     succeed;
//   - a bulkhead, which bounds the calls in flight to the dependency, so
//     that a slow one cannot absorb every goroutine of the instance.
//
// Only failures of the dependency count against the breaker: an error
// the dependency answered on purpose (not found, invalid, conflict) is a
// success; unavailable, internal and unknown errors and timeouts are
// failures; a caller's own cancellation is neither.
//
// Cross-module HTTP calls have the same policies in package gateway
// (Gateway.Do), where they also balance over instances.
package resilience

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/failsafe-go/failsafe-go/timeout"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"github.com/stratadev/strata"
)

// Config is the policies of one dependency.
type Config struct {
	// Timeout bounds one call (not the streaming of a body); 0: none.
	Timeout time.Duration
	// Retries is how many more times an Idempotent call is tried after a
	// failure, waiting Backoff (jittered) doubling up to 1 s in between.
	Retries int
	Backoff time.Duration
	// MaxConcurrent bounds the calls in flight at once (0: no bound); a
	// call waits up to MaxWait for a slot, then fails as busy.
	MaxConcurrent int
	MaxWait       time.Duration
	// The breaker opens when BreakerFailureRate of the calls in the last
	// BreakerWindow failed, once there were BreakerMinCalls of them, and
	// stays open BreakerDelay before letting trial calls through.
	BreakerFailureRate float64
	BreakerMinCalls    int
	BreakerWindow      time.Duration
	BreakerDelay       time.Duration
	// FailureFunc tells a failure of the dependency from an error it
	// answered on purpose; nil uses Failure. A caller's own cancellation
	// or deadline never counts, whatever it says.
	FailureFunc func(error) bool
}

// RegisterFlags registers dep's settings as --dep-timeout, --dep-retries,
// --dep-max-concurrent and --dep-breaker-delay, with def's values as
// defaults; the other fields keep def's values.
func (c *Config) RegisterFlags(fs *pflag.FlagSet, dep, what string, def Config) {
	*c = def
	fs.DurationVar(&c.Timeout, dep+"-timeout", def.Timeout, "how long one call to "+what+" may take before it fails (0: no limit)")
	fs.IntVar(&c.Retries, dep+"-retries", def.Retries, "how many more times a failed call to "+what+" that is safe to repeat is tried")
	fs.IntVar(&c.MaxConcurrent, dep+"-max-concurrent", def.MaxConcurrent, "calls to "+what+" in flight at once; more wait up to 1s, then fail as busy (0: no limit)")
	fs.DurationVar(&c.BreakerDelay, dep+"-breaker-delay", def.BreakerDelay, "how long the circuit breaker of "+what+" fails calls at once after it opened (half of the calls in 10s failing opens it)")
}

// Validate checks the settings of dep.
func (c Config) Validate(dep string) error {
	switch {
	case c.Timeout < 0:
		return fmt.Errorf("%s-timeout: must not be negative, got %s", dep, c.Timeout)
	case c.Retries < 0 || c.Retries > 10:
		return fmt.Errorf("%s-retries: must be between 0 and 10, got %d", dep, c.Retries)
	case c.MaxConcurrent < 0:
		return fmt.Errorf("%s-max-concurrent: must not be negative, got %d", dep, c.MaxConcurrent)
	case c.BreakerDelay <= 0:
		return fmt.Errorf("%s-breaker-delay: must be positive, got %s", dep, c.BreakerDelay)
	case c.BreakerFailureRate <= 0 || c.BreakerFailureRate > 1:
		return fmt.Errorf("%s: breaker failure rate must be in (0, 1], got %g", dep, c.BreakerFailureRate)
	}
	return nil
}

// Defaults returns a Config with the breaker settings every dependency
// shares and the given timeout, retries and concurrency.
func Defaults(timeout time.Duration, retries, maxConcurrent int) Config {
	return Config{Timeout: timeout, Retries: retries, Backoff: 20 * time.Millisecond, MaxConcurrent: maxConcurrent,
		MaxWait: time.Second, BreakerFailureRate: 0.5, BreakerMinCalls: 20, BreakerWindow: 10 * time.Second,
		BreakerDelay: 5 * time.Second}
}

// Kind says how a call may be guarded.
type Kind int

const (
	// Once is a call that must not be repeated (a write that is not
	// idempotent): timeout, breaker and bulkhead, no retry.
	Once Kind = iota
	// Idempotent is a call that may be repeated: it is also retried.
	Idempotent
	// Stream is a call whose duration is the client's (a body streaming
	// in): the breaker only — neither a timeout nor a bulkhead slot, which
	// a slow client would hold — and fn gets the caller's context.
	Stream
	// Open is a call that opens something read later (a reader): the
	// timeout bounds the opening only, and the context fn gets stays alive
	// after it returns, until the caller's ends; retried like Idempotent.
	Open
)

// Metrics count the guards' decisions, per dependency.
type Metrics struct {
	calls   *prometheus.CounterVec
	retries *prometheus.CounterVec
	breaker *prometheus.GaugeVec
}

// NewMetrics registers the collectors on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_dependency_calls_total",
			Help: "Calls to a dependency, by outcome: ok, failure, timeout, breaker_open (failed at once), busy (bulkhead full), canceled (by the caller).",
		}, []string{"dependency", "outcome"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_dependency_retries_total",
			Help: "Calls to a dependency tried again after a failure.",
		}, []string{"dependency"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_dependency_breaker_state",
			Help: "Each dependency's circuit breaker: 0 closed, 1 half-open, 2 open.",
		}, []string{"dependency"}),
	}
	reg.MustRegister(m.calls, m.retries, m.breaker)
	return m
}

// Guard runs calls to one dependency through its policies. A nil *Guard
// runs calls as they are, so that code guarded in production runs bare in
// unit tests.
type Guard struct {
	name     string
	cfg      Config
	breaker  circuitbreaker.CircuitBreaker[any]
	bulkhead bulkhead.Bulkhead[any]
	retry    retrypolicy.RetryPolicy[any]
	timeout  timeout.Timeout[any]
	calls    map[string]prometheus.Counter
}

// New returns the guard of dependency name. m may be nil.
func New(name string, cfg Config, m *Metrics, log *slog.Logger) *Guard {
	if m == nil {
		m = NewMetrics(prometheus.NewRegistry())
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.BreakerFailureRate <= 0 {
		cfg.BreakerFailureRate = 0.5
	}
	if cfg.FailureFunc == nil {
		cfg.FailureFunc = Failure
	}
	g := &Guard{name: name, cfg: cfg, calls: map[string]prometheus.Counter{}}
	failure := g.failure
	for _, o := range []string{"ok", "failure", "timeout", "breaker_open", "busy", "canceled"} {
		g.calls[o] = m.calls.WithLabelValues(name, o)
	}
	gauge := m.breaker.WithLabelValues(name)
	g.breaker = NewBreaker(cfg.BreakerFailureRate, cfg.BreakerMinCalls, cfg.BreakerWindow, cfg.BreakerDelay, failure,
		gauge, log, "dependency", name)
	if cfg.MaxConcurrent > 0 {
		g.bulkhead = bulkhead.NewBuilder[any](uint(cfg.MaxConcurrent)).WithMaxWaitTime(cfg.MaxWait).Build()
	}
	if cfg.Retries > 0 {
		retries := m.retries.WithLabelValues(name)
		g.retry = retrypolicy.NewBuilder[any]().
			HandleIf(func(_ any, err error) bool { return failure(err) }).
			AbortOnErrors(circuitbreaker.ErrOpen, bulkhead.ErrFull, context.Canceled).
			WithMaxRetries(cfg.Retries).
			WithBackoff(max(cfg.Backoff, time.Millisecond), time.Second).
			WithJitterFactor(0.5).
			ReturnLastFailure().
			OnRetry(func(failsafe.ExecutionEvent[any]) { retries.Inc() }).
			Build()
	}
	if cfg.Timeout > 0 {
		g.timeout = timeout.New[any](cfg.Timeout)
	}
	return g
}

// NewBreaker builds the circuit breaker every Strata dependency and
// gateway pool uses: it opens when failureRate of the calls in window
// failed, once there were minCalls of them; stays open delay (jittered by
// 20 %, so breakers that opened together do not probe together); and
// closes when 3 of 5 trial calls succeed. isFailure classifies the errors
// of calls made through a failsafe executor (nil for a breaker fed by
// RecordSuccess and RecordFailure). gauge follows the state (0 closed,
// 1 half-open, 2 open), and the transitions are logged with attrs.
func NewBreaker(failureRate float64, minCalls int, window, delay time.Duration, isFailure func(error) bool,
	gauge prometheus.Gauge, log *slog.Logger, attrs ...any) circuitbreaker.CircuitBreaker[any] {
	b := circuitbreaker.NewBuilder[any]()
	if isFailure != nil {
		b = b.HandleIf(func(_ any, err error) bool { return isFailure(err) })
	}
	return b.WithFailureRateThreshold(failureRate, uint(max(minCalls, 1)), max(window, time.Second)).
		WithDelay(delay).
		WithJitterFactor(0.2).
		WithSuccessThresholdRatio(3, 5).
		OnStateChanged(func(e circuitbreaker.StateChangedEvent) {
			switch e.NewState {
			case circuitbreaker.OpenState:
				gauge.Set(2)
				log.Warn("circuit breaker open: failing calls at once", append(attrs, "for", delay.String())...)
			case circuitbreaker.HalfOpenState:
				gauge.Set(1)
			case circuitbreaker.ClosedState:
				gauge.Set(0)
				log.Info("circuit breaker closed", attrs...)
			}
		}).
		Build()
}

// Do runs fn, a call to the dependency, through the policies kind allows;
// fn must use the context it is given (it carries the timeout). Errors
// of the guard itself are strata errors with code unavailable and reason
// dependency_unavailable (breaker open, with RetryAfter), dependency_busy
// or dependency_timeout; fn's own errors come back as they were.
func (g *Guard) Do(ctx context.Context, kind Kind, fn func(context.Context) error) error {
	if g == nil {
		return fn(ctx)
	}
	policies := make([]failsafe.Policy[any], 0, 4)
	if (kind == Idempotent || kind == Open) && g.retry != nil {
		policies = append(policies, g.retry)
	}
	policies = append(policies, g.breaker)
	if g.bulkhead != nil && kind != Stream {
		policies = append(policies, g.bulkhead)
	}
	if (kind == Once || kind == Idempotent) && g.timeout != nil {
		policies = append(policies, g.timeout)
	}
	err := failsafe.With(policies...).WithContext(ctx).RunWithExecution(func(exec failsafe.Execution[any]) error {
		var err error
		switch kind {
		case Stream:
			err = fn(ctx)
		case Open:
			err = g.open(ctx, fn)
		default:
			err = fn(exec.Context())
		}
		if err != nil && ctx.Err() != nil {
			return callerGone{err} // the caller's doing: neither a failure nor retried
		}
		return err
	})
	var gone callerGone
	if errors.As(err, &gone) {
		g.calls["canceled"].Inc()
		return gone.err
	}
	return g.outcome(ctx, err)
}

// open runs fn under a context of its own that the timeout cancels only
// while fn has not returned: what it opened stays readable afterwards.
func (g *Guard) open(ctx context.Context, fn func(context.Context) error) error {
	if g.cfg.Timeout <= 0 {
		return fn(ctx)
	}
	octx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(g.cfg.Timeout, cancel)
	err := fn(octx)
	if !timer.Stop() {
		if err == nil {
			err = fmt.Errorf("opened after the timeout")
		}
		return fmt.Errorf("%w: %w", timeout.ErrExceeded, err)
	}
	// octx lives on with the caller's context, for the reader.
	context.AfterFunc(ctx, cancel)
	return err
}

// callerGone carries an error that came after the caller's context ended.
type callerGone struct{ err error }

func (c callerGone) Error() string { return c.err.Error() }
func (c callerGone) Unwrap() error { return c.err }

func (g *Guard) outcome(ctx context.Context, err error) error {
	switch {
	case err == nil:
		g.calls["ok"].Inc()
		return nil
	case errors.Is(err, circuitbreaker.ErrOpen):
		g.calls["breaker_open"].Inc()
		e := strata.Errorf(strata.CodeUnavailable, "dependency_unavailable", "%s is unavailable; retry shortly", g.name)
		e.RetryAfter, e.Err = g.breaker.RemainingDelay(), err
		return e
	case errors.Is(err, bulkhead.ErrFull):
		g.calls["busy"].Inc()
		e := strata.Errorf(strata.CodeUnavailable, "dependency_busy", "%s is busy; retry shortly", g.name)
		e.Err = err
		return e
	case errors.Is(err, timeout.ErrExceeded):
		g.calls["timeout"].Inc()
		e := strata.Errorf(strata.CodeUnavailable, "dependency_timeout", "%s did not answer in time; retry shortly", g.name)
		e.Err = fmt.Errorf("%s: no answer within %s: %w", g.name, g.cfg.Timeout, err)
		return e
	case ctx.Err() != nil:
		g.calls["canceled"].Inc()
	case g.failure(err):
		g.calls["failure"].Inc()
	default:
		g.calls["ok"].Inc() // the dependency answered; the answer was an error on purpose
	}
	return err
}

// State reports the breaker's state: closed, half-open or open.
func (g *Guard) State() string {
	if g == nil {
		return "closed"
	}
	switch g.breaker.State() {
	case circuitbreaker.OpenState:
		return "open"
	case circuitbreaker.HalfOpenState:
		return "half-open"
	}
	return "closed"
}

// failure classifies an error of a call: a failure of the dependency
// counts against its breaker and is retried.
func (g *Guard) failure(err error) bool {
	var gone callerGone
	if err == nil || errors.As(err, &gone) {
		return false
	}
	if errors.Is(err, timeout.ErrExceeded) {
		return true
	}
	return g.cfg.FailureFunc(err)
}

// Failure is the default FailureFunc: a strata error is a failure when
// its code is unavailable or internal (an answer on purpose otherwise);
// any other error is a failure, but a cancellation.
func Failure(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var e *strata.Error
	if errors.As(err, &e) {
		return e.Code == strata.CodeUnavailable || e.Code == strata.CodeInternal
	}
	return true
}
