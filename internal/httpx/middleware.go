package httpx

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"
)

// Chain wraps h in the middleware mw; the first listed is the outermost, so
// Chain(h, a, b) serves a(b(h)).
func Chain(h http.Handler, mw ...func(http.Handler) http.Handler) http.Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

// Recover is middleware that turns a panic into a logged error. The panic
// value and stack are logged at error level through Logger(ctx), and the
// client gets a 500 problem+json if nothing was written yet. If the response
// had already started, the connection is aborted instead (by re-panicking
// with http.ErrAbortHandler), so the client sees a broken response rather
// than a truncated one that looks complete. http.ErrAbortHandler itself is
// re-panicked untouched.
func Recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := NewResponseWriter(w)
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { //nolint:errorlint // net/http compares it the same way
				panic(v)
			}
			ctx := r.Context()
			Logger(ctx).LogAttrs(ctx, slog.LevelError, "panic serving request",
				slog.String("panic", fmt.Sprint(v)),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.String("stack", string(debug.Stack())),
			)
			if rw.Written() {
				panic(http.ErrAbortHandler)
			}
			writeProblem(rw, http.StatusInternalServerError, Problem{
				Code:      "internal",
				Detail:    "internal error",
				RequestID: RequestIDFrom(ctx),
			})
		}()
		next.ServeHTTP(rw, r)
	})
}

// quietPath reports whether path is logged at debug level: probes and
// scrapes are frequent and dull.
func quietPath(path string) bool {
	switch path {
	case "/healthz", "/readyz", "/metrics":
		return true
	}
	return false
}

// AccessLog returns middleware that logs one line per request, at info level
// (debug for /healthz, /readyz and /metrics), with the keys method, route
// (the matched pattern, "" when none), path, status, bytes, duration_ms,
// remote_addr and request_id. It also stores logger, with the request_id
// attribute, in the request context for the handlers (see Logger); place it
// inside RequestID.
func AccessLog(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			l := logger
			if id := RequestIDFrom(r.Context()); id != "" {
				l = logger.With(slog.String("request_id", id))
			}
			r = r.WithContext(WithLogger(r.Context(), l))
			r, route := CaptureRoute(r)
			rw := NewResponseWriter(w)
			// Deferred so that a request whose panic passes through is logged too.
			defer func() {
				level := slog.LevelInfo
				if quietPath(r.URL.Path) {
					level = slog.LevelDebug
				}
				l.LogAttrs(r.Context(), level, "http request",
					slog.String("method", r.Method),
					slog.String("route", route()),
					slog.String("path", r.URL.Path),
					slog.Int("status", rw.Status()),
					slog.Int64("bytes", rw.BytesWritten()),
					slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
					slog.String("remote_addr", r.RemoteAddr),
				)
			}()
			next.ServeHTTP(rw, r)
		})
	}
}

// ClientIP returns the address of the client: the host part of r.RemoteAddr
// or, when trustProxyHeaders is set, the first address in X-Forwarded-For if
// it parses as an IP. Trust proxy headers only behind a proxy that overwrites
// X-Forwarded-For, since a client may send any value.
func ClientIP(r *http.Request, trustProxyHeaders bool) string {
	if trustProxyHeaders {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			first, _, _ := strings.Cut(xff, ",")
			if addr, err := netip.ParseAddr(strings.TrimSpace(first)); err == nil {
				return addr.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
