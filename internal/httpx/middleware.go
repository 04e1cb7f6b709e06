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
// (the matched pattern, "" when none), path, status, bytes, duration_us,
// remote_addr and request_id. It also stores logger, with the request_id
// attribute, in the request context for the handlers (see Logger); place it
// inside RequestID.
func AccessLog(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			if st := stateFrom(r.Context()); st != nil {
				st.logger = logger
			} else {
				r = r.WithContext(WithLogger(r.Context(), logger))
			}
			r, route := CaptureRoute(r)
			rw := NewResponseWriter(w)
			// Deferred so that a request whose panic passes through is logged too.
			defer func() {
				level := slog.LevelInfo
				if quietPath(r.URL.Path) {
					level = slog.LevelDebug
				}
				if !logger.Enabled(r.Context(), level) {
					return
				}
				logger.LogAttrs(r.Context(), level, "http request",
					slog.String("request_id", RequestIDFrom(r.Context())),
					slog.String("method", r.Method),
					slog.String("route", route()),
					slog.String("path", r.URL.Path),
					slog.Int("status", rw.Status()),
					slog.Int64("bytes", rw.BytesWritten()),
					slog.Int64("duration_us", time.Since(start).Microseconds()), // an integer: slog encodes floats through encoding/json
					slog.String("remote_addr", r.RemoteAddr),
				)
			}()
			next.ServeHTTP(rw, r)
		})
	}
}

// ClientIP returns the address a per-client limit should key on.
//
// Without trustProxyHeaders it is the host of r.RemoteAddr. With it, it is
// the rightmost entry of X-Forwarded-For (all header lines taken as one
// comma-separated list): the address our trusted proxy saw and appended.
// Entries to its left were sent by the client and are never believed. When
// the header is missing or its rightmost entry is not an address, ClientIP
// falls back to r.RemoteAddr. Set trustProxyHeaders only when exactly one
// proxy that appends to (or overwrites) X-Forwarded-For stands in front.
//
// The address is normalized: ports, brackets and zones are dropped; IPv4 and
// IPv4-mapped IPv6 addresses come back as dotted IPv4 ("192.0.2.1"); other
// IPv6 addresses come back as their /64 prefix in CIDR form
// ("2001:db8:1:2::/64"), because one client usually holds a whole /64 and
// could otherwise rotate through it to dodge per-address limits. A
// RemoteAddr that is not an IP address at all (a Unix socket, say) is
// returned as is, without a port if it had one.
func ClientIP(r *http.Request, trustProxyHeaders bool) string {
	if trustProxyHeaders {
		if addr, ok := rightmostForwardedFor(r.Header.Values("X-Forwarded-For")); ok {
			return clientKey(addr)
		}
	}
	if addr, ok := parseHostAddr(r.RemoteAddr); ok {
		return clientKey(addr)
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// rightmostForwardedFor parses the last entry of the X-Forwarded-For lines.
func rightmostForwardedFor(lines []string) (netip.Addr, bool) {
	if len(lines) == 0 {
		return netip.Addr{}, false
	}
	last := lines[len(lines)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	return parseHostAddr(strings.TrimSpace(last))
}

// parseHostAddr parses an address written as "192.0.2.1", "192.0.2.1:80",
// "2001:db8::1", "[2001:db8::1]" or "[2001:db8::1]:443".
func parseHostAddr(s string) (netip.Addr, bool) {
	if addr, err := netip.ParseAddr(s); err == nil {
		return addr, true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), true
	}
	if inner, ok := strings.CutPrefix(s, "["); ok {
		if inner, ok := strings.CutSuffix(inner, "]"); ok {
			if addr, err := netip.ParseAddr(inner); err == nil && addr.Is6() {
				return addr, true
			}
		}
	}
	return netip.Addr{}, false
}

// clientKey normalizes addr as ClientIP documents.
func clientKey(addr netip.Addr) string {
	addr = addr.WithZone("").Unmap()
	if addr.Is4() {
		return addr.String()
	}
	p, err := addr.Prefix(64)
	if err != nil { // cannot happen: addr is a valid IPv6 address
		return addr.String()
	}
	return p.String()
}
