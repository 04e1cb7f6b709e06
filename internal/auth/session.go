package auth

import (
	"context"
	"fmt"
	"time"

	"github.com/stratadev/strata"
)

var errBadCredentials = &strata.Error{Code: strata.CodeUnauthenticated, Reason: "invalid_credentials", Message: "the email or password is wrong"}

// Login checks an email and password and starts a session. An unknown email
// and a wrong password cost the same argon2id work and get the same
// error. Errors: invalid, unauthenticated "invalid_credentials",
// rate_limited "login_throttled" (with RetryAfter).
func (s *Service) Login(ctx context.Context, email, plain string) (*TokenPair, error) {
	email = NormalizeEmail(email)
	if err := strata.Required("email", email, "password", plain); err != nil {
		return nil, err
	}
	if len(plain) > 1024 {
		return nil, strata.Invalid("password", "is too long")
	}
	keys := s.throttleKeys(ctx, email)
	now := s.clock.Now()
	if err := s.beginAttempt(ctx, keys, now); err != nil {
		return nil, err
	}
	pair, err := s.login(ctx, email, plain, now)
	// The throttle's bookkeeping must happen even when the request was
	// cancelled meanwhile.
	bg := context.WithoutCancel(ctx)
	switch {
	case err == nil:
		s.attemptSucceeded(bg, keys)
	case err == errBadCredentials:
		if lerr := s.attemptFailed(bg, keys, email, now); lerr != nil {
			return nil, lerr
		}
	default:
		s.endAttempt(bg, keys) // not a wrong password: it does not count
	}
	return pair, err
}

// login checks the password of a counted attempt and starts a session.
func (s *Service) login(ctx context.Context, email, plain string, now time.Time) (*TokenPair, error) {
	u, err := s.userByEmail(ctx, email)
	if err != nil && strata.ErrorCode(err) != strata.CodeNotFound {
		return nil, err
	}
	if u == nil {
		if err := s.hasher.VerifyDummy(ctx, plain); err != nil {
			return nil, err
		}
		return nil, s.loginFailed(ctx, "", email, now)
	}
	ok, rehash, err := s.hasher.Verify(ctx, u.PasswordHash, plain)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, s.loginFailed(ctx, u.ID, email, now)
	}

	var newHash string
	if rehash {
		if newHash, err = s.hasher.Hash(ctx, plain); err != nil {
			return nil, err
		}
	}
	var pair *TokenPair
	err = s.store.Tx(ctx, userShard(u.ID), func(tx Tx) error {
		if newHash != "" {
			u.PasswordHash, u.UpdatedAt = newHash, now
			if err := tx.UpdateUser(ctx, u); err != nil {
				return err
			}
			if err := s.audit(ctx, tx, u.ID, EventPasswordRehashed, now, nil); err != nil {
				return err
			}
		}
		if err := s.audit(ctx, tx, u.ID, EventLoginSucceeded, now, nil); err != nil {
			return err
		}
		var err error
		pair, err = s.startSession(ctx, tx, u, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return pair, nil
}

func (s *Service) userByEmail(ctx context.Context, email string) (*User, error) {
	id, err := s.store.LookupEmail(ctx, email)
	if err != nil {
		return nil, err
	}
	return s.store.UserByID(ctx, id)
}

// loginFailed audits a failure and returns the one error both causes
// share; Login then locks the keys it exhausted.
func (s *Service) loginFailed(ctx context.Context, user strata.ID, email string, now time.Time) error {
	shard := strata.ShardOfKey(email, s.shards)
	if user != "" {
		shard = userShard(user)
	}
	err := s.store.Tx(context.WithoutCancel(ctx), shard, func(tx Tx) error {
		return s.auditOn(ctx, tx, shard, user, EventLoginFailed, now, map[string]string{"email": email})
	})
	if err != nil {
		// The password was checked and was wrong: that must count against
		// the throttle whether or not the audit row could be written.
		s.log.ErrorContext(ctx, "audit failed login", "error", err)
	}
	return errBadCredentials
}

var (
	errRefreshInvalid = &strata.Error{Code: strata.CodeUnauthenticated, Reason: "refresh_token_invalid", Message: "the refresh token is not valid"}
	errRefreshExpired = &strata.Error{Code: strata.CodeUnauthenticated, Reason: "refresh_token_expired", Message: "the refresh token has expired; log in again"}
	errRefreshRevoked = &strata.Error{Code: strata.CodeUnauthenticated, Reason: "refresh_token_revoked", Message: "the session has ended; log in again"}
	errRefreshReused  = &strata.Error{Code: strata.CodeUnauthenticated, Reason: "refresh_token_reused", Message: "this refresh token was already used; the session has been revoked for safety"}
)

// Refresh rotates a refresh token: it is spent and a new one returned with
// a fresh access token. Presenting a spent token again within the reuse
// grace window (two tabs racing, a lost response) returns the same
// successor again, so a session never forks into two chains; after the
// window, the whole session is revoked. Errors: unauthenticated with
// reasons refresh_token_invalid, _expired, _revoked, _reused.
func (s *Service) Refresh(ctx context.Context, raw string) (*TokenPair, error) {
	if raw == "" {
		return nil, strata.Invalid("refresh_token", "is required")
	}
	id, ok := splitToken(raw, PrefixRefreshToken)
	if !ok || userShard(id) >= s.shards {
		return nil, errRefreshInvalid
	}
	// A transaction that loses the race to spend the token (possible on
	// engines that do not serialize writers) runs again and then sees the
	// token spent, taking the grace path.
	for attempt := 0; ; attempt++ {
		pair, err := s.refresh(ctx, id, raw)
		if strata.ErrorReason(err) == "already_used" && attempt == 0 {
			continue
		}
		return pair, err
	}
}

// maxGraceHops bounds how far a replay inside the grace window follows a
// chain of successors spent by other tabs of the same client.
const maxGraceHops = 4

func (s *Service) refresh(ctx context.Context, id strata.ID, raw string) (*TokenPair, error) {
	now := s.clock.Now()
	var pair *TokenPair
	var outcome error // an error to return after committing the revocation
	var reusedBy strata.ID
	// revoke ends the session of a reused token; the revocation commits and
	// the caller then gets refresh_token_reused.
	revoke := func(tx Tx, rt *RefreshToken, sess *Session) error {
		if err := tx.RevokeSession(ctx, sess.ID, "refresh_token_reused", now); err != nil {
			return err
		}
		outcome, reusedBy = errRefreshReused, rt.UserID
		return s.audit(ctx, tx, rt.UserID, EventRefreshReuse, now, map[string]string{"session_id": string(sess.ID)})
	}
	err := s.store.Tx(ctx, userShard(id), func(tx Tx) error {
		rt, sess, err := s.loadRefresh(ctx, tx, id, raw)
		if err != nil {
			return err
		}
		switch {
		case !sess.RevokedAt.IsZero():
			return errRefreshRevoked
		case !now.Before(rt.ExpiresAt) || !now.Before(sess.ExpiresAt):
			return errRefreshExpired
		case !rt.UsedAt.IsZero() && (now.Sub(rt.UsedAt) > s.cfg.RefreshReuseGrace || len(rt.Successor) == 0):
			return revoke(tx, rt, sess)
		}
		u, err := tx.UserForUpdate(ctx, rt.UserID)
		if err != nil {
			return err
		}
		if !rt.UsedAt.IsZero() {
			successor, err := s.sealer.Open(rt.Successor, []byte(rt.ID))
			if err != nil {
				return strata.Internal(fmt.Errorf("open successor of %s: %w", rt.ID, err))
			}
			// The successor may have been spent in turn by another tab of
			// the same client: follow the chain while each link was spent
			// within its own grace window, and hand out the live end. A link
			// spent longer ago makes this a reuse.
			for hops := 0; ; hops++ {
				next, ok := splitToken(string(successor), PrefixRefreshToken)
				if !ok {
					return strata.Internal(fmt.Errorf("successor of %s is malformed", rt.ID))
				}
				nt, err := tx.RefreshTokenForUpdate(ctx, next)
				if err != nil {
					return err
				}
				if nt.UsedAt.IsZero() {
					break
				}
				if hops == maxGraceHops || now.Sub(nt.UsedAt) > s.cfg.RefreshReuseGrace || len(nt.Successor) == 0 {
					return revoke(tx, rt, sess)
				}
				if successor, err = s.sealer.Open(nt.Successor, []byte(nt.ID)); err != nil {
					return strata.Internal(fmt.Errorf("open successor of %s: %w", nt.ID, err))
				}
			}
			if pair, err = s.accessToken(u, sess.ID); err != nil {
				return err
			}
			pair.RefreshToken = string(successor)
			return s.audit(ctx, tx, u.ID, EventRefreshGrace, now, map[string]string{"session_id": string(sess.ID)})
		}
		if pair, err = s.mint(ctx, tx, u, sess, now); err != nil {
			return err
		}
		sealed, err := s.sealer.Seal([]byte(pair.RefreshToken), []byte(rt.ID))
		if err != nil {
			return strata.Internal(err)
		}
		return tx.MarkRefreshTokenUsed(ctx, rt.ID, now, sealed)
	})
	if err != nil {
		return nil, err
	}
	if outcome != nil {
		s.log.WarnContext(ctx, "refresh token reuse detected; session revoked", "user_id", reusedBy, "ip", clientFrom(ctx).IP)
		return nil, outcome
	}
	return pair, nil
}

// loadRefresh reads a refresh token and its session and checks the secret
// in constant time.
func (s *Service) loadRefresh(ctx context.Context, tx Tx, id strata.ID, raw string) (*RefreshToken, *Session, error) {
	rt, err := tx.RefreshTokenForUpdate(ctx, id)
	if strata.ErrorCode(err) == strata.CodeNotFound {
		return nil, nil, errRefreshInvalid
	}
	if err != nil {
		return nil, nil, err
	}
	if !hashEqual(rt.Hash, hashToken(raw)) {
		return nil, nil, errRefreshInvalid
	}
	sess, err := tx.SessionForUpdate(ctx, rt.SessionID)
	if err != nil {
		return nil, nil, err
	}
	return rt, sess, nil
}

// Logout revokes the session of a refresh token. Logging out of an ended
// session succeeds. Errors: unauthenticated "refresh_token_invalid".
func (s *Service) Logout(ctx context.Context, raw string) error {
	if raw == "" {
		return strata.Invalid("refresh_token", "is required")
	}
	id, ok := splitToken(raw, PrefixRefreshToken)
	if !ok || userShard(id) >= s.shards {
		return errRefreshInvalid
	}
	now := s.clock.Now()
	return s.store.Tx(ctx, userShard(id), func(tx Tx) error {
		rt, sess, err := s.loadRefresh(ctx, tx, id, raw)
		if err != nil {
			return err
		}
		if !sess.RevokedAt.IsZero() {
			return nil
		}
		if err := tx.RevokeSession(ctx, sess.ID, "logout", now); err != nil {
			return err
		}
		return s.audit(ctx, tx, rt.UserID, EventLogout, now, map[string]string{"session_id": string(sess.ID)})
	})
}
