package webhook

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"
)

// Defaults of Config.
const (
	DefaultTimeout = 10 * time.Second
	DefaultMaxAge  = 72 * time.Hour
)

// Config holds the webhook settings. A zero Timeout or MaxAge means its
// default, for tests and embedders; Validate checks settings read from
// flags.
type Config struct {
	// AllowPrivate lets webhooks reach loopback, private, link-local and
	// metadata addresses: for development only (the flag
	// --webhooks-allow-private, STRATA_WEBHOOKS_ALLOW_PRIVATE). Off, such
	// URLs are refused at creation and such addresses at connect time.
	AllowPrivate bool
	// Timeout bounds one delivery attempt, from dialing to the response
	// headers and a bounded read of the body. From 1s to 1m.
	Timeout time.Duration
	// MaxAge is how long a failing delivery is retried after its first
	// attempt before it is marked failed. From 1m to 30 days.
	MaxAge time.Duration
}

// RegisterFlags registers every setting with its default on fs.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&c.AllowPrivate, "webhooks-allow-private", false, "let webhook URLs reach loopback, private, link-local and cloud metadata addresses (development only)")
	fs.DurationVar(&c.Timeout, "webhooks-timeout", DefaultTimeout, "timeout of one webhook delivery attempt")
	fs.DurationVar(&c.MaxAge, "webhooks-max-age", DefaultMaxAge, "how long a failing webhook delivery is retried before it is marked failed")
}

// Validate checks the settings.
func (c *Config) Validate() error {
	if c.Timeout < time.Second || c.Timeout > time.Minute {
		return fmt.Errorf("webhooks-timeout must be between 1s and 1m, got %s", c.Timeout)
	}
	if c.MaxAge < time.Minute || c.MaxAge > 30*24*time.Hour {
		return fmt.Errorf("webhooks-max-age must be between 1m and 720h, got %s", c.MaxAge)
	}
	return nil
}

// withDefaults fills zero settings with their defaults.
func (c Config) withDefaults() Config {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxAge <= 0 {
		c.MaxAge = DefaultMaxAge
	}
	return c
}
