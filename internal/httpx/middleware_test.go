package httpx_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/stratadev/strata/internal/httpx"
	"github.com/stretchr/testify/require"
)

func TestRecover(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		panic any
	}{
		{name: "string", panic: "boom: secret state"},
		{name: "error", panic: context.DeadlineExceeded},
		{name: "nil", panic: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&logs, nil))
			h := httpx.Chain(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
				panic(tt.panic)
			}), httpx.RequestID, httpx.AccessLog(logger), httpx.Recover)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/boom", nil))

			require.Equal(t, http.StatusInternalServerError, w.Code)
			require.NotContains(t, w.Body.String(), "secret")
			p := decodeProblem(t, w)
			require.Equal(t, "internal", p.Code)
			require.Equal(t, w.Header().Get(httpx.HeaderRequestID), p.RequestID)
			require.Contains(t, logs.String(), `"msg":"panic serving request"`)
			require.Contains(t, logs.String(), `"stack":"goroutine`)
			require.Contains(t, logs.String(), `"request_id":"`+p.RequestID+`"`)
			require.Contains(t, logs.String(), `"status":500`) // the access log line
		})
	}
}

func TestRecoverAfterWriteAborts(t *testing.T) {
	t.Parallel()
	h := httpx.Recover(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("partial"))
		panic("late")
	}))
	require.PanicsWithValue(t, http.ErrAbortHandler, func() {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	})
}

func TestRecoverRepanicsAbort(t *testing.T) {
	t.Parallel()
	h := httpx.Recover(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic(http.ErrAbortHandler)
	}))
	w := httptest.NewRecorder()
	require.PanicsWithValue(t, http.ErrAbortHandler, func() {
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	})
	require.Empty(t, w.Body.String())
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	generated := regexp.MustCompile(`^[0-9a-f]{32}$`)
	tests := []struct {
		name     string
		incoming string
		reuse    bool
	}{
		{name: "reused", incoming: "abc-123_DEF.456", reuse: true},
		{name: "reused at max length", incoming: strings.Repeat("x", 128), reuse: true},
		{name: "missing", incoming: ""},
		{name: "too long", incoming: strings.Repeat("x", 129)},
		{name: "has a space", incoming: "abc 123"},
		{name: "has a control character", incoming: "abc\x01"},
		{name: "not ascii", incoming: "idé"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var seen string
			h := httpx.RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen = httpx.RequestIDFrom(r.Context())
			}))
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.incoming != "" {
				r.Header.Set(httpx.HeaderRequestID, tt.incoming)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			require.Equal(t, seen, w.Header().Get(httpx.HeaderRequestID))
			if tt.reuse {
				require.Equal(t, tt.incoming, seen)
			} else {
				require.Regexp(t, generated, seen)
			}
		})
	}
}

func TestRequestIDsDiffer(t *testing.T) {
	t.Parallel()
	h := httpx.RequestID(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	seen := map[string]bool{}
	for range 100 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
		seen[w.Header().Get(httpx.HeaderRequestID)] = true
	}
	require.Len(t, seen, 100)
}

func TestLoggerFallback(t *testing.T) {
	t.Parallel()
	require.NotNil(t, httpx.Logger(context.Background()))
	httpx.Logger(context.Background()).Info("dropped") // must not panic
	l := slog.New(slog.DiscardHandler)
	require.Same(t, l, httpx.Logger(httpx.WithLogger(context.Background(), l)))
	require.Empty(t, httpx.RequestIDFrom(context.Background()))
	require.Equal(t, "x", httpx.RequestIDFrom(httpx.WithRequestID(context.Background(), "x")))
}

func TestChainOrder(t *testing.T) {
	t.Parallel()
	var order []string
	mw := func(name string) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				order = append(order, name)
				next.ServeHTTP(w, r)
			})
		}
	}
	h := httpx.Chain(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		order = append(order, "handler")
	}), mw("outer"), mw("inner"))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	require.Equal(t, []string{"outer", "inner", "handler"}, order)
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		remote string
		xff    []string // one element per header line
		trust  bool
		want   string
	}{
		{name: "ipv4", remote: "192.0.2.1:1234", want: "192.0.2.1"},
		{name: "ipv4 without port", remote: "192.0.2.1", want: "192.0.2.1"},
		{name: "ipv6 is its /64", remote: "[2001:db8:1:2:3:4:5:6]:443", want: "2001:db8:1:2::/64"},
		{name: "ipv6 without port", remote: "2001:db8:1:2::99", want: "2001:db8:1:2::/64"},
		{name: "ipv6 with zone", remote: "[fe80::1%eth0]:443", want: "fe80::/64"},
		{name: "ipv4-mapped ipv6", remote: "[::ffff:192.0.2.1]:443", want: "192.0.2.1"},
		{name: "not an ip", remote: "@", want: "@"},
		{name: "not an ip with port", remote: "host.example:80", want: "host.example"},
		{name: "proxy header ignored", remote: "10.0.0.1:1", xff: []string{"203.0.113.9"}, want: "10.0.0.1"},
		{name: "proxy header single", remote: "10.0.0.1:1", xff: []string{"203.0.113.9"}, trust: true, want: "203.0.113.9"},
		{name: "rightmost wins over spoofed first", remote: "10.0.0.1:1",
			xff: []string{"1.2.3.4, 203.0.113.9"}, trust: true, want: "203.0.113.9"},
		{name: "rightmost of several lines", remote: "10.0.0.1:1",
			xff: []string{"1.2.3.4, 5.6.7.8", "9.9.9.9,203.0.113.9"}, trust: true, want: "203.0.113.9"},
		{name: "rightmost with port", remote: "10.0.0.1:1", xff: []string{"1.2.3.4, 203.0.113.9:5555"}, trust: true, want: "203.0.113.9"},
		{name: "rightmost ipv6 bracketed with port", remote: "10.0.0.1:1",
			xff: []string{"1.2.3.4, [2001:db8:a:b:c::1]:5555"}, trust: true, want: "2001:db8:a:b::/64"},
		{name: "rightmost ipv6 bracketed", remote: "10.0.0.1:1",
			xff: []string{"[2001:db8:a:b::1]"}, trust: true, want: "2001:db8:a:b::/64"},
		{name: "rightmost ipv6 bare", remote: "10.0.0.1:1", xff: []string{"2001:db8:a:b::1"}, trust: true, want: "2001:db8:a:b::/64"},
		{name: "rightmost ipv4-mapped", remote: "10.0.0.1:1", xff: []string{"::ffff:203.0.113.9"}, trust: true, want: "203.0.113.9"},
		{name: "rightmost garbage falls back", remote: "10.0.0.1:1",
			xff: []string{"203.0.113.9, not-an-ip"}, trust: true, want: "10.0.0.1"},
		{name: "rightmost empty falls back", remote: "10.0.0.1:1", xff: []string{"203.0.113.9, "}, trust: true, want: "10.0.0.1"},
		{name: "empty header falls back", remote: "10.0.0.1:1", xff: []string{""}, trust: true, want: "10.0.0.1"},
		{name: "missing header falls back", remote: "10.0.0.1:1", trust: true, want: "10.0.0.1"},
		{name: "fallback ipv6 is its /64", remote: "[2001:db8::7]:1", xff: []string{"junk"}, trust: true, want: "2001:db8::/64"},
		{name: "bracketed ipv4 is refused", remote: "10.0.0.1:1", xff: []string{"[203.0.113.9]"}, trust: true, want: "10.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			require.Equal(t, tt.want, httpx.ClientIP(r, tt.trust))
		})
	}
}

// FuzzClientIP checks that any header gives either a normalized address or
// the RemoteAddr fallback, never a client-chosen string.
func FuzzClientIP(f *testing.F) {
	for _, seed := range []string{
		"203.0.113.9", "1.2.3.4, 203.0.113.9:80", "[2001:db8::1]:443", "::ffff:1.2.3.4",
		"fe80::1%eth0", "[", "[]", ",", " , ", "not-an-ip", "1.2.3.4:99999",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, xff string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = "10.0.0.1:1"
		r.Header.Set("X-Forwarded-For", xff)
		got := httpx.ClientIP(r, true)
		if got == "10.0.0.1" {
			return
		}
		if addr, err := netip.ParseAddr(got); err == nil {
			require.True(t, addr.Is4(), "%q gave %q", xff, got)
			return
		}
		p, err := netip.ParsePrefix(got)
		require.NoError(t, err, "%q gave %q", xff, got)
		require.Equal(t, 64, p.Bits())
		require.Equal(t, p.Masked(), p)
		require.True(t, p.Addr().Is6() && !p.Addr().Is4In6())
	})
}

func TestResponseWriter(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	w := httpx.NewResponseWriter(rec)
	require.Same(t, w, httpx.NewResponseWriter(w))
	require.False(t, w.Written())
	require.Equal(t, http.StatusOK, w.Status())

	w.WriteHeader(http.StatusTeapot)
	_, err := w.Write([]byte("hello"))
	require.NoError(t, err)
	require.NoError(t, http.NewResponseController(w).Flush())
	require.True(t, rec.Flushed)
	require.Equal(t, http.StatusTeapot, w.Status())
	require.Equal(t, int64(5), w.BytesWritten())
	require.Same(t, rec, w.Unwrap())

	early := httpx.NewResponseWriter(httptest.NewRecorder())
	early.WriteHeader(http.StatusEarlyHints) // informational: not the final status
	require.False(t, early.Written())
}
