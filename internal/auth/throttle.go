package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"time"

	"github.com/stratadev/strata"
)

// Login throttling. Failed logins are counted per account (the normalized
// email, hashed) and per client address within a window. Past the limit the
// key is locked for a lockout that doubles with each further failure, up to
// a maximum. The counters live in the database (auth_throttle, on the
// shard of the key) so every instance enforces the same limits; the
// caching issue moves them to a Redis GCRA limiter.
//
// A locked account answers 429 before any password work, so a locked-out
// attacker costs no argon2id time. Per-account locks let an attacker lock a
// known user out for at most login-throttle-lockout-max; the per-address
// limit is higher so shared NATs are not punished for one bad client.

type throttleKeys struct {
	account string
	ip      string // empty when the address is unknown
}

func (s *Service) throttleKeys(ctx context.Context, email string) throttleKeys {
	sum := sha256.Sum256([]byte(email))
	k := throttleKeys{account: "acct:" + hex.EncodeToString(sum[:16])}
	if ip := clientFrom(ctx).IP; ip != "" {
		k.ip = "ip:" + ip
	}
	return k
}

func (k throttleKeys) each(fn func(key string, limit int) error, cfg Config) error {
	if err := fn(k.account, cfg.ThrottleAccountFailures); err != nil {
		return err
	}
	if k.ip != "" {
		return fn(k.ip, cfg.ThrottleIPFailures)
	}
	return nil
}

// checkThrottle answers rate_limited when either key is locked.
func (s *Service) checkThrottle(ctx context.Context, keys throttleKeys) error {
	now := s.clock.Now()
	return keys.each(func(key string, _ int) error {
		t, err := s.store.Throttle(ctx, key)
		if err != nil {
			return err
		}
		if now.Before(t.LockedUntil) {
			wait := t.LockedUntil.Sub(now)
			return &strata.Error{
				Code: strata.CodeRateLimited, Reason: "login_throttled", RetryAfter: wait,
				Message: "too many failed logins; try again later",
			}
		}
		return nil
	}, s.cfg)
}

// recordFailure counts one failure against each key, locking keys past
// their limit.
func (s *Service) recordFailure(ctx context.Context, keys throttleKeys, now time.Time) error {
	return keys.each(func(key string, limit int) error {
		return s.store.Tx(ctx, strata.ShardOfKey(key, s.shards), func(tx Tx) error {
			t, err := tx.ThrottleForUpdate(ctx, key)
			if err != nil {
				return err
			}
			if t.WindowStart.IsZero() || now.Sub(t.WindowStart) > s.cfg.ThrottleWindow {
				t = Throttle{Key: key, WindowStart: now}
			}
			t.Failures++
			if over := t.Failures - limit; over >= 0 {
				t.LockedUntil = now.Add(s.lockout(over))
			}
			return tx.PutThrottle(ctx, t)
		})
	}, s.cfg)
}

// lockout returns the lockout after `over` failures past the limit:
// base × 2^over, capped.
func (s *Service) lockout(over int) time.Duration {
	d := float64(s.cfg.ThrottleLockout) * math.Pow(2, float64(min(over, 30)))
	if d > float64(s.cfg.ThrottleLockoutMax) {
		return s.cfg.ThrottleLockoutMax
	}
	return time.Duration(d)
}

// clearThrottle forgets an account's failures after a successful login.
// Failing to clear is logged, not returned: the login succeeded.
func (s *Service) clearThrottle(ctx context.Context, key string) {
	if t, err := s.store.Throttle(ctx, key); err == nil && t.Failures == 0 {
		return // nothing to clear: spare the writer
	}
	err := s.store.Tx(ctx, strata.ShardOfKey(key, s.shards), func(tx Tx) error { return tx.DeleteThrottle(ctx, key) })
	if err != nil {
		s.log.WarnContext(ctx, "clear login throttle", "error", err)
	}
}
