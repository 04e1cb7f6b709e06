package idempotency

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/stratadev/strata/internal/cache"
	"io/fs"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/storage/sqldb"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the goose migrations of the idempotency_keys table,
// for tools that migrate databases themselves.
func Migrations() fs.FS { return sqldb.MigrationsDir(migrationFiles) }

// Migrate creates or upgrades the idempotency_keys table on every physical
// database of r (goose version table goose_idempotency).
func Migrate(ctx context.Context, r *sqldb.Router) error {
	return sqldb.MigrateAll(ctx, r, "idempotency", Migrations())
}

// The states of a row.
const (
	stateInFlight  = "in_flight"
	stateCompleted = "completed"
)

// DefaultSweepBatch is how many rows one DELETE of Sweep removes when it
// is given no limit: small enough not to hold SQLite's one writer long.
const DefaultSweepBatch = 500

// DefaultSweepInterval is how often Run sweeps when given no interval.
// Expired rows are already treated as unused, so the sweep only keeps the
// table small.
const DefaultSweepInterval = 10 * time.Minute

// finishTimeout bounds recording or releasing a key after the handler ran:
// it is done even when the client has gone, which cancels the request.
const finishTimeout = 5 * time.Second

// maxClaimAttempts bounds the claim loop of a key that other requests keep
// changing under it; past it the request is told the key is in use.
const maxClaimAttempts = 4

// Store keeps idempotency keys and the responses recorded under them, in
// the table idempotency_keys on the shard of each caller.
type Store struct {
	router  *sqldb.Router
	clock   strata.Clock
	replays *cache.Cache[Replay] // the fast path; nil without
}

// NewStore returns a store over the databases of r, telling the time by
// clock (strata.SystemClock when nil). Migrate must have run.
func NewStore(r *sqldb.Router, clock strata.Clock) *Store {
	if clock == nil {
		clock = strata.SystemClock{}
	}
	return &Store{router: r, clock: clock}
}

// record is one row of idempotency_keys.
type record struct {
	hash        string
	state       string
	token       string
	lockedUntil int64 // unix ms
	expiresAt   int64 // unix ms
	response    response
}

// response is what is replayed: the status, the headers of replayHeaders
// and the body.
type response struct {
	status  int
	headers map[string]string
	body    []byte
}

// expired reports whether r no longer holds its key at nowMs: its time is
// up, unless a request still runs under a live lock (which only a handler
// running longer than the TTL could see).
func (r *record) expired(nowMs int64) bool {
	if r.state == stateInFlight && nowMs < r.lockedUntil {
		return false
	}
	return nowMs >= r.expiresAt
}

// claim is the outcome of a successful claimKey: either the caller holds
// the key (token set) and runs the request, or a completed response is to
// be replayed.
type claim struct {
	token  string
	replay *response
}

// The errors of claimKey that are the client's to see.
var (
	errKeyReused = &strata.Error{Code: strata.CodeUnprocessable, Reason: ReasonKeyReused,
		Message: "this Idempotency-Key was used with a different request; use a new key for a new request"}
	errKeyInUse = &strata.Error{Code: strata.CodeConflict, Reason: ReasonKeyInUse,
		Message: "a request with this Idempotency-Key is in progress; retry later", RetryAfter: time.Second}
)

// claimKey claims (scope, key) on db for a request fingerprinted hash, or
// finds the response to replay. Its errors are errKeyReused, errKeyInUse,
// or storage failures.
//
// One transaction (batched with others on SQLite) inserts the row unless
// the key has one; an existing row is read, locked on PostgreSQL, and
// decided on. The UPDATE that takes a row over (expired, or in flight
// under a lapsed lock) is also conditional on the row's lock_token and
// state being those read, so of concurrent takers exactly one wins, and a
// row completed meanwhile is not taken.
func (s *Store) claimKey(ctx context.Context, db *sqldb.DB, scope, key, hash string, lock, ttl time.Duration) (claim, error) {
	for range maxClaimAttempts {
		var c claim
		retry := false
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			c, retry = claim{}, false
			now := s.clock.Now()
			nowMs := sqldb.Millis(now)
			token := newToken()
			n, err := db.Exec(ctx, tx, "claim idempotency key", `INSERT INTO idempotency_keys
				(scope, key, request_hash, state, lock_token, locked_until, created_at, expires_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (scope, key) DO NOTHING`,
				scope, key, hash, stateInFlight, token, sqldb.Millis(now.Add(lock)), nowMs, sqldb.Millis(now.Add(ttl)))
			if err != nil {
				return err
			}
			if n == 1 {
				c.token = token
				return nil
			}
			rec, err := readRecord(ctx, db, tx, scope, key)
			if errors.Is(err, sql.ErrNoRows) {
				retry = true // released since the INSERT saw it (PostgreSQL): insert again
				return nil
			}
			if err != nil {
				return err
			}
			switch {
			case rec.expired(nowMs):
				// Treated as unused, whatever request it held.
			case rec.hash != hash:
				return errKeyReused
			case rec.state == stateCompleted:
				c.replay = &rec.response
				return nil
			case nowMs < rec.lockedUntil:
				return errKeyInUse
			}
			// Expired, or in flight under a lapsed lock: its claimant died.
			n, err = db.Exec(ctx, tx, "take over idempotency key", `UPDATE idempotency_keys SET
				request_hash = $1, state = $2, lock_token = $3, locked_until = $4,
				response_status = 0, response_headers = '{}', response_body = '', response_body_encoding = '',
				created_at = $5, expires_at = $6
				WHERE scope = $7 AND key = $8 AND lock_token = $9 AND state = $10`,
				hash, stateInFlight, token, sqldb.Millis(now.Add(lock)), nowMs, sqldb.Millis(now.Add(ttl)),
				scope, key, rec.token, rec.state)
			if err != nil {
				return err
			}
			if n == 1 {
				c.token = token
			} else {
				retry = true // another request changed the row first: look again
			}
			return nil
		})
		if err != nil {
			return claim{}, err
		}
		if !retry {
			return c, nil
		}
	}
	return claim{}, errKeyInUse
}

// readRecord reads the row of (scope, key) in tx, locking it on
// PostgreSQL.
func readRecord(ctx context.Context, db *sqldb.DB, tx *sql.Tx, scope, key string) (record, error) {
	var (
		rec                         record
		status                      int64
		headers, body, bodyEncoding string
	)
	err := db.QueryRow(ctx, tx, `SELECT request_hash, state, lock_token, locked_until, expires_at,
		response_status, response_headers, response_body, response_body_encoding
		FROM idempotency_keys WHERE scope = $1 AND key = $2`+db.ForUpdate(), scope, key).Scan(
		&rec.hash, &rec.state, &rec.token, &rec.lockedUntil, &rec.expiresAt,
		&status, &headers, &body, &bodyEncoding)
	if errors.Is(err, sql.ErrNoRows) {
		return rec, err
	}
	if err != nil {
		return rec, fmt.Errorf("read idempotency key: %w", sqldb.Translate(err))
	}
	rec.response.status = int(status)
	if err := json.Unmarshal([]byte(headers), &rec.response.headers); err != nil {
		return rec, fmt.Errorf("read idempotency key: response headers: %w", err)
	}
	switch bodyEncoding {
	case "":
		rec.response.body = []byte(body)
	case "base64":
		if rec.response.body, err = base64.StdEncoding.DecodeString(body); err != nil {
			return rec, fmt.Errorf("read idempotency key: response body: %w", err)
		}
	default:
		return rec, fmt.Errorf("read idempotency key: unknown body encoding %q", bodyEncoding)
	}
	return rec, nil
}

// complete records resp under the claim token and starts its TTL. It
// reports false when the claim was lost (taken over after its lock lapsed),
// leaving the row to its new holder.
func (s *Store) complete(ctx context.Context, db *sqldb.DB, scope, key, token string, resp response, ttl time.Duration) (bool, error) {
	headers, err := json.Marshal(resp.headers)
	if err != nil {
		return false, fmt.Errorf("record idempotent response: %w", err)
	}
	body, encoding := encodeBody(resp.body)
	var n int64
	err = db.Tx(ctx, func(tx *sql.Tx) (err error) {
		n, err = db.Exec(ctx, tx, "record idempotent response", `UPDATE idempotency_keys SET
			state = $1, locked_until = 0, response_status = $2, response_headers = $3,
			response_body = $4, response_body_encoding = $5, expires_at = $6
			WHERE scope = $7 AND key = $8 AND lock_token = $9 AND state = $10`,
			stateCompleted, resp.status, string(headers), body, encoding, sqldb.Millis(s.clock.Now().Add(ttl)),
			scope, key, token, stateInFlight)
		return err
	})
	return n == 1, err
}

// release deletes the row claimed with token, so that a retry with the key
// runs afresh. A row taken over by another request is left alone.
func (s *Store) release(ctx context.Context, db *sqldb.DB, scope, key, token string) error {
	return db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := db.Exec(ctx, tx, "release idempotency key",
			"DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND lock_token = $3 AND state = $4",
			scope, key, token, stateInFlight)
		return err
	})
}

// encodeBody returns b for a TEXT column: as is when it is UTF-8 text
// without NUL (JSON always is), else base64, which every dialect stores.
func encodeBody(b []byte) (string, string) {
	if utf8.Valid(b) && !strings.ContainsRune(string(b), 0) {
		return string(b), ""
	}
	return base64.StdEncoding.EncodeToString(b), "base64"
}

// newToken returns 16 random bytes as hex.
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// Sweep deletes the rows that expired by now on every database, at most
// limit rows per DELETE (DefaultSweepBatch when limit <= 0) until none are
// left, and returns how many it deleted. Rows in flight under a live lock
// are kept. The databases are swept at once; one failing does not stop
// the others, and the errors are joined.
func (s *Store) Sweep(ctx context.Context, now time.Time, limit int) (int, error) {
	if limit <= 0 {
		limit = DefaultSweepBatch
	}
	type result struct {
		n   int
		err error
	}
	results, _ := sqldb.Gather(ctx, s.router.DBs(), func(ctx context.Context, db *sqldb.DB) ([]result, error) {
		n, err := sweepDB(ctx, db, sqldb.Millis(now), limit)
		return []result{{n, err}}, nil // nil: a failing database must not cancel the others
	})
	total := 0
	var errs []error
	for _, r := range results {
		total += r.n
		errs = append(errs, r.err)
	}
	return total, errors.Join(errs...)
}

func sweepDB(ctx context.Context, db *sqldb.DB, nowMs int64, limit int) (int, error) {
	q := fmt.Sprintf(`DELETE FROM idempotency_keys WHERE (scope, key) IN
		(SELECT scope, key FROM idempotency_keys WHERE expires_at <= $1 AND locked_until <= $1 LIMIT %d)`, limit)
	total := 0
	for {
		res, err := db.Writer().ExecContext(ctx, q, nowMs)
		if err != nil {
			return total, fmt.Errorf("sweep idempotency keys on %s: %w", db.Name(), sqldb.Translate(err))
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("sweep idempotency keys on %s: %w", db.Name(), err)
		}
		total += int(n)
		if n < int64(limit) {
			return total, nil
		}
	}
}

// Run sweeps at once and then every interval (DefaultSweepInterval when
// interval <= 0) until ctx ends, then returns nil. Failures are logged and
// the sweep tried again on the next tick. Several instances may run it.
func (s *Store) Run(ctx context.Context, interval time.Duration, logger *slog.Logger) error {
	if interval <= 0 {
		interval = DefaultSweepInterval
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		n, err := s.Sweep(ctx, s.clock.Now(), DefaultSweepBatch)
		switch {
		case err != nil && ctx.Err() == nil:
			logger.Error("sweep idempotency keys", "error", err, "rows", n)
		case n > 0:
			logger.Debug("swept idempotency keys", "rows", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
