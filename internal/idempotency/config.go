package idempotency

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"
)

// Defaults of Config.
const (
	DefaultTTL           = 24 * time.Hour
	DefaultLockTimeout   = time.Minute
	DefaultMaxBody       = 1 << 20   // 1 MiB, the same as httpx.DefaultBodyLimit
	DefaultMaxStoredBody = 256 << 10 // 256 KiB
)

// Config tunes the middleware. Middleware takes a zero field as its
// default; Validate, which checks settings read from flags, requires TTL.
type Config struct {
	// HashKey keys the request fingerprints (HMAC-SHA256), so that a
	// stored fingerprint reveals nothing of a body that held a secret.
	// cmd/strata derives it from the master key; nil uses a fixed key
	// (tests only).
	HashKey []byte
	// TTL is how long a completed response is kept and replayed, from the
	// moment it was recorded; past it the key counts as unused. The flag
	// --idempotency-ttl; at least 1m.
	TTL time.Duration
	// LockTimeout is how long a claimed key stays in flight before another
	// request with the same key may take it over: the claiming instance is
	// then presumed dead. It must exceed the longest a wrapped handler runs
	// (the server's write timeout), or a slow request's retry runs the
	// handler a second time. At least 1s, and below TTL.
	LockTimeout time.Duration
	// MaxBody bounds the request body read to fingerprint it; larger
	// bodies are refused with 413 body_too_large.
	MaxBody int64
	// MaxStoredBody bounds a response body that is recorded for replay; a
	// larger response reaches the client but is not recorded.
	MaxStoredBody int64
}

// RegisterFlags registers the public settings, with their defaults, on fs:
// --idempotency-ttl and --idempotency-lock-timeout. The others are for
// tests and embedders.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.DurationVar(&c.TTL, "idempotency-ttl", DefaultTTL, "how long a response is kept for replay under its Idempotency-Key")
	fs.DurationVar(&c.LockTimeout, "idempotency-lock-timeout", DefaultLockTimeout, "how long a retry with the same Idempotency-Key waits (answered 409) for a request in flight before it takes the key over, the first instance presumed dead; keep it above the longest request takes")
}

// Validate checks the settings. TTL must be set (RegisterFlags sets it);
// the other fields may be zero for their defaults.
func (c *Config) Validate() error {
	if c.TTL < time.Minute {
		return fmt.Errorf("idempotency-ttl must be at least 1m, got %s", c.TTL)
	}
	if c.LockTimeout < 0 || (c.LockTimeout > 0 && c.LockTimeout < time.Second) {
		return fmt.Errorf("idempotency lock timeout must be at least 1s, got %s", c.LockTimeout)
	}
	if c.MaxBody < 0 {
		return fmt.Errorf("idempotency max body must not be negative, got %d", c.MaxBody)
	}
	if c.MaxStoredBody < 0 {
		return fmt.Errorf("idempotency max stored body must not be negative, got %d", c.MaxStoredBody)
	}
	if d := c.withDefaults(); d.TTL <= d.LockTimeout {
		return fmt.Errorf("idempotency-ttl (%s) must exceed the lock timeout (%s)", d.TTL, d.LockTimeout)
	}
	return nil
}

// withDefaults fills zero (or negative) settings with their defaults.
func (c Config) withDefaults() Config {
	if c.TTL <= 0 {
		c.TTL = DefaultTTL
	}
	if c.LockTimeout <= 0 {
		c.LockTimeout = DefaultLockTimeout
	}
	if c.MaxBody <= 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.MaxStoredBody <= 0 {
		c.MaxStoredBody = DefaultMaxStoredBody
	}
	return c
}
