package ratelimit

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/stratadev/strata/internal/cache/redistest"
	"github.com/stratadev/strata/internal/resilience"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const prefix = "strata:rl:test:"

// newClient opens a rueidis client on srv, as one instance would.
func newClient(tb testing.TB, srv *redistest.Server) rueidis.Client {
	tb.Helper()
	opt, err := rueidis.ParseURL(srv.URL())
	require.NoError(tb, err)
	opt.Dialer.Timeout = time.Second
	opt.ConnWriteTimeout = 2 * time.Second
	c, err := rueidis.NewClient(opt)
	require.NoError(tb, err)
	tb.Cleanup(c.Close)
	return c
}

func TestBurstThenOneEveryInterval(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := redistest.Start(t)
	client := newClient(t, srv)
	g := NewGCRA(client, prefix, 10, 5, nil)

	for i := range 5 {
		ok, wait, err := g.Allow(ctx, "client-1")
		require.NoError(t, err)
		require.True(t, ok, "event %d of the burst", i+1)
		require.Zero(t, wait)
	}
	ok, wait, err := g.Allow(ctx, "client-1")
	require.NoError(t, err)
	require.False(t, ok, "the event after the burst is refused")
	require.Greater(t, wait, time.Duration(0))
	require.LessOrEqual(t, wait, 100*time.Millisecond)

	// Refused events do not move the TAT on: the wait does not grow.
	for range 20 {
		ok, again, err := g.Allow(ctx, "client-1")
		require.NoError(t, err)
		require.False(t, ok)
		require.LessOrEqual(t, again, wait)
	}

	// The key expires once it is idle again: within burst·T.
	pttl, err := client.Do(ctx, client.B().Pttl().Key(prefix+"client-1").Build()).AsInt64()
	require.NoError(t, err)
	assert.Greater(t, pttl, int64(0))
	assert.LessOrEqual(t, pttl, int64(500))

	// Waiting for the clock (not for asynchronous work): after retryAfter
	// exactly one more event is allowed.
	_, wait, err = g.Allow(ctx, "client-1")
	require.NoError(t, err)
	time.Sleep(wait)
	ok, _, err = g.Allow(ctx, "client-1")
	require.NoError(t, err)
	require.True(t, ok, "one event after retryAfter")
	ok, wait, err = g.Allow(ctx, "client-1")
	require.NoError(t, err)
	require.False(t, ok, "and only one")
	assert.Greater(t, wait, 90*time.Millisecond, "the next one is a whole interval away")
}

func TestKeysAreIndependent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := redistest.Start(t)
	g := NewGCRA(newClient(t, srv), prefix, 1, 2, nil)

	for _, key := range []string{"a", "b"} {
		for range 2 {
			ok, _, err := g.Allow(ctx, key)
			require.NoError(t, err)
			require.True(t, ok, key)
		}
		ok, wait, err := g.Allow(ctx, key)
		require.NoError(t, err)
		require.False(t, ok, key)
		require.Greater(t, wait, 900*time.Millisecond, key)
	}

	// Another prefix is another namespace.
	other := NewGCRA(newClient(t, srv), "strata:rl:other:", 1, 2, nil)
	ok, _, err := other.Allow(ctx, "a")
	require.NoError(t, err)
	require.True(t, ok)
}

// Not parallel: it keeps every CPU busy for a second, which would make the
// timeouts of the tests running beside it fire (and theirs would skew its
// count). Sequential tests run before the parallel ones.
func TestGlobalLimitAcrossInstances(t *testing.T) {
	const (
		rate       = 50
		burst      = 10
		goroutines = 8
		slack      = 5
	)
	srv := redistest.Start(t)
	// Two instances: two clients, the same server and prefix.
	instances := []*GCRA{
		NewGCRA(newClient(t, srv), prefix, rate, burst, nil),
		NewGCRA(newClient(t, srv), prefix, rate, burst, nil),
	}

	var allowed, refused, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for _, g := range instances {
		for range goroutines {
			wg.Go(func() {
				for time.Since(start) < time.Second {
					ok, _, err := g.Allow(context.Background(), "client-1")
					switch {
					case err != nil:
						failed.Add(1)
					case ok:
						allowed.Add(1)
					default:
						refused.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(start)

	require.Zero(t, failed.Load())
	want := rate*elapsed.Seconds() + burst
	got := float64(allowed.Load())
	t.Logf("elapsed %s: %d allowed, %d refused; want %.1f ± %d", elapsed, allowed.Load(), refused.Load(), want, slack)
	assert.InDelta(t, want, got, slack, "one limit for both instances")
	assert.Greater(t, refused.Load(), allowed.Load(), "the limiter was hammered")
}

func TestRedisDownFailsFastAndRecovers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := redistest.Start(t)
	guard := resilience.New("redis", resilience.Config{Timeout: 100 * time.Millisecond, BreakerFailureRate: .5,
		BreakerMinCalls: 5, BreakerWindow: time.Second, BreakerDelay: 200 * time.Millisecond}, nil, nil)
	g := NewGCRA(newClient(t, srv), prefix, 100, 10, guard)
	ok, _, err := g.Allow(ctx, "client-1")
	require.NoError(t, err)
	require.True(t, ok)

	srv.Stop()
	for range 10 {
		begin := time.Now()
		_, _, err := g.Allow(ctx, "client-1")
		require.Error(t, err, "no answer from Redis is an error, not a refusal")
		require.Less(t, time.Since(begin), time.Second, "and comes quickly")
	}
	assert.Equal(t, "open", guard.State())

	// The server comes back empty: its script cache too, so this also
	// covers EVALSHA falling back to EVAL on NOSCRIPT.
	srv.Start()
	require.Eventually(t, func() bool {
		ok, _, err := g.Allow(ctx, "client-1")
		return err == nil && ok
	}, 10*time.Second, 50*time.Millisecond, "the limiter works again once Redis is back")
}

func TestNoClient(t *testing.T) {
	t.Parallel()
	g := NewGCRA(nil, prefix, 1, 1, nil)
	_, _, err := g.Allow(context.Background(), "client-1")
	require.ErrorIs(t, err, errNoClient)
}

func TestNewGCRARejectsBadLimits(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		rate  float64
		burst int
	}{
		"zero rate":     {0, 1},
		"negative rate": {-1, 1},
		"zero burst":    {1, 0},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			assert.Panics(t, func() { NewGCRA(nil, prefix, tc.rate, tc.burst, nil) })
		})
	}
}

func BenchmarkAllow(b *testing.B) {
	srv := redistest.Start(b)
	client := newClient(b, srv)
	ctx := context.Background()
	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = "client-" + strconv.Itoa(i)
	}
	for _, bc := range []struct {
		name string
		keys []string
	}{
		{"one_key", keys[:1]},
		{"many_keys", keys},
	} {
		g := NewGCRA(client, prefix+bc.name+":", 1000, 100, nil)
		b.Run(bc.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				if _, _, err := g.Allow(ctx, bc.keys[i%len(bc.keys)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run(bc.name+"_parallel", func(b *testing.B) {
			// Many callers at once, as on a busy gateway: rueidis
			// pipelines their scripts over one connection.
			b.SetParallelism(16)
			var n atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					if _, _, err := g.Allow(ctx, bc.keys[int(i)%len(bc.keys)]); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
