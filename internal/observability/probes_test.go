package observability_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stratadev/strata/internal/observability"
	"github.com/stretchr/testify/require"
)

func serve(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	return w
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	p := observability.NewProbes()
	p.AddReadinessCheck("db", func(context.Context) error { return errors.New("down") })
	p.SetDraining()
	w := serve(t, p.HealthzHandler(), "/healthz")
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	require.JSONEq(t, `{"status":"ok"}`, w.Body.String())
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	ok := func(context.Context) error { return nil }
	// blocks ignores its context entirely: only the timeout can stop waiting.
	blocks := func(t *testing.T) observability.Check {
		release := make(chan struct{})
		t.Cleanup(func() { close(release) })
		return func(context.Context) error { <-release; return nil }
	}
	fails := func(err error) func(*testing.T) observability.Check {
		return func(*testing.T) observability.Check {
			return func(context.Context) error { return err }
		}
	}
	tests := []struct {
		name       string
		checks     map[string]func(t *testing.T) observability.Check
		draining   bool
		wantStatus int
		wantBody   string
		wantLogged map[string]string // check name to the error logged for it
	}{
		{name: "no checks", wantStatus: 200, wantBody: `{"status":"ready"}`},
		{name: "all pass", checks: map[string]func(*testing.T) observability.Check{
			"db":    func(*testing.T) observability.Check { return ok },
			"queue": func(*testing.T) observability.Check { return ok },
		}, wantStatus: 200, wantBody: `{"status":"ready","checks":{"db":"ok","queue":"ok"}}`},
		{name: "one fails", checks: map[string]func(*testing.T) observability.Check{
			"db":    func(*testing.T) observability.Check { return ok },
			"queue": fails(errors.New("nats: no servers available")),
		}, wantStatus: 503, wantBody: `{"status":"not_ready","checks":{"db":"ok","queue":"failing"}}`,
			wantLogged: map[string]string{"queue": "nats: no servers available"}},
		{name: "two fail", checks: map[string]func(*testing.T) observability.Check{
			"database": fails(errors.New("open /var/lib/strata/strata.db: permission denied")),
			"queue":    fails(errors.New("nats: no servers available")),
		}, wantStatus: 503, wantBody: `{"status":"not_ready","checks":{"database":"failing","queue":"failing"}}`,
			wantLogged: map[string]string{
				"database": "open /var/lib/strata/strata.db: permission denied",
				"queue":    "nats: no servers available",
			}},
		{name: "one times out", checks: map[string]func(*testing.T) observability.Check{
			"db":   func(*testing.T) observability.Check { return ok },
			"slow": blocks,
		}, wantStatus: 503, wantBody: `{"status":"not_ready","checks":{"db":"ok","slow":"failing"}}`,
			wantLogged: map[string]string{"slow": "timed out after 20ms"}},
		{name: "one respects the timeout", checks: map[string]func(*testing.T) observability.Check{
			"slow": func(*testing.T) observability.Check {
				return func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
			},
		}, wantStatus: 503, wantBody: `{"status":"not_ready","checks":{"slow":"failing"}}`,
			wantLogged: map[string]string{"slow": "timed out after 20ms"}},
		{name: "one panics", checks: map[string]func(*testing.T) observability.Check{
			"bad": func(*testing.T) observability.Check {
				return func(context.Context) error { panic("oops") }
			},
		}, wantStatus: 503, wantBody: `{"status":"not_ready","checks":{"bad":"failing"}}`,
			wantLogged: map[string]string{"bad": "check panicked: oops"}},
		{name: "draining", draining: true, checks: map[string]func(*testing.T) observability.Check{
			"db": fails(errors.New("down")),
		}, wantStatus: 503, wantBody: `{"status":"draining"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs bytes.Buffer
			p := observability.NewProbes()
			p.SetLogger(slog.New(slog.NewJSONHandler(&logs, nil)))
			observability.SetCheckTimeout(p, 20*time.Millisecond)
			for name, c := range tt.checks {
				p.AddReadinessCheck(name, c(t))
			}
			if tt.draining {
				p.SetDraining()
			}
			w := serve(t, p.ReadyzHandler(), "/readyz")
			require.Equal(t, tt.wantStatus, w.Code)
			require.JSONEq(t, tt.wantBody, w.Body.String())
			if tt.wantStatus == http.StatusServiceUnavailable {
				require.Equal(t, "1", w.Header().Get("Retry-After"))
			}

			logged := map[string]string{}
			dec := json.NewDecoder(&logs)
			for dec.More() {
				var line struct{ Level, Msg, Check, Error string }
				require.NoError(t, dec.Decode(&line))
				require.Equal(t, "WARN", line.Level)
				require.Equal(t, "readiness check failed", line.Msg)
				logged[line.Check] = line.Error
			}
			if tt.wantLogged == nil {
				tt.wantLogged = map[string]string{}
			}
			require.Equal(t, tt.wantLogged, logged)
			for _, text := range tt.wantLogged {
				require.NotContains(t, w.Body.String(), text, "error text must not reach the response")
			}
		})
	}
}

// Without SetLogger, or with a nil logger, failures are discarded.
func TestReadyzWithoutLogger(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		setLogger bool
	}{
		{name: "never set"},
		{name: "set to nil", setLogger: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := observability.NewProbes()
			if tt.setLogger {
				p.SetLogger(nil)
			}
			p.AddReadinessCheck("db", func(context.Context) error { return errors.New("down") })
			w := serve(t, p.ReadyzHandler(), "/readyz")
			require.Equal(t, http.StatusServiceUnavailable, w.Code)
			require.JSONEq(t, `{"status":"not_ready","checks":{"db":"failing"}}`, w.Body.String())
		})
	}
}

func TestReadyzTurnsDraining(t *testing.T) {
	t.Parallel()
	p := observability.NewProbes()
	p.AddReadinessCheck("db", func(context.Context) error { return nil })
	require.Equal(t, http.StatusOK, serve(t, p.ReadyzHandler(), "/readyz").Code)
	p.SetDraining()
	w := serve(t, p.ReadyzHandler(), "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	var body observability.ProbeStatus
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
	require.Equal(t, "draining", body.Status)
}

func TestReadyzChecksRunConcurrently(t *testing.T) {
	t.Parallel()
	p := observability.NewProbes()
	// Each check waits for the other to start: run one at a time, they would
	// both time out.
	started := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
	for i, name := range []string{"a", "b"} {
		p.AddReadinessCheck(name, func(ctx context.Context) error {
			close(started[i])
			select {
			case <-started[1-i]:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}
	w := serve(t, p.ReadyzHandler(), "/readyz")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
}

func TestAddReadinessCheckTwicePanics(t *testing.T) {
	t.Parallel()
	p := observability.NewProbes()
	p.AddReadinessCheck("db", func(context.Context) error { return nil })
	require.Panics(t, func() { p.AddReadinessCheck("db", func(context.Context) error { return nil }) })
	require.Panics(t, func() { p.AddReadinessCheck("", func(context.Context) error { return nil }) })
}

func TestReadyzInstanceScope(t *testing.T) {
	t.Parallel()
	p := observability.NewProbes()
	p.AddReadinessCheck("db", func(context.Context) error { return errors.New("down") })
	require.Equal(t, http.StatusServiceUnavailable, serve(t, p.ReadyzHandler(), "/readyz").Code)
	require.Equal(t, http.StatusOK, serve(t, p.ReadyzHandler(), "/readyz?scope=instance").Code,
		"a shared dependency down does not take the instance out of a load balancer's rotation")
	p.SetDraining()
	require.Equal(t, http.StatusServiceUnavailable, serve(t, p.ReadyzHandler(), "/readyz?scope=instance").Code)
}
