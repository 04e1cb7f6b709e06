package httpx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
)

// HeaderRequestID is the header that carries the request id, in and out.
const HeaderRequestID = "X-Request-Id"

// maxRequestIDLen bounds an incoming request id we are willing to reuse.
const maxRequestIDLen = 128

type requestIDKey struct{}

type loggerKey struct{}

// requestState is what the server middleware keeps about one request, in
// one context value: RequestID creates it, AccessLog and CaptureRoute fill
// it in place, so the request is copied once rather than once per layer.
type requestState struct {
	id     string
	logger *slog.Logger
	route  routeSlot
}

type stateKey struct{}

func stateFrom(ctx context.Context) *requestState {
	st, _ := ctx.Value(stateKey{}).(*requestState)
	return st
}

// RequestID is middleware that gives every request an id: it reuses a sane
// incoming X-Request-Id (1 to 128 printable ASCII characters, no spaces) and
// otherwise generates a random one. The id is set on the response header and
// stored in the request context (see RequestIDFrom).
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st := stateFrom(r.Context()); st != nil { // an outer RequestID ran
			w.Header().Set(HeaderRequestID, st.id)
			next.ServeHTTP(w, r)
			return
		}
		id := r.Header.Get(HeaderRequestID)
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set(HeaderRequestID, id)
		ctx := context.WithValue(r.Context(), stateKey{}, &requestState{id: id})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// RequestIDFrom returns the request id stored in ctx by RequestID, or "".
func RequestIDFrom(ctx context.Context) string {
	if id, ok := ctx.Value(requestIDKey{}).(string); ok {
		return id
	}
	if st := stateFrom(ctx); st != nil {
		return st.id
	}
	return ""
}

// WithRequestID returns a copy of ctx carrying the request id; RequestID does
// this for server requests, outgoing clients and tests may do it themselves.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

// newRequestID returns 16 random bytes as 32 hex digits.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// WithLogger returns a copy of ctx carrying logger, which Logger then
// returns as it is. Derive it from Logger(ctx) to keep request_id (it is
// then not added twice); a logger built otherwise logs without it.
func WithLogger(ctx context.Context, logger *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, logger)
}

// Logger returns the logger for ctx: one stored by WithLogger, as it is;
// else the server's logger that AccessLog recorded, with the request id as
// the attribute request_id (added here, on use, so requests that log
// nothing pay nothing for it); else a logger that discards everything. It
// never returns nil.
func Logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok && l != nil {
		return l
	}
	if st := stateFrom(ctx); st != nil && st.logger != nil {
		return st.logger.With(slog.String("request_id", RequestIDFrom(ctx)))
	}
	return slog.New(slog.DiscardHandler)
}
