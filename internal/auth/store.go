package auth

import (
	"context"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/queue"
)

// Store is the persistence auth needs. Methods return *strata.Error codes
// not_found and conflict as stated; anything else is internal.
type Store interface {
	// Tx runs fn in one transaction on the database of logical shard.
	Tx(ctx context.Context, shard int, fn func(Tx) error) error

	// UserByID reads a user; not_found when absent.
	UserByID(ctx context.Context, id strata.ID) (*User, error)
	// LookupEmail returns the user id indexed for a normalized email;
	// not_found when absent.
	LookupEmail(ctx context.Context, email string) (strata.ID, error)
	// ListAudit returns matching events across every database, newest first.
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
	// SigningKeys returns every stored key, newest generation first.
	SigningKeys(ctx context.Context) ([]StoredKey, error)
	// Throttle reads a throttle row; a zero Throttle when absent.
	Throttle(ctx context.Context, key string) (Throttle, error)
	// OneTimeTokenOwner returns the user a one-time token belongs to;
	// not_found when absent.
	OneTimeTokenOwner(ctx context.Context, id strata.ID) (strata.ID, error)
	// Purge deletes, on every database, throttle rows idle since before
	// idleBefore, one-time and refresh tokens expired before now, and
	// sessions expired before now or revoked before revokedBefore.
	Purge(ctx context.Context, now, idleBefore, revokedBefore time.Time) (int64, error)
	// Ping checks every database.
	Ping(ctx context.Context) error
}

// Tx is the write side of Store, bound to one transaction on one shard.
type Tx interface {
	// InsertEmailIndex claims email for user; conflict when taken.
	InsertEmailIndex(ctx context.Context, email string, user strata.ID, now time.Time) error
	DeleteEmailIndex(ctx context.Context, email string, user strata.ID) error
	// InsertUser creates a user; conflict when the id exists.
	InsertUser(ctx context.Context, u *User) error
	// UserForUpdate reads a user in this transaction; not_found when absent.
	UserForUpdate(ctx context.Context, id strata.ID) (*User, error)
	UpdateUser(ctx context.Context, u *User) error

	InsertSession(ctx context.Context, s *Session) error
	// SessionForUpdate reads a session; not_found when absent.
	SessionForUpdate(ctx context.Context, id strata.ID) (*Session, error)
	RevokeSession(ctx context.Context, id strata.ID, reason string, now time.Time) error
	// RevokeUserSessions revokes every active session of user and reports how many.
	RevokeUserSessions(ctx context.Context, user strata.ID, reason string, now time.Time) (int, error)

	InsertRefreshToken(ctx context.Context, t *RefreshToken) error
	// RefreshTokenForUpdate reads a refresh token; not_found when absent.
	RefreshTokenForUpdate(ctx context.Context, id strata.ID) (*RefreshToken, error)
	// MarkRefreshTokenUsed spends a token, keeping its sealed successor;
	// conflict when it was already spent.
	MarkRefreshTokenUsed(ctx context.Context, id strata.ID, now time.Time, successor []byte) error

	InsertOneTimeToken(ctx context.Context, t *OneTimeToken) error
	// OneTimeTokenForUpdate reads a one-time token; not_found when absent.
	OneTimeTokenForUpdate(ctx context.Context, id strata.ID) (*OneTimeToken, error)
	// MarkOneTimeTokenUsed spends a token; conflict when it was already spent.
	MarkOneTimeTokenUsed(ctx context.Context, id strata.ID, now time.Time) error

	InsertAudit(ctx context.Context, e *AuditEvent) error
	// Outbox writes an event that the relay publishes after commit.
	Outbox(ctx context.Context, ev queue.Event) error

	// InsertSigningKey stores a key; conflict when its generation exists.
	InsertSigningKey(ctx context.Context, k *StoredKey) error

	ThrottleForUpdate(ctx context.Context, key string) (Throttle, error)
	// CountAttempt atomically adds one to key's count, starting a new window
	// (count and locks reset) at now when the current one began at or before
	// windowStartBefore, and returns the row as it now is.
	CountAttempt(ctx context.Context, key string, now, windowStartBefore time.Time) (Throttle, error)
	// UncountAttempt takes one back from key's count (never below zero).
	UncountAttempt(ctx context.Context, key string) error
	// Lock locks key until until, sets its count and its number of locks.
	Lock(ctx context.Context, key string, until time.Time, failures, locks int) error
	DeleteThrottle(ctx context.Context, key string) error
}
