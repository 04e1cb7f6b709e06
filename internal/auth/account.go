package auth

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/queue"
)

// Mail subjects published through the outbox.
const (
	SubjectMailVerifyEmail   = "auth.mail.verify_email"
	SubjectMailPasswordReset = "auth.mail.password_reset"
)

// MailEvent is the payload of an auth.mail.* event. The link carries the
// one-time token itself, so it travels sealed with the master key
// (AES-256-GCM, the event's other fields as additional data): the outbox
// table, the stream and the dead-letter stream never hold it in clear.
type MailEvent struct {
	To         string    `json:"to"`
	Name       string    `json:"name"`
	Kind       Purpose   `json:"kind"`
	SealedLink []byte    `json:"sealed_link"`
	ExpiresAt  time.Time `json:"expires_at"`
	UserID     strata.ID `json:"user_id"`
}

// linkAD binds the sealed link to everything else in the event, so that
// no field can be edited (sending a victim's link to another address, say)
// without the link failing to open.
func (ev *MailEvent) linkAD() []byte {
	return []byte(string(ev.UserID) + "\x00" + string(ev.Kind) + "\x00" + ev.To + "\x00" + ev.Name + "\x00" +
		strconv.FormatInt(ev.ExpiresAt.UnixMilli(), 10))
}

// issueOneTimeToken stores a new token for u and queues the mail carrying
// it, inside tx.
func (s *Service) issueOneTimeToken(ctx context.Context, tx Tx, u *User, p Purpose, ttl time.Duration, now time.Time) error {
	id := strata.NewID(PrefixOneTimeToken, userShard(u.ID), now)
	raw := string(id) + "." + randomSecret()
	ott := &OneTimeToken{ID: id, UserID: u.ID, Purpose: p, Hash: hashToken(raw), CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := tx.InsertOneTimeToken(ctx, ott); err != nil {
		return err
	}
	path, subject := "/verify-email", SubjectMailVerifyEmail
	if p == PurposePasswordReset {
		path, subject = "/reset-password", SubjectMailPasswordReset
	}
	ev := MailEvent{To: u.Email, Name: u.Name, Kind: p, UserID: u.ID, ExpiresAt: ott.ExpiresAt}
	link := s.cfg.PublicURL + path + "?token=" + url.QueryEscape(raw)
	var err error
	if ev.SealedLink, err = s.sealer.Seal([]byte(link), ev.linkAD()); err != nil {
		return strata.Internal(err)
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return strata.Internal(err)
	}
	return tx.Outbox(ctx, queue.Event{Subject: subject, Payload: payload})
}

func badToken(reason, msg string) error {
	e := strata.Invalid("token", msg)
	e.Reason = reason
	return e
}

func (s *Service) parseOneTimeToken(raw string) (strata.ID, error) {
	if raw == "" {
		return "", strata.Invalid("token", "is required")
	}
	id, ok := splitToken(raw, PrefixOneTimeToken)
	if !ok || userShard(id) >= s.shards {
		return "", badToken("one_time_token_invalid", "is not a valid token")
	}
	return id, nil
}

// useOneTimeToken checks raw for purpose p and spends it inside tx,
// returning its user. Errors: invalid "one_time_token_invalid", "one_time_token_expired",
// "one_time_token_used".
func (s *Service) useOneTimeToken(ctx context.Context, tx Tx, raw string, p Purpose, now time.Time) (*User, error) {
	id, err := s.parseOneTimeToken(raw)
	if err != nil {
		return nil, err
	}
	ott, err := tx.OneTimeTokenForUpdate(ctx, id)
	if strata.ErrorCode(err) == strata.CodeNotFound || (err == nil && (!hashEqual(ott.Hash, hashToken(raw)) || ott.Purpose != p)) {
		return nil, badToken("one_time_token_invalid", "is not a valid token")
	}
	if err != nil {
		return nil, err
	}
	if !ott.UsedAt.IsZero() {
		return nil, badToken("one_time_token_used", "has already been used")
	}
	if !now.Before(ott.ExpiresAt) {
		return nil, badToken("one_time_token_expired", "has expired")
	}
	if err := tx.MarkOneTimeTokenUsed(ctx, id, now); err != nil {
		if strata.ErrorCode(err) == strata.CodeConflict {
			return nil, badToken("one_time_token_used", "has already been used")
		}
		return nil, err
	}
	return tx.UserForUpdate(ctx, ott.UserID)
}

// VerifyEmail spends an email-verification token and marks the address
// verified.
func (s *Service) VerifyEmail(ctx context.Context, raw string) (*User, error) {
	id, err := s.parseOneTimeToken(raw)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	var u *User
	err = s.store.Tx(ctx, userShard(id), func(tx Tx) error {
		var err error
		if u, err = s.useOneTimeToken(ctx, tx, raw, PurposeVerifyEmail, now); err != nil {
			return err
		}
		u.EmailVerified, u.UpdatedAt = true, now
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		return s.audit(ctx, tx, u.ID, EventEmailVerified, now, nil)
	})
	if err != nil {
		return nil, err
	}
	s.forgetUser(u.ID)
	return u, nil
}

// forgotPerAddress bounds reset requests per client address per
// login-throttle-window, known address or not.
const forgotPerAddress = 10

// ForgotPassword mails a reset link when email belongs to an account, at
// most once per auth-mail-interval per account. It answers the same
// whether or not the account exists. Errors: invalid, rate_limited
// "too_many_requests" past forgotPerAddress requests from one address.
func (s *Service) ForgotPassword(ctx context.Context, email string) error {
	email = NormalizeEmail(email)
	if err := validateEmail("email", email); err != nil {
		return err
	}
	now := s.clock.Now()
	if ip := clientFrom(ctx).IP; ip != "" {
		key := "forgot:" + ip
		err := s.store.Tx(ctx, strata.ShardOfKey(key, s.shards), func(tx Tx) error {
			t, err := tx.CountAttempt(ctx, key, now, now.Add(-s.cfg.ThrottleWindow))
			if err != nil {
				return err
			}
			if t.Failures > forgotPerAddress {
				return &strata.Error{Code: strata.CodeRateLimited, Reason: "too_many_requests", Message: "too many reset requests; try again later",
					RetryAfter: t.WindowStart.Add(s.cfg.ThrottleWindow).Sub(now)}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	u, err := s.userByEmail(ctx, email)
	if strata.ErrorCode(err) == strata.CodeNotFound {
		return nil
	}
	if err != nil {
		return err
	}
	key := "mail:" + string(u.ID)
	sent := false
	err = s.store.Tx(ctx, userShard(u.ID), func(tx Tx) error {
		t, err := tx.CountAttempt(ctx, key, now, now.Add(-s.cfg.MailInterval))
		if err != nil {
			return err
		}
		if t.Failures > 1 {
			return nil // a link went out a moment ago; don't mail-bomb the user
		}
		if err := s.issueOneTimeToken(ctx, tx, u, PurposePasswordReset, s.cfg.PasswordResetTTL, now); err != nil {
			return err
		}
		sent = true
		return s.audit(ctx, tx, u.ID, EventPasswordResetReq, now, nil)
	})
	if sent {
		s.notify()
	}
	return err
}

// ResetPassword spends a reset token, sets the new password, revokes every
// session of the user and lifts a login lockout. Errors: invalid with field
// token or password.
func (s *Service) ResetPassword(ctx context.Context, raw, plain string) error {
	if err := strata.Required("token", raw, "password", plain); err != nil {
		return err
	}
	id, err := s.parseOneTimeToken(raw)
	if err != nil {
		return err
	}
	// Check the policy (it needs the user's email and name) and hash before
	// the write transaction: argon2id must not hold the writer.
	owner, err := s.store.OneTimeTokenOwner(ctx, id)
	if strata.ErrorCode(err) == strata.CodeNotFound {
		return badToken("one_time_token_invalid", "is not a valid token")
	}
	if err != nil {
		return err
	}
	u, err := s.store.UserByID(ctx, owner)
	if err != nil {
		return err
	}
	if err := s.policy.Check(plain, u.Email, u.Name); err != nil {
		return err
	}
	hash, err := s.hasher.Hash(ctx, plain)
	if err != nil {
		return err
	}
	now := s.clock.Now()
	err = s.store.Tx(ctx, userShard(id), func(tx Tx) error {
		u, err := s.useOneTimeToken(ctx, tx, raw, PurposePasswordReset, now)
		if err != nil {
			return err
		}
		u.PasswordHash, u.UpdatedAt = hash, now
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		n, err := tx.RevokeUserSessions(ctx, u.ID, "password_reset", now)
		if err != nil {
			return err
		}
		return s.audit(ctx, tx, u.ID, EventPasswordReset, now, map[string]string{"sessions_revoked": strconv.Itoa(n)})
	})
	if err != nil {
		return err
	}
	s.forgetUser(u.ID)
	s.clearThrottle(ctx, s.throttleKeys(ctx, u.Email)[0].key) // lift the account's lock
	return nil
}

// SetRoles replaces a user's roles (admins only; enforced by the route).
// The change reaches access tokens at the user's next refresh.
func (s *Service) SetRoles(ctx context.Context, id strata.ID, roles []strata.Role) (*User, error) {
	if len(roles) == 0 {
		return nil, strata.Invalid("roles", "must name at least one role")
	}
	for _, r := range roles {
		if !r.Valid() {
			return nil, strata.Invalid("roles", "must contain only buyer, creator or admin")
		}
	}
	slices.Sort(roles)
	roles = slices.Compact(roles)
	if userShard(id) >= s.shards {
		return nil, &strata.Error{Code: strata.CodeNotFound, Reason: "user_not_found", Message: "no such user"}
	}
	actor := strata.PrincipalFrom(ctx)
	now := s.clock.Now()
	var u *User
	err := s.store.Tx(ctx, userShard(id), func(tx Tx) error {
		var err error
		u, err = tx.UserForUpdate(ctx, id)
		if strata.ErrorCode(err) == strata.CodeNotFound {
			return &strata.Error{Code: strata.CodeNotFound, Reason: "user_not_found", Message: "no such user"}
		}
		if err != nil {
			return err
		}
		detail := map[string]string{"from": joinRoles(u.Roles), "to": joinRoles(roles)}
		if actor != nil {
			detail["by"] = string(actor.UserID)
		}
		u.Roles, u.UpdatedAt = roles, now
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		return s.audit(ctx, tx, u.ID, EventRoleChanged, now, detail)
	})
	if err != nil {
		return nil, err
	}
	s.forgetUser(u.ID)
	return u, nil
}
