package auth

import (
	"context"
	"strings"
	"time"

	"github.com/stratadev/strata"
)

// ID prefixes of the entities auth owns.
const (
	PrefixUser         = "usr"
	PrefixSession      = "ses"
	PrefixRefreshToken = "rtk"
	PrefixOneTimeToken = "ott"
	PrefixAudit        = "aud"
)

// User is an account.
type User struct {
	ID            strata.ID
	Email         string // normalized: trimmed and lowercased
	Name          string
	Roles         []strata.Role
	EmailVerified bool
	PasswordHash  string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Session is a refresh-token family: every refresh token minted from one
// login belongs to it, and revoking it revokes them all.
type Session struct {
	ID           strata.ID
	UserID       strata.ID
	CreatedAt    time.Time
	ExpiresAt    time.Time // absolute: refreshing never extends past it
	RevokedAt    time.Time // zero while active
	RevokeReason string
	UserAgent    string
	IP           string
}

// RefreshToken is one single-use link of a session's chain.
type RefreshToken struct {
	ID        strata.ID
	SessionID strata.ID
	UserID    strata.ID
	Hash      string // hex SHA-256 of the whole token string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero until rotated
	Successor []byte    // the sealed token that replaced it, once rotated
}

// Purpose says what a one-time token is for.
type Purpose string

// One-time token purposes.
const (
	PurposeVerifyEmail   Purpose = "verify_email"
	PurposePasswordReset Purpose = "password_reset"
)

// OneTimeToken is a single-use, expiring token mailed to the user.
type OneTimeToken struct {
	ID        strata.ID
	UserID    strata.ID
	Purpose   Purpose
	Hash      string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time
}

// Audit event names.
const (
	EventSignup            = "signup"
	EventLoginSucceeded    = "login_succeeded"
	EventLoginFailed       = "login_failed"
	EventLoginThrottled    = "login_throttled"
	EventRefreshReuse      = "refresh_reuse_detected"
	EventRefreshGrace      = "refresh_replayed_within_grace"
	EventLogout            = "logout"
	EventPasswordResetReq  = "password_reset_requested"
	EventPasswordReset     = "password_reset"
	EventEmailVerified     = "email_verified"
	EventRoleChanged       = "role_changed"
	EventPasswordRehashed  = "password_rehashed"
	EventUserCreatedByTool = "user_created_by_cli"
)

// AuditEvent is one security-relevant event.
type AuditEvent struct {
	ID        strata.ID         `json:"id"`
	UserID    strata.ID         `json:"user_id,omitempty"`
	Event     string            `json:"event"`
	IP        string            `json:"ip,omitempty"`
	UserAgent string            `json:"user_agent,omitempty"`
	Detail    map[string]string `json:"detail,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
}

// AuditFilter selects audit events, newest first.
type AuditFilter struct {
	UserID strata.ID
	Event  string
	Before strata.ID // cursor: only events with a smaller id
	Limit  int
}

// StoredKey is a signing key as stored: the private half sealed with the
// master key.
type StoredKey struct {
	ID         string
	Generation int64
	Public     []byte
	Sealed     []byte
	NotBefore  time.Time
	RetireAt   time.Time
	ExpiresAt  time.Time
	CreatedAt  time.Time
}

// Throttle is the failure count of one throttled key (an account or a
// client address).
type Throttle struct {
	Key         string
	WindowStart time.Time
	Failures    int // attempts counted in the window
	LockedUntil time.Time
	Locks       int // locks imposed in the window
}

// NormalizeEmail trims and lowercases an address, so lookups are
// case-insensitive.
func NormalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// Client describes the caller of a request, for throttling and audit.
type Client struct {
	IP        string
	UserAgent string
}

type clientKey struct{}

// WithClient returns ctx carrying c.
func WithClient(ctx context.Context, c Client) context.Context {
	return context.WithValue(ctx, clientKey{}, c)
}

func clientFrom(ctx context.Context) Client {
	c, _ := ctx.Value(clientKey{}).(Client)
	return c
}
