package cache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/rueidis"
	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/cache/redistest"
	"github.com/stratadev/strata/internal/resilience"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type item struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

func cfg() Config {
	return Config{TTL: time.Minute, StaleFor: time.Minute, NegativeTTL: time.Second, Jitter: 0.1, Shared: true}
}

func TestThunderingHerdLoadsOnce(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	c := New[item]("items", cfg(), nil, NewMetrics(reg))
	var loads atomic.Int64
	load := func(context.Context) (item, error) {
		loads.Add(1)
		time.Sleep(50 * time.Millisecond) // a database read
		return item{ID: "itm_1", Title: "Song"}, nil
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 1000 {
		wg.Go(func() {
			<-start
			v, err := c.Get(context.Background(), "itm_1", load)
			assert.NoError(t, err)
			assert.Equal(t, "Song", v.Title)
		})
	}
	close(start)
	wg.Wait()
	assert.Equal(t, int64(1), loads.Load(), "1,000 concurrent misses of one key make one load")
	assert.Greater(t, testutil.ToFloat64(c.metrics.coalesced), 0.0)
}

func TestNotFoundIsCachedBriefly(t *testing.T) {
	t.Parallel()
	c := New[item]("items", cfg(), nil, nil)
	now := time.Now()
	c.now = func() time.Time { return now }
	var loads atomic.Int64
	missing := func(context.Context) (item, error) {
		loads.Add(1)
		return item{}, strata.Errorf(strata.CodeNotFound, "item_not_found", "no such item")
	}
	for range 3 {
		_, err := c.Get(context.Background(), "itm_x", missing)
		require.Equal(t, "item_not_found", strata.ErrorReason(err))
	}
	assert.Equal(t, int64(1), loads.Load())
	now = now.Add(2 * time.Second) // past NegativeTTL (+10 %)
	_, _ = c.Get(context.Background(), "itm_x", missing)
	assert.Equal(t, int64(2), loads.Load(), "not found is cached only for NegativeTTL")
}

func TestStaleWhileRevalidateAndStaleIfError(t *testing.T) {
	t.Parallel()
	c := New[item]("items", cfg(), nil, nil)
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	c.now = clock
	title := atomic.Value{}
	title.Store("v1")
	fail := atomic.Bool{}
	refreshed := make(chan struct{}, 10)
	load := func(context.Context) (item, error) {
		defer func() { refreshed <- struct{}{} }()
		if fail.Load() {
			return item{}, errors.New("database down")
		}
		return item{ID: "itm_1", Title: title.Load().(string)}, nil
	}
	v, err := c.Get(context.Background(), "k", load)
	require.NoError(t, err)
	<-refreshed
	require.Equal(t, "v1", v.Title)

	title.Store("v2")
	advance(70 * time.Second) // past TTL (+10 %), within StaleFor
	v, err = c.Get(context.Background(), "k", load)
	require.NoError(t, err)
	assert.Equal(t, "v1", v.Title, "a stale value is served at once")
	<-refreshed // while one refresh runs in the background
	require.Eventually(t, func() bool {
		v, _ := c.Get(context.Background(), "k", load)
		return v.Title == "v2"
	}, time.Second, time.Millisecond, "and the refreshed value follows")

	// The loader fails after expiry: the stale value is served instead.
	fail.Store(true)
	advance(70 * time.Second)
	c.Forget("other")
	v, err = c.Get(context.Background(), "k", load)
	require.NoError(t, err)
	assert.Equal(t, "v2", v.Title, "stale-if-error")
	// Past StaleFor: the error reaches the caller.
	advance(3 * time.Minute)
	_, err = c.Get(context.Background(), "k", load)
	require.Error(t, err)
}

func newRedis(t *testing.T, srv *redistest.Server) *Redis {
	t.Helper()
	g := resilience.New("redis", resilience.Config{Timeout: 200 * time.Millisecond, BreakerFailureRate: 0.5,
		BreakerMinCalls: 5, BreakerWindow: time.Second, BreakerDelay: 200 * time.Millisecond}, nil, nil)
	r, err := OpenRedis(srv.URL(), g, nil)
	require.NoError(t, err)
	t.Cleanup(r.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, r.WaitConnected(ctx))
	return r
}

func TestSharedTierAcrossInstances(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	a := New[item]("items", cfg(), newRedis(t, srv), nil)
	b := New[item]("items", cfg(), newRedis(t, srv), nil)
	var loadsA, loadsB atomic.Int64
	loader := func(n *atomic.Int64, title string) func(context.Context) (item, error) {
		return func(context.Context) (item, error) { n.Add(1); return item{ID: "itm_1", Title: title}, nil }
	}
	v, err := a.Get(context.Background(), "itm_1", loader(&loadsA, "v1"))
	require.NoError(t, err)
	require.Equal(t, "v1", v.Title)
	v, err = b.Get(context.Background(), "itm_1", loader(&loadsB, "never"))
	require.NoError(t, err)
	assert.Equal(t, "v1", v.Title, "instance b finds a's value in Redis")
	assert.Zero(t, loadsB.Load())
	assert.Equal(t, 1.0, testutil.ToFloat64(b.metrics.redisHit))

	// a changes the item: it deletes the keys; b deletes them too when the
	// change's event arrives (as content.Service.Invalidate does), which
	// also makes it read past its client-side copy, whose invalidation
	// Redis may not have pushed yet.
	a.Delete(context.Background(), "itm_1")
	b.Delete(context.Background(), "itm_1")
	v, err = b.Get(context.Background(), "itm_1", loader(&loadsB, "v2"))
	require.NoError(t, err)
	assert.Equal(t, "v2", v.Title)
	assert.Equal(t, int64(1), loadsB.Load())
}

func TestRedisDownFallsThroughAndRecovers(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	r := newRedis(t, srv)
	c := New[item]("items", Config{TTL: time.Millisecond, Shared: true}, r, nil) // every lookup reaches Redis
	var loads atomic.Int64
	load := func(context.Context) (item, error) { loads.Add(1); return item{Title: "from the database"}, nil }
	_, err := c.Get(context.Background(), "k", load)
	require.NoError(t, err)

	srv.Stop()
	for range 50 {
		time.Sleep(2 * time.Millisecond)
		v, err := c.Get(context.Background(), "k", load)
		require.NoError(t, err, "a client never sees an error because of the cache")
		require.Equal(t, "from the database", v.Title)
	}
	assert.Positive(t, testutil.ToFloat64(c.metrics.remoteErrors))
	assert.Equal(t, "open", r.Guard().State(), "the breaker keeps a dead Redis out of the path")

	srv.Start()
	require.Eventually(t, func() bool {
		_, _, err := r.Get(context.Background(), "strata:items:k")
		return err == nil
	}, 10*time.Second, 50*time.Millisecond, "Redis is used again once it is back")
}

// A change made while Redis cannot be written must not leave the old
// value behind in Redis: the failed delete is remembered, reads skip
// Redis for the key meanwhile, and the key is deleted once Redis takes
// writes again.
func TestDeleteDuringAnOutageIsRetried(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	r := newRedis(t, srv)
	c := r.Client()
	ctx := context.Background()
	require.NoError(t, c.Do(ctx, c.B().Set().Key("strata:items:k").Value("old").Build()).Error())
	// Redis stops taking writes for 800 ms (as if unreachable for them).
	require.NoError(t, c.Do(ctx, c.B().ClientPause().Timeout(800).Write().Build()).Error())
	require.Error(t, r.Del(ctx, "strata:items:k"), "the delete times out")

	_, found, err := r.Get(ctx, "strata:items:k")
	require.NoError(t, err)
	require.False(t, found, "a key whose delete is pending is read from the database, not from Redis")
	require.Eventually(t, func() bool {
		return rueidis.IsRedisNil(c.Do(ctx, c.B().Get().Key("strata:items:k").Build()).Error())
	}, 10*time.Second, 20*time.Millisecond, "the delete is retried once Redis takes writes")
}
