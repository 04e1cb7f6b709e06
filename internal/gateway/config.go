package gateway

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/stratadev/strata/internal/balance"
)

// Config tunes the gateway. New takes a zero field as its default;
// RegisterFlags registers every setting as a --gateway-* flag.
type Config struct {
	// Policies names the balancing policy of each pool (auth, content,
	// payments); a pool not named uses least-request.
	Policies map[string]string
	// HealthInterval is how often each instance's /readyz is checked;
	// HealthTimeout bounds one check. An instance is taken out after
	// UnhealthyAfter failed checks in a row and back in after one passes.
	HealthInterval time.Duration
	HealthTimeout  time.Duration
	UnhealthyAfter int
	// EjectAfter failed requests in a row (transport errors, 5xx) open an
	// instance's breaker: it is ejected for EjectBase, doubling on each
	// ejection in a row up to EjectMax, then gets one trial request.
	EjectAfter int
	EjectBase  time.Duration
	EjectMax   time.Duration
	// MaxAttempts bounds the tries of one request (1 disables retries);
	// retry n waits a random time up to RetryBackoff·2ⁿ⁻¹ first.
	MaxAttempts  int
	RetryBackoff time.Duration
	// RetryBudget is the largest fraction of the requests in flight that
	// may be retries; MinRetries retries may always be in flight.
	RetryBudget float64
	MinRetries  int
	// DialTimeout bounds connecting to an instance; HeaderTimeout bounds
	// waiting for its response headers once the request is sent.
	DialTimeout   time.Duration
	HeaderTimeout time.Duration
	// MaxIdlePerInstance is the keep-alive connections kept open to each
	// instance; it should cover the concurrency the gateway sees. Requests
	// without a body and requests with one keep theirs apart (see
	// upstream.go), each up to this many.
	MaxIdlePerInstance int
	// RateLimit is each client's sustained requests per second (0: no
	// limit) and RateBurst the requests it may send at once.
	RateLimit float64
	RateBurst int
	// A pool's circuit breaker opens when at least BreakerFailureRate of
	// the requests in the last BreakerWindow failed (after their retries),
	// once there were BreakerMinRequests of them; it stays open, answering
	// 503 at once, for BreakerDelay, then lets trial requests through.
	BreakerFailureRate float64
	BreakerMinRequests int
	BreakerWindow      time.Duration
	BreakerDelay       time.Duration
	// AdaptiveLimit sheds load with 503 when the requests in flight exceed
	// a limit learned from latency, between MinLimit and MaxLimit.
	AdaptiveLimit bool
	MinLimit      int
	MaxLimit      int
}

// Defaults of Config.
const (
	DefaultHealthInterval     = 500 * time.Millisecond
	DefaultHealthTimeout      = time.Second
	DefaultUnhealthyAfter     = 2
	DefaultEjectAfter         = 5
	DefaultEjectBase          = time.Second
	DefaultEjectMax           = 30 * time.Second
	DefaultMaxAttempts        = 3
	DefaultRetryBackoff       = 10 * time.Millisecond
	DefaultRetryBudget        = 0.2
	DefaultMinRetries         = 10
	DefaultDialTimeout        = 2 * time.Second
	DefaultHeaderTimeout      = 30 * time.Second
	DefaultMaxIdlePerInstance = 256
	DefaultBreakerFailureRate = 0.5
	DefaultBreakerMinRequests = 20
	DefaultBreakerWindow      = 10 * time.Second
	DefaultBreakerDelay       = 5 * time.Second
	DefaultMinLimit           = 64
	DefaultMaxLimit           = 4096
)

// RegisterFlags registers the settings, with their defaults, on fs.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringToStringVar(&c.Policies, "gateway-policy", nil, "the balancing policy per pool as pool=policy, comma-separated (pools: auth, content, payments; policies: round-robin, least-request, consistent-hash); unnamed pools use least-request")
	fs.DurationVar(&c.HealthInterval, "gateway-health-interval", DefaultHealthInterval, "how often the gateway checks each instance's /readyz")
	fs.DurationVar(&c.HealthTimeout, "gateway-health-timeout", DefaultHealthTimeout, "how long one health check may take")
	fs.IntVar(&c.UnhealthyAfter, "gateway-unhealthy-after", DefaultUnhealthyAfter, "failed health checks in a row that take an instance out of its pool")
	fs.IntVar(&c.EjectAfter, "gateway-eject-after", DefaultEjectAfter, "failed requests in a row (transport errors, 5xx) that open an instance's circuit breaker and eject it")
	fs.DurationVar(&c.EjectBase, "gateway-eject-time", DefaultEjectBase, "how long an instance is first ejected; doubles on each ejection in a row")
	fs.DurationVar(&c.EjectMax, "gateway-eject-max", DefaultEjectMax, "the longest an instance is ejected before a trial request")
	fs.IntVar(&c.MaxAttempts, "gateway-max-attempts", DefaultMaxAttempts, "tries of one request, first included (1 disables retries); only GET, HEAD, OPTIONS and requests with an Idempotency-Key are retried, others only when the connection was refused")
	fs.DurationVar(&c.RetryBackoff, "gateway-retry-backoff", DefaultRetryBackoff, "the longest wait before the first retry (random up to it, doubling per retry)")
	fs.Float64Var(&c.RetryBudget, "gateway-retry-budget", DefaultRetryBudget, "the largest fraction of requests in flight that may be retries")
	fs.IntVar(&c.MinRetries, "gateway-min-retries", DefaultMinRetries, "retries that may always be in flight, whatever the budget")
	fs.DurationVar(&c.DialTimeout, "gateway-dial-timeout", DefaultDialTimeout, "how long connecting to an instance may take")
	fs.DurationVar(&c.HeaderTimeout, "gateway-header-timeout", DefaultHeaderTimeout, "how long an instance may take to start answering a request it received")
	fs.IntVar(&c.MaxIdlePerInstance, "gateway-max-idle-conns", DefaultMaxIdlePerInstance, "keep-alive connections kept open to each instance")
	fs.Float64Var(&c.RateLimit, "gateway-rate-limit", 0, "requests per second each client (by address) may sustain; 0 turns the limit off")
	fs.IntVar(&c.RateBurst, "gateway-rate-burst", 100, "requests a client may send at once above its rate")
	fs.Float64Var(&c.BreakerFailureRate, "gateway-breaker-failure-rate", DefaultBreakerFailureRate, "the fraction of a pool's recent requests failing (after retries) that opens its circuit breaker")
	fs.IntVar(&c.BreakerMinRequests, "gateway-breaker-min-requests", DefaultBreakerMinRequests, "requests a pool must have seen in the window before its breaker may open")
	fs.DurationVar(&c.BreakerWindow, "gateway-breaker-window", DefaultBreakerWindow, "the window of recent requests a pool's breaker judges")
	fs.DurationVar(&c.BreakerDelay, "gateway-breaker-delay", DefaultBreakerDelay, "how long an open breaker answers 503 before it lets trial requests through")
	fs.BoolVar(&c.AdaptiveLimit, "gateway-adaptive-limit", true, "shed load with 503 and Retry-After when requests in flight exceed a limit learned from latency")
	fs.IntVar(&c.MinLimit, "gateway-min-limit", DefaultMinLimit, "the adaptive concurrency limit never goes below this")
	fs.IntVar(&c.MaxLimit, "gateway-max-limit", DefaultMaxLimit, "the adaptive concurrency limit never goes above this")
}

// Validate checks the settings.
func (c *Config) Validate() error {
	for pool, policy := range c.Policies {
		if !slices.Contains(Pools, pool) {
			return fmt.Errorf("gateway-policy: unknown pool %q (pools: %s)", pool, strings.Join(Pools, ", "))
		}
		if _, err := balance.New[*instance](policy); err != nil {
			return fmt.Errorf("gateway-policy: %s: %w", pool, err)
		}
	}
	positive := []struct {
		name string
		v    time.Duration
	}{
		{"gateway-health-interval", c.HealthInterval}, {"gateway-health-timeout", c.HealthTimeout},
		{"gateway-eject-time", c.EjectBase}, {"gateway-eject-max", c.EjectMax},
		{"gateway-dial-timeout", c.DialTimeout}, {"gateway-header-timeout", c.HeaderTimeout},
		{"gateway-breaker-window", c.BreakerWindow}, {"gateway-breaker-delay", c.BreakerDelay},
	}
	for _, p := range positive {
		if p.v < 0 {
			return fmt.Errorf("%s: must not be negative, got %s", p.name, p.v)
		}
	}
	switch {
	case c.RetryBackoff < 0:
		return fmt.Errorf("gateway-retry-backoff: must not be negative, got %s", c.RetryBackoff)
	case c.UnhealthyAfter < 0, c.EjectAfter < 0, c.MaxAttempts < 0, c.MinRetries < 0, c.MaxIdlePerInstance < 0:
		return fmt.Errorf("gateway: counts must not be negative")
	case c.RetryBudget <= 0 || c.RetryBudget > 1:
		return fmt.Errorf("gateway-retry-budget: must be above 0 and at most 1 (--gateway-max-attempts 1 turns retries off), got %g", c.RetryBudget)
	case c.BreakerFailureRate <= 0 || c.BreakerFailureRate > 1:
		return fmt.Errorf("gateway-breaker-failure-rate: must be above 0 and at most 1, got %g", c.BreakerFailureRate)
	case c.BreakerMinRequests < 0:
		return fmt.Errorf("gateway-breaker-min-requests: must not be negative, got %d", c.BreakerMinRequests)
	case c.RateLimit < 0:
		return fmt.Errorf("gateway-rate-limit: must not be negative, got %g", c.RateLimit)
	case c.RateLimit > 0 && c.RateBurst < 1:
		return fmt.Errorf("gateway-rate-burst: must be at least 1 with a rate limit, got %d", c.RateBurst)
	case c.MinLimit < 0 || c.MaxLimit < 0 || (c.MaxLimit > 0 && c.MinLimit > c.MaxLimit):
		return fmt.Errorf("gateway-min-limit (%d) must not exceed gateway-max-limit (%d)", c.MinLimit, c.MaxLimit)
	case c.EjectMax > 0 && c.EjectBase > c.EjectMax:
		return fmt.Errorf("gateway-eject-time (%s) must not exceed gateway-eject-max (%s)", c.EjectBase, c.EjectMax)
	}
	return nil
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt := func(d *int, v int) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.HealthInterval, DefaultHealthInterval)
	def(&c.HealthTimeout, DefaultHealthTimeout)
	def(&c.EjectBase, DefaultEjectBase)
	def(&c.EjectMax, DefaultEjectMax)
	def(&c.RetryBackoff, DefaultRetryBackoff)
	def(&c.DialTimeout, DefaultDialTimeout)
	def(&c.BreakerWindow, DefaultBreakerWindow)
	def(&c.BreakerDelay, DefaultBreakerDelay)
	defInt(&c.BreakerMinRequests, DefaultBreakerMinRequests)
	if c.BreakerFailureRate == 0 {
		c.BreakerFailureRate = DefaultBreakerFailureRate
	}
	def(&c.HeaderTimeout, DefaultHeaderTimeout)
	defInt(&c.UnhealthyAfter, DefaultUnhealthyAfter)
	defInt(&c.EjectAfter, DefaultEjectAfter)
	defInt(&c.MaxAttempts, DefaultMaxAttempts)
	defInt(&c.MaxIdlePerInstance, DefaultMaxIdlePerInstance)
	defInt(&c.MinLimit, DefaultMinLimit)
	defInt(&c.MaxLimit, DefaultMaxLimit)
	if c.RetryBudget == 0 {
		c.RetryBudget = DefaultRetryBudget
	}
	if c.MinRetries == 0 {
		c.MinRetries = DefaultMinRetries
	}
	return c
}
