package main

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/stratadev/strata/internal/cache"
	"github.com/stratadev/strata/internal/ratelimit"
)

// sharedLimiter is the gateway's per-client limit kept in Redis (GCRA),
// so that it holds across every gateway instance. Until Redis has
// connected it answers an error, and the gateway lets requests through.
type sharedLimiter struct {
	redis *cache.Redis
	rate  float64
	burst int
	gcra  atomic.Pointer[ratelimit.GCRA]
}

var errRedisNotConnected = errors.New("redis not connected yet")

func newSharedLimiter(r *cache.Redis, rate float64, burst int) *sharedLimiter {
	return &sharedLimiter{redis: r, rate: rate, burst: burst}
}

func (l *sharedLimiter) Allow(ctx context.Context, key string) (bool, time.Duration, error) {
	g := l.gcra.Load()
	if g == nil {
		c := l.redis.Client()
		if c == nil {
			return false, 0, errRedisNotConnected
		}
		g = ratelimit.NewGCRA(c, "strata:rl:gateway:", l.rate, l.burst, l.redis.Guard())
		l.gcra.CompareAndSwap(nil, g)
		g = l.gcra.Load()
	}
	return g.Allow(ctx, key)
}
