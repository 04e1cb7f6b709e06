// Package authsql stores the auth module's data in SQL databases through the
// shard router: portable SQL that runs on SQLite and PostgreSQL.
package authsql

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/auth"
	"github.com/stratadev/strata/internal/storage/sqldb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the module's goose migrations.
func Migrations() fs.FS { return sqldb.MigrationsDir(migrations) }

// Migrate applies auth's migrations to every database of r.
func Migrate(ctx context.Context, r *sqldb.Router) error {
	return sqldb.MigrateAll(ctx, r, "auth", Migrations())
}

// Store implements auth.Store on a shard router.
type Store struct {
	router *sqldb.Router
	clock  strata.Clock
}

var _ auth.Store = (*Store)(nil)

// New returns a Store over r.
func New(r *sqldb.Router, clock strata.Clock) *Store {
	return &Store{router: r, clock: clock}
}

// Tx runs fn in a transaction on the database of shard.
func (s *Store) Tx(ctx context.Context, shard int, fn func(auth.Tx) error) error {
	db := s.router.Shard(shard)
	return db.Tx(ctx, func(tx *sql.Tx) error {
		return fn(&txStore{tx: tx, db: db, shard: shard, clock: s.clock, forUpdate: db.ForUpdate()})
	})
}

// Ping checks every database.
func (s *Store) Ping(ctx context.Context) error { return s.router.Ping(ctx) }

const userColumns = "id, email, name, roles, email_verified, password_hash, created_at, updated_at"

func scanUser(row interface{ Scan(...any) error }) (*auth.User, error) {
	var u auth.User
	var roles string
	var created, updated int64
	if err := row.Scan(&u.ID, &u.Email, &u.Name, &roles, &u.EmailVerified, &u.PasswordHash, &created, &updated); err != nil {
		return nil, sqldb.Translate(err)
	}
	for r := range strings.SplitSeq(roles, ",") {
		if r != "" {
			u.Roles = append(u.Roles, strata.Role(r))
		}
	}
	u.CreatedAt, u.UpdatedAt = sqldb.FromMillis(created), sqldb.FromMillis(updated)
	return &u, nil
}

func joinRoles(rs []strata.Role) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, ",")
}

// UserByID reads a user from the reader pool of its shard.
func (s *Store) UserByID(ctx context.Context, id strata.ID) (*auth.User, error) {
	db, err := s.router.ForID(id)
	if err != nil {
		return nil, err
	}
	u, err := scanUser(db.Read().QueryRowContext(ctx, "SELECT "+userColumns+" FROM auth_users WHERE id = $1", id))
	if err != nil {
		return nil, fmt.Errorf("read user %s: %w", id, err)
	}
	return u, nil
}

// LookupEmail reads the email index on the email's shard.
func (s *Store) LookupEmail(ctx context.Context, email string) (strata.ID, error) {
	var id strata.ID
	err := s.router.ForKey(email).Read().QueryRowContext(ctx,
		"SELECT user_id FROM auth_email_index WHERE email = $1", email).Scan(&id)
	if err != nil {
		return "", sqldb.Translate(err)
	}
	return id, nil
}

// ListAudit gathers matching events from every database and merges them
// newest first. Each database returns at most Limit rows, so the fan-out
// reads at most Limit × databases rows.
func (s *Store) ListAudit(ctx context.Context, f auth.AuditFilter) ([]auth.AuditEvent, error) {
	var where []string
	var args []any
	if f.UserID != "" {
		args = append(args, f.UserID)
		where = append(where, fmt.Sprintf("user_id = $%d", len(args)))
	}
	if f.Event != "" {
		args = append(args, f.Event)
		where = append(where, fmt.Sprintf("event = $%d", len(args)))
	}
	if f.Before != "" {
		args = append(args, f.Before)
		where = append(where, fmt.Sprintf("id < $%d", len(args)))
	}
	q := "SELECT id, user_id, event, ip, user_agent, detail, created_at FROM auth_audit"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, f.Limit)
	q += fmt.Sprintf(" ORDER BY id DESC LIMIT $%d", len(args))

	dbs := s.router.DBs()
	if f.UserID != "" {
		db, err := s.router.ForID(f.UserID)
		if err != nil {
			return nil, nil
		}
		dbs = []*sqldb.DB{db}
	}
	out, err := sqldb.Gather(ctx, dbs, func(ctx context.Context, db *sqldb.DB) ([]auth.AuditEvent, error) {
		events, err := scanAudit(ctx, db.Read(), q, args...)
		if err != nil {
			return nil, fmt.Errorf("list audit on %s: %w", db.Name(), err)
		}
		return events, nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b auth.AuditEvent) int { return cmp.Compare(b.ID, a.ID) })
	if len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

func scanAudit(ctx context.Context, q sqldb.Querier, query string, args ...any) ([]auth.AuditEvent, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, sqldb.Translate(err)
	}
	defer rows.Close()
	var out []auth.AuditEvent
	for rows.Next() {
		var e auth.AuditEvent
		var detail string
		var created int64
		if err := rows.Scan(&e.ID, &e.UserID, &e.Event, &e.IP, &e.UserAgent, &detail, &created); err != nil {
			return nil, fmt.Errorf("scan audit: %w", err)
		}
		e.CreatedAt = sqldb.FromMillis(created)
		if err := json.Unmarshal([]byte(detail), &e.Detail); err != nil {
			return nil, fmt.Errorf("decode audit detail %s: %w", e.ID, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// SigningKeys reads every key from shard 0's writer pool, newest first, so
// a key created a moment ago by another instance is seen.
func (s *Store) SigningKeys(ctx context.Context) ([]auth.StoredKey, error) {
	rows, err := s.router.Shard(auth.KeysShard).Primary().QueryContext(ctx,
		`SELECT id, generation, public_key, sealed_key, not_before, retire_at, expires_at, created_at
		 FROM auth_signing_keys ORDER BY generation DESC`)
	if err != nil {
		return nil, fmt.Errorf("read signing keys: %w", sqldb.Translate(err))
	}
	defer rows.Close()
	var keys []auth.StoredKey
	for rows.Next() {
		var k auth.StoredKey
		var pub, sealed string
		var nb, ra, ea, ca int64
		if err := rows.Scan(&k.ID, &k.Generation, &pub, &sealed, &nb, &ra, &ea, &ca); err != nil {
			return nil, fmt.Errorf("scan signing key: %w", err)
		}
		if k.Public, err = base64.StdEncoding.DecodeString(pub); err != nil {
			return nil, fmt.Errorf("decode public key %s: %w", k.ID, err)
		}
		if k.Sealed, err = base64.StdEncoding.DecodeString(sealed); err != nil {
			return nil, fmt.Errorf("decode sealed key %s: %w", k.ID, err)
		}
		k.NotBefore, k.RetireAt, k.ExpiresAt, k.CreatedAt = sqldb.FromMillis(nb), sqldb.FromMillis(ra), sqldb.FromMillis(ea), sqldb.FromMillis(ca)
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// Throttle reads a throttle row from the reader pool of the key's shard.
func (s *Store) Throttle(ctx context.Context, key string) (auth.Throttle, error) {
	return readThrottle(ctx, s.router.ForKey(key).Reader(), key, "")
}

// OneTimeTokenOwner reads the owner of a one-time token from the reader
// pool of its shard.
func (s *Store) OneTimeTokenOwner(ctx context.Context, id strata.ID) (strata.ID, error) {
	db, err := s.router.ForID(id)
	if err != nil {
		return "", err
	}
	var user strata.ID
	err = db.Read().QueryRowContext(ctx, "SELECT user_id FROM auth_one_time_tokens WHERE id = $1", id).Scan(&user)
	if err != nil {
		return "", fmt.Errorf("read one-time token: %w", sqldb.Translate(err))
	}
	return user, nil
}

// purgeBatch bounds the rows one purge transaction deletes, so the purge
// never holds SQLite's single writer for long.
const purgeBatch = 500

// Purge deletes what has outlived its use on every database, in batches of
// purgeBatch rows, one transaction each. Refresh tokens go before their
// sessions.
func (s *Store) Purge(ctx context.Context, now, idleBefore, revokedBefore time.Time) (int64, error) {
	steps := []struct {
		table, key, where string
		args              []any
	}{
		{"auth_throttle", "key", "window_start < $1 AND locked_until < $2", []any{sqldb.Millis(idleBefore), sqldb.Millis(now)}},
		{"auth_one_time_tokens", "id", "expires_at < $1", []any{sqldb.Millis(now)}},
		{"auth_refresh_tokens", "id", `expires_at < $1 OR session_id IN
			(SELECT id FROM auth_sessions WHERE expires_at < $1 OR revoked_at < $2)`, []any{sqldb.Millis(now), sqldb.Millis(revokedBefore)}},
		{"auth_sessions", "id", "expires_at < $1 OR revoked_at < $2", []any{sqldb.Millis(now), sqldb.Millis(revokedBefore)}},
	}
	var total int64
	var errs []error
	for _, db := range s.router.DBs() {
		// Each database is purged on its own: one failing leaves the
		// others to be purged.
		if err := func() error {
			for _, st := range steps {
				q := fmt.Sprintf("DELETE FROM %[1]s WHERE %[2]s IN (SELECT %[2]s FROM %[1]s WHERE %[3]s LIMIT %[4]d)",
					st.table, st.key, st.where, purgeBatch)
				for {
					var n int64
					err := db.Tx(ctx, func(tx *sql.Tx) error {
						res, err := tx.ExecContext(ctx, q, st.args...)
						if err != nil {
							return fmt.Errorf("purge %s on %s: %w", st.table, db.Name(), sqldb.Translate(err))
						}
						n, err = res.RowsAffected()
						return err
					})
					if err != nil {
						return err
					}
					total += n
					if n < purgeBatch {
						break
					}
				}
			}
			return nil
		}(); err != nil {
			errs = append(errs, err)
		}
	}
	return total, errors.Join(errs...)
}

func readThrottle(ctx context.Context, q sqldb.Querier, key, suffix string) (auth.Throttle, error) {
	t := auth.Throttle{Key: key}
	var ws, lu int64
	err := q.QueryRowContext(ctx, "SELECT window_start, failures, locked_until, locks FROM auth_throttle WHERE key = $1"+suffix, key).Scan(&ws, &t.Failures, &lu, &t.Locks)
	if err == sql.ErrNoRows {
		return t, nil
	}
	if err != nil {
		return t, fmt.Errorf("read throttle: %w", sqldb.Translate(err))
	}
	t.WindowStart, t.LockedUntil = sqldb.FromMillis(ws), sqldb.FromMillis(lu)
	return t, nil
}
