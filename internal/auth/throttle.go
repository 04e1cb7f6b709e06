package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"time"

	"github.com/stratadev/strata"
)

// Login throttling. Every login attempt is counted — before the password
// is checked, so that concurrent attempts cannot all slip past the limit
// while argon2id runs — per account (the normalized email, hashed) and per
// client address, within a window. The attempt that reaches the limit
// locks the key for a lockout that doubles with each further locking
// attempt, up to a maximum; a locked key answers 429 before any password
// work. A successful login deletes the account's count and takes its own
// attempt back from the address's count, so a busy NAT is limited by its
// failures only.
//
// The counters live in the database (auth_throttle, on the shard of the
// key) so every instance enforces the same limits; the caching issue moves
// them to a Redis GCRA limiter. A per-account lock lets an attacker lock a
// known user out for at most login-throttle-lockout-max; the per-address
// limit is higher so a shared NAT is not punished for one bad client.

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

func errThrottled(wait time.Duration) error {
	return &strata.Error{
		Code: strata.CodeRateLimited, Reason: "login_throttled", RetryAfter: wait,
		Message: "too many failed logins; try again later",
	}
}

// countAttempt counts one attempt against key, or answers rate_limited when
// key is locked. Reaching limit locks it; the first lock is audited.
func (s *Service) countAttempt(ctx context.Context, key string, limit int, email string, now time.Time) error {
	shard := strata.ShardOfKey(key, s.shards)
	return s.store.Tx(ctx, shard, func(tx Tx) error {
		t, err := tx.ThrottleForUpdate(ctx, key)
		if err != nil {
			return err
		}
		if now.Before(t.LockedUntil) {
			return errThrottled(t.LockedUntil.Sub(now))
		}
		t, err = tx.CountAttempt(ctx, key, now, now.Add(-s.cfg.ThrottleWindow))
		if err != nil {
			return err
		}
		if over := t.Failures - limit; over >= 0 {
			if err := tx.SetLock(ctx, key, now.Add(s.lockout(over))); err != nil {
				return err
			}
			if over == 0 {
				return s.auditOn(ctx, tx, shard, "", EventLoginThrottled, now, map[string]string{"email": email, "key": key[:min(len(key), 5)]})
			}
		}
		return nil
	})
}

// checkAndCount counts a login attempt against the account and the
// address, refusing it when either is locked.
func (s *Service) checkAndCount(ctx context.Context, keys throttleKeys, email string, now time.Time) error {
	if err := s.countAttempt(ctx, keys.account, s.cfg.ThrottleAccountFailures, email, now); err != nil {
		return err
	}
	if keys.ip != "" {
		return s.countAttempt(ctx, keys.ip, s.cfg.ThrottleIPFailures, email, now)
	}
	return nil
}

// lockout returns the lockout after `over` attempts past the limit:
// base × 2^over, capped.
func (s *Service) lockout(over int) time.Duration {
	d := float64(s.cfg.ThrottleLockout) * math.Pow(2, float64(min(over, 30)))
	if d > float64(s.cfg.ThrottleLockoutMax) {
		return s.cfg.ThrottleLockoutMax
	}
	return time.Duration(d)
}

// loginSucceeded forgets the account's count and takes the attempt back
// from the address's. Failing is logged, not returned: the login succeeded.
func (s *Service) loginSucceeded(ctx context.Context, keys throttleKeys) {
	s.clearThrottle(ctx, keys.account)
	if keys.ip == "" {
		return
	}
	err := s.store.Tx(ctx, strata.ShardOfKey(keys.ip, s.shards), func(tx Tx) error { return tx.UncountAttempt(ctx, keys.ip) })
	if err != nil {
		s.log.WarnContext(ctx, "uncount login attempt", "error", err)
	}
}

// clearThrottle deletes an account's count and lock.
func (s *Service) clearThrottle(ctx context.Context, key string) {
	err := s.store.Tx(ctx, strata.ShardOfKey(key, s.shards), func(tx Tx) error { return tx.DeleteThrottle(ctx, key) })
	if err != nil {
		s.log.WarnContext(ctx, "clear login throttle", "error", err)
	}
}
