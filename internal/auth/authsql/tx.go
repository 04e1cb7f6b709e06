package authsql

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/auth"
	"github.com/stratadev/strata/internal/queue"
	"github.com/stratadev/strata/internal/storage/sqldb"
)

// txStore implements auth.Tx on one transaction of one shard.
type txStore struct {
	tx        *sql.Tx
	shard     int
	clock     strata.Clock
	forUpdate string    // the dialect's row-lock clause for the *ForUpdate reads
	db        *sqldb.DB // runs the statements, prepared once seen
}

var _ auth.Tx = (*txStore)(nil)

func (t *txStore) exec(ctx context.Context, action, q string, args ...any) error {
	_, err := t.db.Exec(ctx, t.tx, action, q, args...)
	return err
}

func (t *txStore) InsertEmailIndex(ctx context.Context, email string, user strata.ID, now time.Time) error {
	return t.exec(ctx, "index email",
		"INSERT INTO auth_email_index (email, shard, user_id, created_at) VALUES ($1, $2, $3, $4)",
		email, t.shard, user, sqldb.Millis(now))
}

func (t *txStore) DeleteEmailIndex(ctx context.Context, email string, user strata.ID) error {
	return t.exec(ctx, "unindex email", "DELETE FROM auth_email_index WHERE email = $1 AND user_id = $2", email, user)
}

func (t *txStore) InsertUser(ctx context.Context, u *auth.User) error {
	shard, _ := u.ID.Shard()
	return t.exec(ctx, "insert user",
		"INSERT INTO auth_users ("+userColumns+", shard) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
		u.ID, u.Email, u.Name, joinRoles(u.Roles), u.EmailVerified, u.PasswordHash, sqldb.Millis(u.CreatedAt), sqldb.Millis(u.UpdatedAt), shard)
}

func (t *txStore) UserForUpdate(ctx context.Context, id strata.ID) (*auth.User, error) {
	u, err := scanUser(t.tx.QueryRowContext(ctx, "SELECT "+userColumns+" FROM auth_users WHERE id = $1"+t.forUpdate, id))
	if err != nil {
		return nil, fmt.Errorf("read user %s: %w", id, err)
	}
	return u, nil
}

func (t *txStore) UpdateUser(ctx context.Context, u *auth.User) error {
	return t.exec(ctx, "update user",
		`UPDATE auth_users SET email = $2, name = $3, roles = $4, email_verified = $5, password_hash = $6, updated_at = $7
		 WHERE id = $1`,
		u.ID, u.Email, u.Name, joinRoles(u.Roles), u.EmailVerified, u.PasswordHash, sqldb.Millis(u.UpdatedAt))
}

func (t *txStore) InsertSession(ctx context.Context, s *auth.Session) error {
	return t.exec(ctx, "insert session",
		`INSERT INTO auth_sessions (id, user_id, created_at, expires_at, user_agent, ip) VALUES ($1, $2, $3, $4, $5, $6)`,
		s.ID, s.UserID, sqldb.Millis(s.CreatedAt), sqldb.Millis(s.ExpiresAt), s.UserAgent, s.IP)
}

func (t *txStore) SessionForUpdate(ctx context.Context, id strata.ID) (*auth.Session, error) {
	var s auth.Session
	var created, expires int64
	var revoked sql.NullInt64
	err := t.tx.QueryRowContext(ctx,
		`SELECT id, user_id, created_at, expires_at, revoked_at, revoke_reason, user_agent, ip FROM auth_sessions WHERE id = $1`+t.forUpdate, id).
		Scan(&s.ID, &s.UserID, &created, &expires, &revoked, &s.RevokeReason, &s.UserAgent, &s.IP)
	if err != nil {
		return nil, fmt.Errorf("read session %s: %w", id, sqldb.Translate(err))
	}
	s.CreatedAt, s.ExpiresAt, s.RevokedAt = sqldb.FromMillis(created), sqldb.FromMillis(expires), sqldb.FromNullMillis(revoked)
	return &s, nil
}

func (t *txStore) RevokeSession(ctx context.Context, id strata.ID, reason string, now time.Time) error {
	return t.exec(ctx, "revoke session",
		"UPDATE auth_sessions SET revoked_at = $2, revoke_reason = $3 WHERE id = $1 AND revoked_at IS NULL", id, sqldb.Millis(now), reason)
}

func (t *txStore) RevokeUserSessions(ctx context.Context, user strata.ID, reason string, now time.Time) (int, error) {
	res, err := t.tx.ExecContext(ctx,
		"UPDATE auth_sessions SET revoked_at = $2, revoke_reason = $3 WHERE user_id = $1 AND revoked_at IS NULL", user, sqldb.Millis(now), reason)
	if err != nil {
		return 0, fmt.Errorf("revoke sessions of %s: %w", user, sqldb.Translate(err))
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func (t *txStore) InsertRefreshToken(ctx context.Context, r *auth.RefreshToken) error {
	return t.exec(ctx, "insert refresh token",
		`INSERT INTO auth_refresh_tokens (id, session_id, user_id, hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		r.ID, r.SessionID, r.UserID, r.Hash, sqldb.Millis(r.CreatedAt), sqldb.Millis(r.ExpiresAt))
}

func (t *txStore) RefreshTokenForUpdate(ctx context.Context, id strata.ID) (*auth.RefreshToken, error) {
	var r auth.RefreshToken
	var created, expires int64
	var used sql.NullInt64
	var successor string
	err := t.tx.QueryRowContext(ctx,
		`SELECT id, session_id, user_id, hash, created_at, expires_at, used_at, successor FROM auth_refresh_tokens WHERE id = $1`+t.forUpdate, id).
		Scan(&r.ID, &r.SessionID, &r.UserID, &r.Hash, &created, &expires, &used, &successor)
	if err != nil {
		return nil, fmt.Errorf("read refresh token: %w", sqldb.Translate(err))
	}
	r.CreatedAt, r.ExpiresAt, r.UsedAt = sqldb.FromMillis(created), sqldb.FromMillis(expires), sqldb.FromNullMillis(used)
	if r.Successor, err = base64.StdEncoding.DecodeString(successor); err != nil {
		return nil, fmt.Errorf("decode successor of %s: %w", id, err)
	}
	return &r, nil
}

func (t *txStore) MarkRefreshTokenUsed(ctx context.Context, id strata.ID, now time.Time, successor []byte) error {
	return t.spend(ctx, "rotate refresh token",
		"UPDATE auth_refresh_tokens SET used_at = $2, successor = $3 WHERE id = $1 AND used_at IS NULL",
		id, sqldb.Millis(now), base64.StdEncoding.EncodeToString(successor))
}

// spend runs a conditional "mark used" update: it is the update, not an
// earlier read, that decides who spends a token, so two transactions
// racing on any dialect cannot both succeed.
func (t *txStore) spend(ctx context.Context, action, q string, args ...any) error {
	res, err := t.tx.ExecContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", action, sqldb.Translate(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", action, err)
	}
	if n == 0 {
		return &strata.Error{Code: strata.CodeConflict, Reason: "already_used", Message: "already used"}
	}
	return nil
}

func (t *txStore) InsertOneTimeToken(ctx context.Context, o *auth.OneTimeToken) error {
	return t.exec(ctx, "insert one-time token",
		`INSERT INTO auth_one_time_tokens (id, user_id, purpose, hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		o.ID, o.UserID, string(o.Purpose), o.Hash, sqldb.Millis(o.CreatedAt), sqldb.Millis(o.ExpiresAt))
}

func (t *txStore) OneTimeTokenForUpdate(ctx context.Context, id strata.ID) (*auth.OneTimeToken, error) {
	var o auth.OneTimeToken
	var purpose string
	var created, expires int64
	var used sql.NullInt64
	err := t.tx.QueryRowContext(ctx,
		`SELECT id, user_id, purpose, hash, created_at, expires_at, used_at FROM auth_one_time_tokens WHERE id = $1`+t.forUpdate, id).
		Scan(&o.ID, &o.UserID, &purpose, &o.Hash, &created, &expires, &used)
	if err != nil {
		return nil, fmt.Errorf("read one-time token: %w", sqldb.Translate(err))
	}
	o.Purpose = auth.Purpose(purpose)
	o.CreatedAt, o.ExpiresAt, o.UsedAt = sqldb.FromMillis(created), sqldb.FromMillis(expires), sqldb.FromNullMillis(used)
	return &o, nil
}

func (t *txStore) MarkOneTimeTokenUsed(ctx context.Context, id strata.ID, now time.Time) error {
	return t.spend(ctx, "use one-time token", "UPDATE auth_one_time_tokens SET used_at = $2 WHERE id = $1 AND used_at IS NULL", id, sqldb.Millis(now))
}

func (t *txStore) InsertAudit(ctx context.Context, e *auth.AuditEvent) error {
	detail, err := json.Marshal(e.Detail)
	if err != nil {
		return fmt.Errorf("encode audit detail: %w", err)
	}
	if e.Detail == nil {
		detail = []byte("{}")
	}
	return t.exec(ctx, "insert audit event",
		`INSERT INTO auth_audit (id, user_id, event, ip, user_agent, detail, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		e.ID, e.UserID, e.Event, e.IP, e.UserAgent, string(detail), sqldb.Millis(e.CreatedAt))
}

func (t *txStore) Outbox(ctx context.Context, ev queue.Event) error {
	_, err := queue.WriteOutbox(ctx, t.tx, t.shard, ev, t.clock.Now())
	return err
}

func (t *txStore) InsertSigningKey(ctx context.Context, k *auth.StoredKey) error {
	return t.exec(ctx, "insert signing key",
		`INSERT INTO auth_signing_keys (id, generation, public_key, sealed_key, not_before, retire_at, expires_at, created_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		k.ID, k.Generation, base64.StdEncoding.EncodeToString(k.Public), base64.StdEncoding.EncodeToString(k.Sealed),
		sqldb.Millis(k.NotBefore), sqldb.Millis(k.RetireAt), sqldb.Millis(k.ExpiresAt), sqldb.Millis(k.CreatedAt))
}

func (t *txStore) ThrottleForUpdate(ctx context.Context, key string) (auth.Throttle, error) {
	if t.forUpdate != "" {
		// FOR UPDATE locks no row that does not exist: concurrent first
		// attempts on a key would all pass the check. An empty row (its
		// window long over) gives them one to queue on; the purge removes
		// it with the idle ones. SQLite's one writer needs none of this.
		if err := t.exec(ctx, "create throttle row",
			`INSERT INTO auth_throttle (key, window_start, failures, locked_until, locks) VALUES ($1, 0, 0, 0, 0)
			 ON CONFLICT (key) DO NOTHING`, key); err != nil {
			return auth.Throttle{}, err
		}
	}
	return readThrottle(ctx, t.tx, key, t.forUpdate)
}

func (t *txStore) CountAttempt(ctx context.Context, key string, now, windowStartBefore time.Time) (auth.Throttle, error) {
	th := auth.Throttle{Key: key}
	var ws, lu int64
	// One statement, so concurrent attempts are all counted on any dialect.
	// SET expressions see the row as it was before the update.
	err := t.tx.QueryRowContext(ctx,
		`INSERT INTO auth_throttle (key, window_start, failures, locked_until, locks) VALUES ($1, $2, 1, 0, 0)
		 ON CONFLICT (key) DO UPDATE SET
		   failures = CASE WHEN auth_throttle.window_start <= $3 THEN 1 ELSE auth_throttle.failures + 1 END,
		   locks = CASE WHEN auth_throttle.window_start <= $3 THEN 0 ELSE auth_throttle.locks END,
		   window_start = CASE WHEN auth_throttle.window_start <= $3 THEN $2 ELSE auth_throttle.window_start END
		 RETURNING window_start, failures, locked_until, locks`,
		key, sqldb.Millis(now), sqldb.Millis(windowStartBefore)).Scan(&ws, &th.Failures, &lu, &th.Locks)
	if err != nil {
		return th, fmt.Errorf("count attempt: %w", sqldb.Translate(err))
	}
	th.WindowStart, th.LockedUntil = sqldb.FromMillis(ws), sqldb.FromMillis(lu)
	return th, nil
}

func (t *txStore) UncountAttempt(ctx context.Context, key string) error {
	return t.exec(ctx, "uncount attempt", "UPDATE auth_throttle SET failures = failures - 1 WHERE key = $1 AND failures > 0", key)
}

func (t *txStore) Lock(ctx context.Context, key string, until time.Time, failures, locks int) error {
	return t.exec(ctx, "lock throttle key", "UPDATE auth_throttle SET locked_until = $2, failures = $3, locks = $4 WHERE key = $1",
		key, sqldb.Millis(until), failures, locks)
}

func (t *txStore) DeleteThrottle(ctx context.Context, key string) error {
	return t.exec(ctx, "delete throttle", "DELETE FROM auth_throttle WHERE key = $1", key)
}
