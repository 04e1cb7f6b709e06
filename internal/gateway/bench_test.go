package gateway

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stratadev/strata/internal/httpx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// benchBody is what the benchmarks' upstream answers: 1 KiB of JSON, as
// bench/gateway.sh's.
var benchBody = []byte(`{"id":"itm_1","pad":"` + strings.Repeat("x", 1024-23) + `"}`)

// newBenchUpstream is a bare upstream answering every request with
// benchBody, Content-Length set.
func newBenchUpstream(tb testing.TB) *httptest.Server {
	tb.Helper()
	length := []string{strconv.Itoa(len(benchBody))}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"application/json"}
		w.Header()["Content-Length"] = length
		w.Write(benchBody)
	}))
	tb.Cleanup(up.Close)
	return up
}

func newBenchGateway(tb testing.TB, cfg Config, upstream string) *Gateway {
	tb.Helper()
	g := New(Deps{Config: cfg, Metrics: NewMetrics(prometheus.NewRegistry())})
	tb.Cleanup(g.Close)
	g.SetInstances("content", []string{upstream})
	// The first health check runs at once; poll for its outcome.
	deadline := time.Now().Add(5 * time.Second)
	for g.pools["content"].usable.Load() != 1 {
		if time.Now().After(deadline) {
			tb.Fatal("the upstream is not usable within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return g
}

// TestAdaptivePermitGivenBackOnce sends requests one after another with
// the adaptive limiter on: each permit must be given back exactly once
// (recording and dropping the same permit releases two, and the limiter
// panics when none is held).
func TestAdaptivePermitGivenBackOnce(t *testing.T) {
	t.Parallel()
	up := newBenchUpstream(t)
	cfg := testConfig()
	cfg.AdaptiveLimit = true
	g := newBenchGateway(t, cfg, up.URL)
	gw := httptest.NewUnstartedServer(httpx.Chain(g, httpx.RequestID))
	gw.Config.ErrorLog = log.New(failOnWrite{t}, "", 0) // a panic in the gateway fails the test
	gw.Start()
	t.Cleanup(gw.Close)
	for range 20 {
		resp, err := http.Get(gw.URL + "/v1/items/itm_1")
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, benchBody, body)
	}
	assert.Zero(t, g.adaptive.Inflight(), "every permit was given back")
}

// discardWriter is a reusable http.ResponseWriter that keeps nothing.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkServeHTTP is the gateway's own work per request, with the
// default settings (adaptive limiter on) and without the limiter: the
// handler called in process, upstream over loopback. Compare allocs/op.
func BenchmarkServeHTTP(b *testing.B) {
	up := newBenchUpstream(b)
	for _, bc := range []struct {
		name     string
		adaptive bool
	}{{"limiter", true}, {"nolimiter", false}} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := Config{AdaptiveLimit: bc.adaptive}
			g := newBenchGateway(b, cfg, up.URL)
			h := httpx.Chain(g, httpx.RequestID)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := &discardWriter{h: http.Header{}}
				r := httptest.NewRequest(http.MethodGet, "/v1/items/itm_1", nil)
				r.RemoteAddr = "127.0.0.1:40000"
				r.Header.Set("User-Agent", "bench")
				r.Header.Set("Accept", "*/*")
				for pb.Next() {
					clear(w.h)
					h.ServeHTTP(w, r)
				}
			})
		})
	}
}

// BenchmarkProxyHTTP is a request's whole trip over loopback: client to
// the gateway's HTTP server to the upstream and back, as bench/gateway.sh
// measures it with wrk, beside the same client straight to the upstream.
func BenchmarkProxyHTTP(b *testing.B) {
	up := newBenchUpstream(b)
	g := newBenchGateway(b, Config{AdaptiveLimit: true}, up.URL)
	gw := httptest.NewServer(httpx.Chain(g, httpx.RequestID, httpx.AccessLog(slog.New(slog.DiscardHandler)), httpx.Recover))
	b.Cleanup(gw.Close)
	for _, target := range []struct{ name, url string }{{"direct", up.URL}, {"gateway", gw.URL}} {
		b.Run(target.name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			defer client.CloseIdleConnections()
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Get(target.url + "/v1/items/itm_1")
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}

// The direct path (upstream.go). These tests live here because this change
// adds only this test file; they belong in an upstream_test.go.

// connUpstream is an upstream that counts the connections its requests
// (health checks aside) arrived on.
type connUpstream struct {
	*httptest.Server
	mu    sync.Mutex
	conns map[string]bool // remote addresses
}

func newConnUpstream(t *testing.T, h http.HandlerFunc) *connUpstream {
	t.Helper()
	u := &connUpstream{conns: map[string]bool{}}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			return
		}
		u.mu.Lock()
		u.conns[r.RemoteAddr] = true
		u.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *connUpstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.conns)
}

func newDirectGateway(t *testing.T, cfg Config, upstream string) (*Gateway, string) {
	t.Helper()
	g := newBenchGateway(t, cfg, upstream)
	gw := httptest.NewUnstartedServer(httpx.Chain(g, httpx.RequestID))
	gw.Config.ErrorLog = log.New(failOnWrite{t}, "", 0)
	gw.Start()
	t.Cleanup(gw.Close)
	return g, gw.URL
}

// idleConns counts the connections the direct path keeps to instances of
// the content pool.
func idleConns(g *Gateway) int {
	p := g.pools["content"]
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, in := range p.instances {
		in.conns.mu.Lock()
		n += len(in.conns.idle)
		in.conns.mu.Unlock()
	}
	return n
}

func TestDirectPathReusesConnections(t *testing.T) {
	t.Parallel()
	up := newConnUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/items/empty":
			w.WriteHeader(http.StatusNoContent)
		default:
			io.WriteString(w, "item") // small: Content-Length set
		}
	})
	g, gw := newDirectGateway(t, testConfig(), up.URL)
	for i := range 30 {
		method, path, wantBody := http.MethodGet, "/v1/items/itm_1", "item"
		switch i % 3 {
		case 1:
			method, wantBody = http.MethodHead, ""
		case 2:
			path, wantBody = "/v1/items/empty", ""
		}
		status, body, _ := send(t, method, gw+path, "")
		require.Less(t, status, 300, "%s %s", method, path)
		assert.Equal(t, wantBody, body)
	}
	assert.Equal(t, 1, up.count(), "one request at a time, one connection")
	assert.Equal(t, 1, idleConns(g), "kept for the next request")
}

func TestDirectPathClosesWhatTheUpstreamCloses(t *testing.T) {
	t.Parallel()
	up := newConnUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	})
	g, gw := newDirectGateway(t, testConfig(), up.URL)
	for range 5 {
		status, body, _ := send(t, http.MethodGet, gw+"/v1/items/itm_1", "")
		require.Equal(t, http.StatusOK, status)
		assert.Equal(t, "bye", body)
	}
	assert.Equal(t, 5, up.count(), "a connection the upstream closes is not reused")
	assert.Zero(t, idleConns(g), "nor kept")
}

func TestDirectPathResendsOnAConnectionTheUpstreamClosed(t *testing.T) {
	t.Parallel()
	up := newConnUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Method)
	})
	cfg := testConfig()
	cfg.MaxAttempts = 1 // no retries of the gateway's own: the direct path resends
	_, gw := newDirectGateway(t, cfg, up.URL)
	for range 5 {
		status, body, _ := send(t, http.MethodGet, gw+"/v1/items/itm_1", "")
		require.Equal(t, http.StatusOK, status)
		assert.Equal(t, "GET", body)
		up.CloseClientConnections() // the connection the gateway keeps is now dead
	}
	status, body, _ := send(t, http.MethodGet, gw+"/v1/items/itm_1", "", "Idempotency-Key", "k1")
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "GET", body)
}

func TestDirectPathSkipsInformationalResponses(t *testing.T) {
	t.Parallel()
	up := newConnUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "final")
	})
	_, gw := newDirectGateway(t, testConfig(), up.URL)
	status, body, _ := send(t, http.MethodGet, gw+"/v1/items/itm_1", "")
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "final", body)
}

func TestDirectPathTimesOutWaitingForHeaders(t *testing.T) {
	t.Parallel()
	up := newConnUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	cfg := testConfig()
	cfg.MaxAttempts, cfg.HeaderTimeout = 1, 100*time.Millisecond
	_, gw := newDirectGateway(t, cfg, up.URL)
	start := time.Now()
	status, body, _ := send(t, http.MethodGet, gw+"/v1/items/itm_1", "")
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Contains(t, body, "upstream_failed")
	assert.Less(t, time.Since(start), 2*time.Second)
}

func TestDirectPathGivesUpWhenTheClientLeaves(t *testing.T) {
	t.Parallel()
	canceled := make(chan struct{})
	up := newConnUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			close(canceled)
		case <-time.After(5 * time.Second):
		}
	})
	_, gw := newDirectGateway(t, testConfig(), up.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, gw+"/v1/items/itm_1", nil)
	require.NoError(t, err)
	_, err = http.DefaultClient.Do(req)
	require.Error(t, err)
	select {
	case <-canceled:
	case <-time.After(3 * time.Second):
		t.Fatal("the upstream's request goes on after the client left")
	}
}

func TestDirectPathStreamsBodies(t *testing.T) {
	t.Parallel()
	const large = 4 << 20
	up := newConnUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/items/large":
			w.Header().Set("Content-Length", strconv.Itoa(large))
			io.CopyN(w, zeros{}, large)
		default: // chunked: no length, flushed piece by piece
			for i := range 3 {
				fmt.Fprintf(w, "piece %d;", i)
				w.(http.Flusher).Flush()
			}
		}
	})
	g, gw := newDirectGateway(t, testConfig(), up.URL)
	for range 2 {
		status, body, _ := send(t, http.MethodGet, gw+"/v1/items/stream", "")
		require.Equal(t, http.StatusOK, status)
		assert.Equal(t, "piece 0;piece 1;piece 2;", body)
		status, body, _ = send(t, http.MethodGet, gw+"/v1/items/large", "")
		require.Equal(t, http.StatusOK, status)
		assert.Len(t, body, large)
	}
	assert.Equal(t, 1, up.count(), "bodies read to the end leave the connection reusable")
	assert.Equal(t, 1, idleConns(g))
}
