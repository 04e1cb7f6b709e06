package provider

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"
)

// Defaults of TestConfig.
const (
	DefaultConfirmAfter = 3 * time.Second
	DefaultMaxKeys      = 10_000
	DefaultKeyTTL       = 24 * time.Hour // as long as Stripe keeps a key
)

// TestConfig holds the settings of a TestProvider.
type TestConfig struct {
	// Latency is how long every call takes, 0 by default. A charge is
	// made halfway through it.
	Latency time.Duration
	// Jitter adds a random duration from 0 to Jitter to every call.
	Jitter time.Duration
	// ConfirmAfter is how long after a charge of TestCardAsync it stays
	// pending before it succeeds; DefaultConfirmAfter when zero. Every
	// process that retrieves the charge should use the same value.
	ConfirmAfter time.Duration
	// FailRate is the fraction of calls, from 0 to 1, that fail as if the
	// network were down. A failed charge has either not been made or had
	// its reply lost, in equal parts.
	FailRate float64
	// FailFunc, when set, is called at each step of a call: op is
	// OpCharge, OpChargeReply or OpRetrieve. A non-nil error fails the
	// call as unavailable, with that error as its cause; FailRate then
	// applies to the calls it lets through. It may be called concurrently.
	// Not a setting: tests of callers set it to script failures.
	FailFunc func(op string) error
	// MaxKeys bounds how many idempotency keys are remembered;
	// DefaultMaxKeys when zero. Past it the oldest are forgotten.
	MaxKeys int
	// KeyTTL is how long an idempotency key is remembered; DefaultKeyTTL
	// when zero. A key reused after it is a new charge.
	KeyTTL time.Duration
}

// RegisterFlags registers the settings an operator may change on fs.
func (c *TestConfig) RegisterFlags(fs *pflag.FlagSet) {
	fs.DurationVar(&c.Latency, "payments-test-latency", 0, "how long every call to the built-in test card network takes")
	fs.DurationVar(&c.Jitter, "payments-test-jitter", 0, "a random extra latency, up to this, for every call to the test card network")
	fs.DurationVar(&c.ConfirmAfter, "payments-test-confirm-after", DefaultConfirmAfter, "how long a charge of the asynchronous test card 4000000000000259 stays pending")
	fs.Float64Var(&c.FailRate, "payments-test-fail-rate", 0, "fraction of calls to the test card network that fail as if it were down (0 to 1)")
}

// Validate checks the settings.
func (c *TestConfig) Validate() error {
	switch {
	case c.Latency < 0:
		return fmt.Errorf("payments-test-latency must not be negative, got %s", c.Latency)
	case c.Jitter < 0:
		return fmt.Errorf("payments-test-jitter must not be negative, got %s", c.Jitter)
	case c.ConfirmAfter < 0:
		return fmt.Errorf("payments-test-confirm-after must not be negative, got %s", c.ConfirmAfter)
	case !(c.FailRate >= 0 && c.FailRate <= 1): // also catches NaN
		return fmt.Errorf("payments-test-fail-rate must be between 0 and 1, got %v", c.FailRate)
	case c.MaxKeys < 0:
		return fmt.Errorf("test provider MaxKeys must not be negative, got %d", c.MaxKeys)
	case c.KeyTTL < 0:
		return fmt.Errorf("test provider KeyTTL must not be negative, got %s", c.KeyTTL)
	}
	return nil
}

// withDefaults fills zero settings with their defaults.
func (c TestConfig) withDefaults() TestConfig {
	if c.ConfirmAfter == 0 {
		c.ConfirmAfter = DefaultConfirmAfter
	}
	if c.MaxKeys == 0 {
		c.MaxKeys = DefaultMaxKeys
	}
	if c.KeyTTL == 0 {
		c.KeyTTL = DefaultKeyTTL
	}
	return c
}
