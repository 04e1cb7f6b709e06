package gateway

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratadev/strata/internal/httpx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// backend is an upstream instance: a real HTTP server on loopback whose
// readiness and answers a test controls.
type backend struct {
	*httptest.Server
	name    string
	ready   atomic.Bool
	status  atomic.Int32 // answer with this status when non-zero
	delay   atomic.Int64 // ns before answering
	hits    atomic.Int64
	lastReq atomic.Pointer[http.Request]
	bodies  sync.Map // request id -> body received
}

func newBackend(t *testing.T, name string) *backend {
	t.Helper()
	b := &backend{name: name}
	b.ready.Store(true)
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			if !b.ready.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			io.WriteString(w, "ok")
			return
		}
		b.hits.Add(1)
		b.lastReq.Store(r.Clone(context.Background()))
		body, _ := io.ReadAll(r.Body)
		b.bodies.Store(r.Header.Get(httpx.HeaderRequestID), string(body))
		if d := b.delay.Load(); d > 0 {
			select {
			case <-time.After(time.Duration(d)):
			case <-r.Context().Done():
				return
			}
		}
		if s := b.status.Load(); s != 0 {
			w.WriteHeader(int(s))
			fmt.Fprintf(w, "%s failing", b.name)
			return
		}
		w.Header().Set("X-Backend", b.name)
		w.Header().Set("Connection", "X-Hop") // names a hop-by-hop header
		w.Header().Set("X-Hop", "secret")
		fmt.Fprintf(w, "%s:%s:%s", b.name, r.Method, body)
	}))
	t.Cleanup(b.Close)
	return b
}

// testConfig checks health often and ejects quickly, so that tests run fast.
func testConfig() Config {
	return Config{HealthInterval: 20 * time.Millisecond, HealthTimeout: 200 * time.Millisecond, UnhealthyAfter: 2,
		EjectAfter: 3, EjectBase: 200 * time.Millisecond, EjectMax: 2 * time.Second, RetryBackoff: time.Millisecond,
		BreakerDelay: 300 * time.Millisecond, BreakerWindow: 2 * time.Second, BreakerMinRequests: 10}
}

func newGateway(t *testing.T, cfg Config, pool string, backends ...*backend) (*Gateway, *httptest.Server) {
	t.Helper()
	g := New(Deps{Config: cfg})
	t.Cleanup(g.Close)
	var urls []string
	for _, b := range backends {
		urls = append(urls, b.URL)
	}
	g.SetInstances(pool, urls)
	waitUsable(t, g, pool, len(backends))
	srv := httptest.NewUnstartedServer(httpx.Chain(g, httpx.RequestID))
	srv.Config.ErrorLog = log.New(failOnWrite{t}, "", 0) // a panic in the gateway fails the test
	srv.Start()
	t.Cleanup(srv.Close)
	return g, srv
}

type failOnWrite struct{ t *testing.T }

func (f failOnWrite) Write(p []byte) (int, error) {
	f.t.Errorf("gateway server error: %s", p)
	return len(p), nil
}

func waitUsable(t *testing.T, g *Gateway, pool string, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return int(g.pools[pool].usable.Load()) == n }, 5*time.Second, 5*time.Millisecond,
		"pool %s reaches %d usable instances", pool, n)
}

func send(t *testing.T, method, url string, body string, header ...string) (int, string, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestRoute(t *testing.T) {
	for path, want := range map[string][2]string{
		"/v1/auth/login":                 {"auth", ""},
		"/.well-known/jwks.json":         {"auth", ""},
		"/v1/items":                      {"content", ""},
		"/v1/items/itm_123/download":     {"content", "itm_123"},
		"/cdn/o/abcd/file.bin":           {"content", "abcd"},
		"/v1/uploads/up_9":               {"content", "up_9"},
		"/v1/purchases/pur_1/refund":     {"payments", ""},
		"/v1/webhooks/endpoints":         {"payments", ""},
		"/v1/admin/users/usr_1/roles":    {"auth", ""},
		"/v1/wallet":                     {"payments", ""},
		"/v1/topups/top_1/confirm":       {"payments", ""},
		"/v1/ledger/transfers":           {"payments", ""},
		"/internal/v1/catalog/itm_1":     {"", ""},
		"/metrics":                       {"", ""},
		"/v1/unknown":                    {"", ""},
		"/v1/items/itm_123?x=1":          {"content", "itm_123?x=1"}, // paths never carry a query; shows the segment rule
		"/v1/uploads/":                   {"content", ""},
		"/cdn/p/previews-file.jpg":       {"content", "previews-file.jpg"},
		"/cdn/t/abcd/thumbnail.jpg":      {"content", "abcd"},
		"/v1/items/itm_123/file":         {"content", "itm_123"},
		"/v1/auth/password/reset":        {"auth", ""},
		"/v1/purchases":                  {"payments", ""},
		"/v1/webhooks/deliveries/d_1/rp": {"payments", ""},
	} {
		pool, key, ok := Route(path)
		assert.Equal(t, want[0] != "", ok, path)
		assert.Equal(t, want[0], pool, path)
		assert.Equal(t, want[1], key, path)
	}
}

func TestProxyPassesRequestsAndAnswersThrough(t *testing.T) {
	b := newBackend(t, "a")
	_, gw := newGateway(t, testConfig(), "content", b)

	status, body, h := send(t, "POST", gw.URL+"/v1/items?draft=1", `{"title":"x"}`,
		"X-Request-Id", "req-42", "Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"Connection", "X-Secret", "X-Secret", "hop", "X-Forwarded-For", "6.6.6.6")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, `a:POST:{"title":"x"}`, body)
	assert.Equal(t, "a", h.Get("X-Backend"))
	assert.Empty(t, h.Get("X-Hop"), "hop-by-hop headers of the answer are dropped")
	assert.Equal(t, "req-42", h.Get("X-Request-Id"))

	r := b.lastReq.Load()
	assert.Equal(t, "/v1/items", r.URL.Path)
	assert.Equal(t, "draft=1", r.URL.RawQuery)
	assert.Equal(t, "req-42", r.Header.Get("X-Request-Id"))
	assert.Equal(t, "127.0.0.1", r.Header.Get("X-Forwarded-For"), "an untrusted X-Forwarded-For is replaced")
	assert.Equal(t, "http", r.Header.Get("X-Forwarded-Proto"))
	assert.Equal(t, strings.TrimPrefix(gw.URL, "http://"), r.Header.Get("X-Forwarded-Host"))
	assert.Equal(t, strings.TrimPrefix(gw.URL, "http://"), r.Host, "the client's Host is kept")
	assert.Empty(t, r.Header.Get("X-Secret"), "headers named by Connection are hop-by-hop")
	tp := r.Header.Get("Traceparent")
	require.Len(t, tp, 55)
	assert.Equal(t, "00-0af7651916cd43dd8448eb211c80319c-", tp[:36], "the trace continues")
	assert.NotEqual(t, "b7ad6b7169203331", tp[36:52], "with the gateway's own span as parent")
	assert.Equal(t, "-01", tp[52:])

	// No trace context: the gateway starts one.
	send(t, "GET", gw.URL+"/v1/items", "")
	tp = b.lastReq.Load().Header.Get("Traceparent")
	require.Len(t, tp, 55)
	assert.True(t, strings.HasPrefix(tp, "00-") && strings.HasSuffix(tp, "-00"), tp)

	status, body, _ = send(t, "GET", gw.URL+"/v1/nothing", "")
	assert.Equal(t, http.StatusNotFound, status)
	assert.Contains(t, body, `"code":"route_not_found"`)
}

func TestProxyStreamsLargeBodies(t *testing.T) {
	const size = 8 << 20
	var got atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			return
		}
		n, _ := io.Copy(io.Discard, r.Body)
		got.Store(n)
		w.Header().Set("Content-Length", fmt.Sprint(size))
		io.CopyN(w, zeros{}, size)
	}))
	defer up.Close()
	g := New(Deps{Config: testConfig()})
	defer g.Close()
	g.SetInstances("content", []string{up.URL})
	waitUsable(t, g, "content", 1)
	gw := httptest.NewServer(g)
	defer gw.Close()

	pr, pw := io.Pipe()
	go func() {
		io.CopyN(pw, zeros{}, size)
		pw.Close()
	}()
	req, _ := http.NewRequest("PATCH", gw.URL+"/v1/uploads/up_1", pr)
	req.ContentLength = size
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, int64(size), n)
	assert.Equal(t, int64(size), got.Load())
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestRetriesIdempotentRequestsOnAnotherInstance(t *testing.T) {
	bad, good := newBackend(t, "bad"), newBackend(t, "good")
	cfg := testConfig()
	cfg.EjectAfter = 1000 // keep the failing instance in, to see every retry
	cfg.Policies = map[string]string{"payments": "round-robin"}
	_, gw := newGateway(t, cfg, "payments", bad, good)
	bad.status.Store(http.StatusServiceUnavailable)

	for i := range 10 {
		status, body, _ := send(t, "GET", gw.URL+"/v1/wallet", "")
		require.Equal(t, http.StatusOK, status, "try %d", i)
		assert.Equal(t, "good:GET:", body)
		status, body, _ = send(t, "POST", gw.URL+"/v1/purchases", `{"item":"itm_1"}`, "Idempotency-Key", fmt.Sprint("k", i))
		require.Equal(t, http.StatusOK, status)
		assert.Equal(t, `good:POST:{"item":"itm_1"}`, body, "a retried body arrives whole")
	}
	// A POST without a key is never sent twice: its failure reaches the client.
	failures := 0
	for range 10 {
		status, _, _ := send(t, "POST", gw.URL+"/v1/purchases", `{}`)
		if status == http.StatusServiceUnavailable {
			failures++
		}
	}
	assert.Equal(t, 5, failures, "round robin sends every other POST to the failing instance, once")
}

func TestRetriesAnyRequestWhenTheConnectionIsRefused(t *testing.T) {
	good := newBackend(t, "good")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now

	cfg := testConfig()
	cfg.Policies = map[string]string{"auth": "round-robin"}
	cfg.EjectAfter = 1000
	g := New(Deps{Config: cfg})
	defer g.Close()
	g.SetInstances("auth", []string{good.URL, dead})
	waitUsable(t, g, "auth", 1)
	// Mark the dead one healthy by hand, as if it died between checks.
	for _, in := range g.pools["auth"].instances {
		in.healthy.Store(true)
	}
	g.pools["auth"].refresh()
	gw := httptest.NewServer(g)
	defer gw.Close()
	for i := range 6 {
		status, body, _ := send(t, "POST", gw.URL+"/v1/auth/login", `{"email":"a@b.c"}`)
		require.Equal(t, http.StatusOK, status, "try %d", i)
		assert.Equal(t, `good:POST:{"email":"a@b.c"}`, body)
	}
}

func TestHealthChecksTakeInstancesOutAndBack(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	g, gw := newGateway(t, testConfig(), "auth", a, b)
	b.ready.Store(false)
	waitUsable(t, g, "auth", 1)
	for range 20 {
		_, body, _ := send(t, "GET", gw.URL+"/v1/auth/me", "")
		assert.Equal(t, "a:GET:", body)
	}
	b.ready.Store(true)
	waitUsable(t, g, "auth", 2)
}

func TestFailingInstanceIsEjectedWithBackoff(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	cfg := testConfig()
	cfg.MaxAttempts = 1
	cfg.Policies = map[string]string{"payments": "round-robin"}
	g, gw := newGateway(t, cfg, "payments", a, b)
	b.status.Store(http.StatusInternalServerError)
	p := g.pools["payments"]
	var bInst *instance
	for _, in := range p.instances {
		if in.url.String() == b.URL {
			bInst = in
		}
	}

	for range 8 { // b fails 3 in a row within these, and is ejected
		send(t, "GET", gw.URL+"/v1/wallet", "")
	}
	require.True(t, bInst.ejected(time.Now()), "ejected after 3 failures in a row")
	hitsBefore := b.hits.Load()
	for range 10 {
		_, body, _ := send(t, "GET", gw.URL+"/v1/wallet", "")
		assert.Equal(t, "a:GET:", body)
	}
	assert.Equal(t, hitsBefore, b.hits.Load(), "an ejected instance gets nothing")

	// Readmitted after 200 ms for one trial; it fails, so it goes out for twice as long.
	require.Eventually(t, func() bool { return !bInst.ejected(time.Now()) && bInst.trial.Load() }, 2*time.Second, 5*time.Millisecond)
	for i := 0; i < 4 && !bInst.ejected(time.Now()); i++ {
		send(t, "GET", gw.URL+"/v1/wallet", "")
	}
	require.True(t, bInst.ejected(time.Now()), "a failed trial ejects at once")
	left := time.Until(time.Unix(0, bInst.ejectedUntil.Load()))
	assert.Greater(t, left, 250*time.Millisecond, "the second ejection lasts twice the first")

	// Recovered: the next trial succeeds and the back-off resets.
	b.status.Store(0)
	require.Eventually(t, func() bool { return !bInst.ejected(time.Now()) }, 3*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool {
		send(t, "GET", gw.URL+"/v1/wallet", "")
		return bInst.ejections.Load() == 0
	}, 2*time.Second, time.Millisecond)
}

func TestBreakerOpensOnAFailingPoolAndClosesAfterItRecovers(t *testing.T) {
	a := newBackend(t, "a")
	cfg := testConfig()
	cfg.EjectAfter = 1000
	cfg.MaxAttempts = 1
	g, gw := newGateway(t, cfg, "content", a)
	a.status.Store(http.StatusBadGateway)
	for range 12 {
		send(t, "GET", gw.URL+"/v1/items", "")
	}
	require.True(t, g.breakers["content"].IsOpen(), "the breaker opens after a window of failures")
	hits := a.hits.Load()
	start := time.Now()
	status, body, h := send(t, "GET", gw.URL+"/v1/items", "")
	assert.Less(t, time.Since(start), time.Second, "an open breaker answers at once (generous: CI machines are busy)")
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Contains(t, body, `"code":"upstream_unavailable"`)
	assert.NotEmpty(t, h.Get("Retry-After"))
	assert.Equal(t, hits, a.hits.Load(), "nothing reaches the upstream while open")
	// Other pools are not affected.
	assert.True(t, g.breakers["auth"].IsClosed())

	a.status.Store(0)
	require.Eventually(t, func() bool {
		status, _, _ := send(t, "GET", gw.URL+"/v1/items", "")
		return status == http.StatusOK && g.breakers["content"].IsClosed()
	}, 3*time.Second, 20*time.Millisecond, "trial requests succeed and the breaker closes")
}

func TestOverloadShedsFastInsteadOfTimingOut(t *testing.T) {
	// An upstream that handles 2 requests at a time, 50 ms each.
	sem := make(chan struct{}, 2)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			return
		}
		sem <- struct{}{}
		time.Sleep(50 * time.Millisecond)
		<-sem
	}))
	defer up.Close()
	cfg := testConfig()
	cfg.AdaptiveLimit, cfg.MinLimit, cfg.MaxLimit = true, 2, 4
	cfg.MaxAttempts = 1
	g := New(Deps{Config: cfg})
	defer g.Close()
	g.SetInstances("content", []string{up.URL})
	waitUsable(t, g, "content", 1)
	gw := httptest.NewUnstartedServer(g)
	gw.Config.ErrorLog = log.New(failOnWrite{t}, "", 0)
	gw.Start()
	defer gw.Close()

	var shed, ok atomic.Int64
	var slowestShed atomic.Int64
	var wg sync.WaitGroup
	for range 60 {
		wg.Go(func() {
			start := time.Now()
			resp, err := http.Get(gw.URL + "/v1/items")
			if err != nil {
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusOK:
				ok.Add(1)
			case http.StatusServiceUnavailable:
				shed.Add(1)
				assert.Equal(t, "1", resp.Header.Get("Retry-After"))
				if d := int64(time.Since(start)); d > slowestShed.Load() {
					slowestShed.Store(d)
				}
			}
		})
	}
	wg.Wait()
	assert.Positive(t, ok.Load())
	assert.Greater(t, shed.Load(), int64(30), "most of the excess is shed")
	assert.Less(t, time.Duration(slowestShed.Load()), time.Second, "shed answers come fast (the backlog would take 1.5 s)")
}

func TestRateLimitPerClient(t *testing.T) {
	a := newBackend(t, "a")
	cfg := testConfig()
	cfg.RateLimit, cfg.RateBurst = 1, 3
	_, gw := newGateway(t, cfg, "auth", a)
	for i := range 3 {
		status, _, _ := send(t, "GET", gw.URL+"/v1/auth/me", "")
		require.Equal(t, http.StatusOK, status, "burst %d", i)
	}
	status, body, h := send(t, "GET", gw.URL+"/v1/auth/me", "")
	assert.Equal(t, http.StatusTooManyRequests, status)
	assert.Contains(t, body, `"code":"rate_limited"`)
	assert.Equal(t, "1", h.Get("Retry-After"))
}

func TestRetryBudgetBoundsRetries(t *testing.T) {
	b := retryBudget{ratio: 0.2, min: 2}
	for range 20 {
		b.begin()
	}
	got := 0
	for range 20 {
		if b.acquire() {
			got++
		}
	}
	assert.Equal(t, 4, got, "20%% of 20 requests in flight")
	for range got {
		b.release()
	}
	for range 20 {
		b.end()
	}
	assert.True(t, b.acquire() && b.acquire(), "the minimum holds with nothing in flight")
	assert.False(t, b.acquire())
}

func TestConsistentHashKeepsAnItemOnOneInstance(t *testing.T) {
	var backends []*backend
	for i := range 3 {
		backends = append(backends, newBackend(t, fmt.Sprint("b", i)))
	}
	cfg := testConfig()
	cfg.Policies = map[string]string{"content": "consistent-hash"}
	g, gw := newGateway(t, cfg, "content", backends...)
	owner := map[string]string{}
	for i := range 30 {
		item := fmt.Sprintf("itm_%d", i)
		_, _, h := send(t, "GET", gw.URL+"/v1/items/"+item, "")
		owner[item] = h.Get("X-Backend")
		for range 3 {
			_, _, h := send(t, "GET", gw.URL+"/v1/items/"+item+"/download", "")
			require.Equal(t, owner[item], h.Get("X-Backend"), "every request of %s meets one instance", item)
		}
	}
	// b2 leaves: its items move, and (Maglev being near-minimal, not
	// minimal) at most a few of the others; balance_test measures the
	// spread on 100,000 keys.
	backends[2].ready.Store(false)
	waitUsable(t, g, "content", 2)
	stayed, others := 0, 0
	for item, was := range owner {
		_, _, h := send(t, "GET", gw.URL+"/v1/items/"+item, "")
		assert.NotEqual(t, "b2", h.Get("X-Backend"))
		if was != "b2" {
			others++
			if was == h.Get("X-Backend") {
				stayed++
			}
		}
	}
	assert.GreaterOrEqual(t, stayed, others-2, "the items of the instances that stayed stay where they were (%d of %d)", stayed, others)
}
