package main

import (
	"github.com/stretchr/testify/assert"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratadev/strata/internal/cache/redistest"
	"github.com/stretchr/testify/require"
)

// TestCacheInvalidationAcrossInstances runs two API instances sharing the
// database, NATS and Redis: an item read on both is cached on both; a
// change on one is visible there at once (it deleted its keys) and on the
// other as soon as the change's event arrives.
func TestCacheInvalidationAcrossInstances(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t)
	dir := t.TempDir()
	natsPort, err := freePort()
	require.NoError(t, err)
	natsAddr := "127.0.0.1:" + strconv.Itoa(natsPort)
	a := start(t, dir, "--roles", "all", "--nats-listen", natsAddr, "--redis-url", redis.URL())
	b := start(t, dir, "--roles", "auth,content,payments", "--nats-url", "nats://"+natsAddr, "--redis-url", redis.URL())

	status, body := call(t, "POST", a.base+"/v1/auth/signup", map[string]string{"email": "maker@example.com",
		"password": "correct horse battery staple", "name": "M", "role": "creator"}, "")
	require.Equal(t, http.StatusCreated, status, "%v", body)
	creator := body["access_token"].(string)
	status, body = call(t, "POST", a.base+"/v1/items", map[string]any{"title": "First", "price": map[string]any{"amount": 100, "currency": "USD"}}, creator)
	require.Equal(t, http.StatusCreated, status, "%v", body)
	url := "/v1/items/" + body["id"].(string)

	metrics := func(in *instance) string {
		resp, err := http.Get(in.base + "/metrics")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}

	// A thundering herd on a key b has never read: one database read.
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1000}}
	for range 1000 {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", b.base+url, nil)
			req.Header.Set("Authorization", "Bearer "+creator)
			resp, err := client.Do(req)
			if assert.NoError(t, err) {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				assert.Equal(t, http.StatusOK, resp.StatusCode)
			}
		})
	}
	wg.Wait()
	require.Contains(t, metrics(b), `strata_cache_loads_total{cache="items",result="ok"} 1`+"\n",
		"1,000 concurrent requests for a cold item make one database read on the instance")

	title := func(in *instance) string {
		status, body := call(t, "GET", in.base+url, nil, creator)
		require.Equal(t, http.StatusOK, status, "%v", body)
		return body["title"].(string)
	}
	require.Equal(t, "First", title(a))
	require.Equal(t, "First", title(b)) // now cached on both, and in Redis

	status, body = call(t, "PATCH", a.base+url, map[string]any{"title": "Second"}, creator)
	require.Equal(t, http.StatusOK, status, "%v", body)
	require.Equal(t, "Second", title(a), "the writer sees its change at once")
	require.Eventually(t, func() bool { return title(b) == "Second" }, 5*time.Second, 10*time.Millisecond,
		"the other instance's copy is invalidated by the change's event")

	require.Contains(t, metrics(b), `strata_cache_requests_total{cache="items",result="hit",tier="`)

	// Redis dies: both instances keep answering, from their own memory and
	// the database, and changes still reach the other instance.
	redis.Stop()
	for range 20 {
		require.Equal(t, "Second", title(a))
		require.Equal(t, "Second", title(b))
	}
	status, body = call(t, "PATCH", a.base+url, map[string]any{"title": "Third"}, creator)
	require.Equal(t, http.StatusOK, status, "%v", body)
	require.Equal(t, "Third", title(a))
	require.Eventually(t, func() bool { return title(b) == "Third" }, 5*time.Second, 10*time.Millisecond)

	// Redis is back: the shared tier is used again.
	redis.Start()
	status, _ = call(t, "PATCH", a.base+url, map[string]any{"title": "Fourth"}, creator)
	require.Equal(t, http.StatusOK, status)
	require.Eventually(t, func() bool {
		return title(a) == "Fourth" && strings.Contains(metrics(a), `strata_dependency_breaker_state{dependency="redis"} 0`)
	}, 15*time.Second, 50*time.Millisecond, "the Redis breaker closes again")
	require.Eventually(t, func() bool { return title(b) == "Fourth" }, 5*time.Second, 10*time.Millisecond)
}
