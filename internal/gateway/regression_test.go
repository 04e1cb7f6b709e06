package gateway

import (
	"bufio"
	"context"
	"fmt"
	"io"
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

// When every instance was tried, the last answer reaches the client, not
// a made-up "no instance".
func TestLastAnswerStandsWhenNoInstanceIsLeft(t *testing.T) {
	b := newBackend(t, "only")
	b.status.Store(http.StatusGatewayTimeout)
	_, srv := newGateway(t, testConfig(), "content", b)
	code, body, _ := send(t, http.MethodGet, srv.URL+"/v1/items/x", "")
	assert.Equal(t, http.StatusGatewayTimeout, code)
	assert.Equal(t, "only failing", body)
	assert.Equal(t, int64(1), b.hits.Load(), "no instance to retry on: no wait, no second try")
}

// A streamed body whose first try was answered before it was read is
// never sent to a second instance: part of it may be inside the first
// try's transport.
func TestStreamedBodyIsNeverSplitAcrossTries(t *testing.T) {
	var goodSaw atomic.Int64
	goodSaw.Store(-1)
	early := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			w.WriteHeader(http.StatusServiceUnavailable) // answers without reading a large body
		}
	}))
	defer early.Close()
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			return
		}
		n, _ := io.Copy(io.Discard, r.Body)
		goodSaw.Store(n)
	}))
	defer good.Close()
	cfg := testConfig()
	cfg.Policies = map[string]string{"payments": "round-robin"}
	g := New(Deps{Config: cfg})
	defer g.Close()
	g.SetInstances("payments", []string{early.URL, good.URL})
	waitUsable(t, g, "payments", 2)
	srv := httptest.NewServer(g)
	defer srv.Close()

	const size = 512 << 10
	observed := 0
	for i := range 2 { // one of the two starts on the early instance
		c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
		require.NoError(t, err)
		fmt.Fprintf(c, "POST /v1/topups HTTP/1.1\r\nHost: x\r\nIdempotency-Key: k%d\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", i, size)
		time.Sleep(50 * time.Millisecond) // a slow client
		chunk := strings.Repeat("x", 4096)
		for j := 0; j < size; j += len(chunk) {
			if _, err := io.WriteString(c, chunk); err != nil {
				break // the gateway answered and closed
			}
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err)
		resp.Body.Close()
		c.Close()
		if n := goodSaw.Swap(-1); n >= 0 {
			observed++
			assert.Equal(t, int64(size), n, "an instance gets the whole body or none of it")
		}
	}
	// Round robin sent one of the two to the good instance first, at least.
	require.Positive(t, observed, "the good instance saw a body")
}

// Clients that give up do not open the pool's breaker.
func TestClientsLeavingDoNotOpenTheBreaker(t *testing.T) {
	b := newBackend(t, "slow")
	b.delay.Store(int64(300 * time.Millisecond))
	cfg := testConfig()
	cfg.BreakerDelay = 5 * time.Second
	g, srv := newGateway(t, cfg, "content", b)
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/items/x", nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	time.Sleep(400 * time.Millisecond) // the upstream calls end
	assert.True(t, g.breakers["content"].IsClosed())
	b.delay.Store(0)
	code, _, _ := send(t, http.MethodGet, srv.URL+"/v1/items/x", "")
	assert.Equal(t, http.StatusOK, code)
}

// A half-open breaker's trial permits are settled when the headers
// arrive, not when a long download ends.
func TestHalfOpenTrialsSettleAtTheHeaders(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/readyz":
		case failing.Load():
			w.WriteHeader(http.StatusInternalServerError)
		case strings.HasPrefix(r.URL.Path, "/cdn/o/"):
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, "first bytes")
			w.(http.Flusher).Flush()
			<-release // a long download
		}
	}))
	defer up.Close()
	defer close(release)
	cfg := testConfig()
	cfg.BreakerDelay = 200 * time.Millisecond
	cfg.EjectAfter = 1000
	g := New(Deps{Config: cfg})
	defer g.Close()
	g.SetInstances("content", []string{up.URL})
	waitUsable(t, g, "content", 1)
	srv := httptest.NewServer(httpx.Chain(g, httpx.RequestID))
	defer srv.Close()
	for range 12 {
		send(t, http.MethodPost, srv.URL+"/v1/items", "")
	}
	require.True(t, g.breakers["content"].IsOpen())
	failing.Store(false)
	time.Sleep(400 * time.Millisecond) // open, then half-open
	for i := range 5 {
		resp, err := http.Get(srv.URL + fmt.Sprintf("/cdn/o/%d", i))
		require.NoError(t, err)
		defer resp.Body.Close()
	}
	code, _, _ := send(t, http.MethodGet, srv.URL+"/v1/items/x", "")
	assert.Equal(t, http.StatusOK, code, "five downloads streaming hold no breaker permit")
}
