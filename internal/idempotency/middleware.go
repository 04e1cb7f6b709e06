package idempotency

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/httpx"
	"github.com/stratadev/strata/internal/storage/sqldb"
)

// The headers of the mechanism.
const (
	// HeaderKey carries the client's idempotency key.
	HeaderKey = "Idempotency-Key"
	// HeaderReplayed is set to "true" on a replayed response, and never
	// on a fresh one.
	HeaderReplayed = "Idempotent-Replayed"
)

// The problem codes of the mechanism's own answers.
const (
	// ReasonKeyReused (422) answers a key already used with a different
	// request: another method, path, query or body.
	ReasonKeyReused = "idempotency_key_reused"
	// ReasonKeyInUse (409, Retry-After: 1) answers a key whose first
	// request is still running.
	ReasonKeyInUse = "idempotency_key_in_use"
)

// MaxKeyLen is the longest accepted key, as at Stripe.
const MaxKeyLen = 255

// replayHeaders are the response headers recorded and replayed: those that
// describe the response itself. Not replayed: X-Request-Id (the replay has
// its own), Set-Cookie (credentials are never stored), Content-Length,
// Date and hop-by-hop headers (recomputed by net/http), and per-request
// state such as rate-limit headers.
var replayHeaders = []string{
	"Cache-Control",
	"Content-Location",
	"Content-Type",
	"ETag",
	"Last-Modified",
	"Location",
	"Retry-After",
	"X-Content-Type-Options",
}

// Middleware returns middleware that makes the requests it wraps
// idempotent under the Idempotency-Key header, recording in store the first
// final response to each key and replaying it for retries (see the package
// documentation). It must run after authentication: keys are scoped to
// the strata.Principal in the request context. Zero fields of cfg take
// their defaults.
//
// Requests without the header, with a safe method (GET, HEAD, OPTIONS,
// TRACE), or without a principal pass through untouched. The last because
// there is no caller to scope the key to: a key shared by anonymous
// clients could replay one client's response, tokens say, to another.
func Middleware(store *Store, cfg Config) func(http.Handler) http.Handler {
	cfg = cfg.withDefaults()
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			values, ok := r.Header[HeaderKey]
			if !ok || safeMethod(r.Method) {
				next.ServeHTTP(w, r)
				return
			}
			p := strata.PrincipalFrom(r.Context())
			if p == nil {
				next.ServeHTTP(w, r)
				return
			}
			if len(values) != 1 || !validKey(values[0]) {
				httpx.WriteError(w, r, strata.Invalid(HeaderKey, "must be given once, as 1 to 255 printable ASCII characters"))
				return
			}
			body, err := readBody(w, r, cfg.MaxBody)
			if err != nil {
				httpx.WriteError(w, r, err)
				return
			}
			// The handler reads the same bytes, from a request of its own.
			r = r.WithContext(r.Context())
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
			r = r.WithContext(context.WithValue(r.Context(), keyCtx{}, values[0]))
			store.serve(w, r, next, cfg, string(p.UserID), values[0], fingerprint(cfg.HashKey, r, body))
		})
	}
}

// serve runs the request under (scope, key) or replays the response
// recorded for it.
func (s *Store) serve(w http.ResponseWriter, r *http.Request, next http.Handler, cfg Config, scope, key, hash string) {
	ctx := r.Context()
	if s.fastReplay(ctx, w, scope, key, hash) {
		return
	}
	db, err := s.router.ForID(strata.ID(scope))
	if err != nil {
		// Not an ID of this deployment (a principal made by hand): any
		// database will do as long as the scope always maps to it.
		db = s.router.ForKey(scope)
	}
	c, err := s.claimKey(ctx, db, scope, key, hash, cfg.LockTimeout, cfg.TTL)
	if err != nil {
		if !errors.Is(err, errKeyReused) && !errors.Is(err, errKeyInUse) {
			err = unavailable(err)
		}
		httpx.WriteError(w, r, err)
		return
	}
	if c.replay != nil {
		httpx.Logger(ctx).LogAttrs(ctx, slog.LevelDebug, "idempotent replay",
			slog.String("user_id", scope), slog.Int("status", c.replay.status))
		replay(w, c.replay)
		return
	}

	rec := &recorder{ResponseWriter: w, limit: cfg.MaxStoredBody}
	finished := false
	defer func() {
		if finished {
			return
		}
		// The handler panicked: nothing is recorded, and a retry may run.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
		defer cancel()
		if err := s.release(fctx, db, scope, key, c.token); err != nil {
			logFinishError(ctx, "release idempotency key", scope, err)
		}
	}()
	next.ServeHTTP(httpx.NewResponseWriter(rec), r)
	finished = true
	s.finish(ctx, db, rec, cfg, scope, key, hash, c.token)
}

// finish records the handler's response when it is final, and releases the
// key otherwise. It runs even when the client has gone.
func (s *Store) finish(ctx context.Context, db *sqldb.DB, rec *recorder, cfg Config, scope, key, hash, token string) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	resp := rec.response()
	if !recorded(resp.status) {
		if err := s.release(fctx, db, scope, key, token); err != nil {
			logFinishError(ctx, "release idempotency key", scope, err)
		}
		return
	}
	if rec.overflow {
		httpx.Logger(ctx).LogAttrs(ctx, slog.LevelWarn, "idempotent response too large to record",
			slog.String("user_id", scope), slog.Int("status", resp.status), slog.Int64("limit", cfg.MaxStoredBody))
		if err := s.release(fctx, db, scope, key, token); err != nil {
			logFinishError(ctx, "release idempotency key", scope, err)
		}
		return
	}
	ok, err := s.complete(fctx, db, scope, key, token, resp, cfg.TTL)
	if err != nil {
		// The row stays in flight: retries get 409 until the lock lapses,
		// then run again.
		logFinishError(ctx, "record idempotent response", scope, err)
		return
	}
	if !ok {
		httpx.Logger(ctx).LogAttrs(ctx, slog.LevelWarn, "idempotency key taken over before its response was recorded",
			slog.String("user_id", scope), slog.Int("status", resp.status))
		return
	}
	s.remember(fctx, scope, key, hash, resp, cfg.TTL)
}

func logFinishError(ctx context.Context, msg, scope string, err error) {
	httpx.Logger(ctx).LogAttrs(ctx, slog.LevelError, msg, slog.String("user_id", scope), slog.String("error", err.Error()))
}

// unavailable turns a storage failure into 503: without the store the
// request cannot be run safely, so it is not run at all.
func unavailable(err error) error {
	var e *strata.Error
	if errors.As(err, &e) && e.Code == strata.CodeUnavailable {
		return err
	}
	return &strata.Error{Code: strata.CodeUnavailable, Reason: string(strata.CodeUnavailable),
		Message: "idempotency keys cannot be checked right now; retry", RetryAfter: time.Second, Err: err}
}

// recorded reports whether a response with status is final, and so
// recorded and replayed: 2xx, 3xx and 4xx, except the 4xx a corrected or
// later retry may turn around — validation (400, 413, 415, 422),
// credentials (401, 403), timing (408, 429) and conflicts with the current
// state or a concurrent request (409). 5xx are not recorded either, unlike
// Stripe, which replays its 500s: Strata's handlers are transactional, so
// a 5xx means nothing was committed and running the request again is safe
// and more useful than repeating the failure.
func recorded(status int) bool {
	switch {
	case status < 200 || status >= 500:
		return false
	case status < 400:
		return true
	}
	switch status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestTimeout,
		http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType,
		http.StatusUnprocessableEntity, http.StatusTooManyRequests:
		return false
	}
	return true
}

// replay writes a recorded response as it was, marked as a replay.
func replay(w http.ResponseWriter, resp *response) {
	h := w.Header()
	for name, value := range resp.headers {
		h.Set(name, value)
	}
	h.Set(HeaderReplayed, "true")
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
}

// validKey reports whether k is 1 to MaxKeyLen printable ASCII characters
// (0x21-0x7E: no spaces, no controls).
func validKey(k string) bool {
	if k == "" || len(k) > MaxKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// safeMethod reports whether m is safe by HTTP semantics: it changes
// nothing, so there is nothing to make idempotent.
func safeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// readBody reads the whole body of r, up to limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, strata.Errorf(strata.CodeTooLarge, "body_too_large",
				"the request body is larger than %d bytes", limit)
		}
		return nil, &strata.Error{Code: strata.CodeInvalid, Reason: "unreadable_body",
			Message: "the request body could not be read", Err: err}
	}
	return body, nil
}

// keyCtx carries the Idempotency-Key of the request being run.
type keyCtx struct{}

// KeyFrom returns the Idempotency-Key under which the request of ctx runs
// ("" without one). Handlers whose effect must happen once per key even
// when a key's lock is taken over (a crash between their commit and the
// recording of the response) store it under a unique index of their own:
// the top-up does.
func KeyFrom(ctx context.Context) string {
	k, _ := ctx.Value(keyCtx{}).(string)
	return k
}

// WithKey returns ctx carrying key as the request's Idempotency-Key, as
// the middleware does (for callers that run handlers' logic directly).
func WithKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, keyCtx{}, key)
}

// fingerprint is the hex HMAC-SHA256, under the deployment's key, of what
// makes two requests the same: the method, the path (not only the route
// pattern: the same key and body sent to two items are two requests), the
// query and the body. Each part is length-prefixed, so no two different
// requests hash alike by moving bytes from one part to the next. It is
// keyed because bodies can hold secrets (a card number and CVC in a
// top-up): an unkeyed hash of a body whose other fields are known could
// be reversed by guessing, a keyed one cannot without the key.
func fingerprint(key []byte, r *http.Request, body []byte) string {
	h := hmac.New(sha256.New, key)
	writePart(h, []byte(r.Method))
	writePart(h, []byte(r.URL.EscapedPath()))
	writePart(h, []byte(r.URL.RawQuery))
	writePart(h, body)
	return hex.EncodeToString(h.Sum(nil))
}

func writePart(h hash.Hash, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	h.Write(n[:])
	h.Write(b)
}
