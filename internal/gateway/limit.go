package gateway

import (
	"context"
	"math"
	"time"

	"github.com/maypok86/otter/v2"
	"golang.org/x/time/rate"
)

// Limiter decides whether a client may send one more request. key names
// the client. A Limiter that fails (its store unreachable) returns an
// error, and the gateway lets the request through: a limiter outage must
// not become an outage of the API.
type Limiter interface {
	Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error)
}

// LocalLimiter is a token bucket per client in this process: each client
// sustains Rate requests per second with bursts of Burst. Buckets of
// clients not seen for a while are dropped; at most maxClients are kept,
// the least recently active going first. With several gateways each holds
// its own buckets, so a client gets up to n times the rate; the Redis
// limiter shares them.
type LocalLimiter struct {
	limit   rate.Limit
	burst   int
	buckets *otter.Cache[string, *rate.Limiter]
}

const maxClients = 100_000

// NewLocalLimiter returns a limiter of perSecond requests per client with
// bursts of burst.
func NewLocalLimiter(perSecond float64, burst int) *LocalLimiter {
	// A full bucket refills in burst/perSecond; an idle client's bucket is
	// full again by then, so forgetting it changes nothing.
	idle := time.Duration(float64(burst)/perSecond*float64(time.Second)) + time.Minute
	c := otter.Must(&otter.Options[string, *rate.Limiter]{
		MaximumSize:      maxClients,
		ExpiryCalculator: otter.ExpiryAccessing[string, *rate.Limiter](idle),
	})
	return &LocalLimiter{limit: rate.Limit(perSecond), burst: burst, buckets: c}
}

// Allow takes a token from key's bucket, or tells how long until one is there.
func (l *LocalLimiter) Allow(_ context.Context, key string) (bool, time.Duration, error) {
	b, ok := l.buckets.GetIfPresent(key)
	if !ok {
		b, _ = l.buckets.ComputeIfAbsent(key, func() (*rate.Limiter, bool) {
			return rate.NewLimiter(l.limit, l.burst), false
		})
	}
	now := time.Now()
	r := b.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, time.Duration(math.Ceil(d.Seconds())) * time.Second, nil
	}
	return true, 0, nil
}
