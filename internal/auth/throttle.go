package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"time"

	"github.com/stratadev/strata"
)

// Login throttling, per account (the normalized email, hashed) and per
// client address, within a window:
//
//  1. Both keys are checked first; a locked key refuses the attempt (429)
//     before anything is counted or any password work is done.
//  2. The attempt is then counted against both before the password check,
//     in a transaction that holds the key's row, so a burst of parallel
//     guesses cannot all slip past a lagging counter: attempts in flight
//     hold the budget, and one that finds it spent is refused without
//     being counted (and given back to the other key).
//  3. A wrong password that brings a key to its limit locks it, for a
//     lockout that doubles with each lock in the window, up to a maximum;
//     the count drops to one below the limit, so after the lock one more
//     attempt is allowed. The lock is audited with the kind of key.
//  4. A right password deletes the account's count and takes the attempt
//     back from the address's, so a busy NAT is limited by its failures
//     only; an attempt that ends in any other error (an overloaded hasher,
//     a cancelled request) is taken back from both.
//
// The counters live in the database (auth_throttle, on the shard of the
// key) so every instance enforces the same limits; the caching issue moves
// them to a Redis GCRA limiter. A per-account lock lets an attacker lock a
// known user out for at most login-throttle-lockout-max; the per-address
// limit is higher so a shared NAT is not punished for one bad client.

type throttleKey struct {
	key   string
	kind  string // "account" or "address", for the audit log
	limit int
}

func (s *Service) throttleKeys(ctx context.Context, email string) []throttleKey {
	sum := sha256.Sum256([]byte(email))
	keys := []throttleKey{{key: "acct:" + hex.EncodeToString(sum[:16]), kind: "account", limit: s.cfg.ThrottleAccountFailures}}
	if ip := clientFrom(ctx).IP; ip != "" {
		keys = append(keys, throttleKey{key: "ip:" + ip, kind: "address", limit: s.cfg.ThrottleIPFailures})
	}
	return keys
}

func errThrottled(wait time.Duration) error {
	return &strata.Error{
		Code: strata.CodeRateLimited, Reason: "login_throttled", RetryAfter: wait,
		Message: "too many failed logins; try again later",
	}
}

func (s *Service) keyTx(ctx context.Context, k throttleKey, fn func(Tx) error) error {
	return s.store.Tx(ctx, strata.ShardOfKey(k.key, s.shards), fn)
}

// beginAttempt counts the attempt against every key, or refuses it (and
// gives back what it had counted) when a key is locked or its budget is
// spent — by failures, or by attempts still being checked. A refused
// attempt is never counted, so refusals cannot pile up into a lockout
// nobody earned.
func (s *Service) beginAttempt(ctx context.Context, keys []throttleKey, now time.Time) error {
	for i, k := range keys {
		err := s.keyTx(ctx, k, func(tx Tx) error {
			t, err := tx.ThrottleForUpdate(ctx, k.key)
			if err != nil {
				return err
			}
			if now.Before(t.LockedUntil) {
				return errThrottled(t.LockedUntil.Sub(now))
			}
			windowOver := t.WindowStart.IsZero() || !now.Before(t.WindowStart.Add(s.cfg.ThrottleWindow))
			if !windowOver && t.Failures >= k.limit {
				return errThrottled(time.Second) // attempts in flight hold the budget
			}
			_, err = tx.CountAttempt(ctx, k.key, now, now.Add(-s.cfg.ThrottleWindow))
			return err
		})
		if err != nil {
			s.endAttempt(ctx, keys[:i])
			return err
		}
	}
	return nil
}

// endAttempt takes a counted attempt back from keys. Failing is logged:
// the attempt's own outcome matters more.
func (s *Service) endAttempt(ctx context.Context, keys []throttleKey) {
	for _, k := range keys {
		if err := s.keyTx(ctx, k, func(tx Tx) error { return tx.UncountAttempt(ctx, k.key) }); err != nil {
			s.log.WarnContext(ctx, "uncount login attempt", "error", err)
		}
	}
}

// attemptFailed locks every key the failed attempt brought to its limit.
func (s *Service) attemptFailed(ctx context.Context, keys []throttleKey, email string, now time.Time) error {
	for _, k := range keys {
		shard := strata.ShardOfKey(k.key, s.shards)
		err := s.keyTx(ctx, k, func(tx Tx) error {
			t, err := tx.ThrottleForUpdate(ctx, k.key)
			if err != nil || t.Failures < k.limit || now.Before(t.LockedUntil) {
				return err
			}
			wait := s.lockout(t.Locks)
			if err := tx.Lock(ctx, k.key, now.Add(wait), k.limit-1, t.Locks+1); err != nil {
				return err
			}
			return s.auditOn(ctx, tx, shard, "", EventLoginThrottled, now, map[string]string{
				"email": email, "locked": k.kind, "for": wait.String(),
			})
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// attemptSucceeded forgets the account's count and takes the attempt back
// from the address's.
func (s *Service) attemptSucceeded(ctx context.Context, keys []throttleKey) {
	s.clearThrottle(ctx, keys[0].key)
	s.endAttempt(ctx, keys[1:])
}

// lockout returns the length of the (locks+1)-th lock in a window:
// base × 2^locks, capped.
func (s *Service) lockout(locks int) time.Duration {
	d := float64(s.cfg.ThrottleLockout) * math.Pow(2, float64(min(locks, 30)))
	if d > float64(s.cfg.ThrottleLockoutMax) {
		return s.cfg.ThrottleLockoutMax
	}
	return time.Duration(d)
}

// clearThrottle deletes a key's count and lock.
func (s *Service) clearThrottle(ctx context.Context, key string) {
	err := s.store.Tx(ctx, strata.ShardOfKey(key, s.shards), func(tx Tx) error { return tx.DeleteThrottle(ctx, key) })
	if err != nil {
		s.log.WarnContext(ctx, "clear login throttle", "error", err)
	}
}
