package cache

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
	"github.com/stratadev/strata/internal/resilience"
)

// Redis is the shared tier over rueidis. Reads use server-assisted
// client-side caching: a value read once is kept in this process until
// Redis reports that its key changed (RESP3 CLIENT TRACKING), so repeated
// Redis hits cost no round trip. Every call goes through a resilience
// guard (a short timeout and a circuit breaker): with Redis down or slow,
// calls fail fast and the caches go on without it.
type Redis struct {
	client atomic.Pointer[rueidis.Client]
	// pending are keys whose deletion failed (Redis down or slow): their
	// Redis copy may be stale, so reads skip Redis for them and a loop
	// deletes them once Redis answers again.
	mu      sync.Mutex
	pending map[string]struct{}
	// fresh are keys this process deleted in the last second: Redis
	// pushes the invalidation of their client-side copies after the
	// DEL's reply, so for a moment they are read without the client-side
	// cache.
	fresh   map[string]time.Time
	opt     rueidis.ClientOption
	guard   *resilience.Guard
	local   time.Duration // how long a client-side copy may be kept at most
	log     *slog.Logger
	stop    context.CancelFunc
	started chan struct{}
}

// OpenRedis connects to the Redis at url (redis://[user:password@]host:port/db)
// in the background: until it answers, calls fail (and the caches skip
// the tier); a Redis down at start does not stop the instance.
func OpenRedis(url string, guard *resilience.Guard, log *slog.Logger) (*Redis, error) {
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis-url: %w", err)
	}
	opt.Dialer.Timeout = time.Second
	opt.ConnWriteTimeout = 2 * time.Second
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, stop := context.WithCancel(context.Background())
	r := &Redis{opt: opt, guard: guard, local: time.Minute, log: log, stop: stop, started: make(chan struct{}),
		pending: map[string]struct{}{}, fresh: map[string]time.Time{}}
	go r.connect(ctx)
	go r.retryDeletes(ctx)
	return r, nil
}

// maxPending bounds the keys remembered for a later delete; past it, the
// oldest-TTL bound (the values' own expiry) is all that is left.
const maxPending = 100_000

// readMode tells how to read key: skip (a delete is pending), uncached
// (this process just deleted it) or through the client-side cache.
func (r *Redis) readMode(key string) (skip, uncached bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.pending[key]; ok {
		return true, false
	}
	if until, ok := r.fresh[key]; ok {
		if time.Now().Before(until) {
			return false, true
		}
		delete(r.fresh, key)
	}
	return false, false
}

func (r *Redis) deleted(keys []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	until := time.Now().Add(time.Second)
	for _, k := range keys {
		delete(r.pending, k)
		if len(r.fresh) < maxPending {
			r.fresh[k] = until
		}
	}
	if len(r.fresh) > maxPending/2 { // drop the expired ones now and then
		now := time.Now()
		for k, t := range r.fresh {
			if now.After(t) {
				delete(r.fresh, k)
			}
		}
	}
}

func (r *Redis) setPending(keys []string, pending bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range keys {
		if !pending {
			delete(r.pending, k)
		} else if len(r.pending) < maxPending {
			r.pending[k] = struct{}{}
		}
	}
}

// retryDeletes deletes the pending keys once Redis answers again.
func (r *Redis) retryDeletes(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		keys := make([]string, 0, min(len(r.pending), 1000))
		for k := range r.pending {
			if len(keys) == cap(keys) {
				break
			}
			keys = append(keys, k)
		}
		r.mu.Unlock()
		if len(keys) == 0 {
			continue
		}
		if err := r.del(ctx, keys); err == nil {
			r.deleted(keys)
		}
	}
}

// connect dials until Redis answers, then keeps the client (rueidis
// reconnects by itself afterwards).
func (r *Redis) connect(ctx context.Context) {
	defer close(r.started)
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		c, err := rueidis.NewClient(r.opt)
		if err == nil {
			r.client.Store(&c)
			return
		}
		r.log.Warn("redis unreachable; caching in process only until it answers", "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// WaitConnected waits until the first connection is made or ctx ends.
func (r *Redis) WaitConnected(ctx context.Context) error {
	select {
	case <-r.started:
		if r.client.Load() == nil {
			return fmt.Errorf("redis: closed before connecting")
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

var errNotConnected = fmt.Errorf("redis: not connected yet")

func (r *Redis) c() (rueidis.Client, error) {
	p := r.client.Load()
	if p == nil {
		return nil, errNotConnected
	}
	return *p, nil
}

// Get reads key, from this process's tracked copy when it has one. A key
// whose deletion is pending reads as absent.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, bool, error) {
	skip, uncached := r.readMode(key)
	if skip {
		return nil, false, nil
	}
	c, err := r.c()
	if err != nil {
		return nil, false, err
	}
	var val []byte
	var found bool
	err = r.guard.Do(ctx, resilience.Once, func(ctx context.Context) error {
		var res rueidis.RedisResult
		if uncached {
			res = c.Do(ctx, c.B().Get().Key(key).Build())
		} else {
			res = c.DoCache(ctx, c.B().Get().Key(key).Cache(), r.local)
		}
		b, err := res.AsBytes()
		if rueidis.IsRedisNil(err) {
			return nil
		}
		if err != nil {
			return err
		}
		val, found = b, true
		return nil
	})
	return val, found, err
}

// Set writes key with a time to live.
func (r *Redis) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return nil
	}
	c, err := r.c()
	if err != nil {
		return err
	}
	err = r.guard.Do(ctx, resilience.Once, func(ctx context.Context) error {
		return c.Do(ctx, c.B().Set().Key(key).Value(rueidis.BinaryString(val)).Px(ttl).Build()).Error()
	})
	if err == nil {
		r.setPending([]string{key}, false) // a value loaded after the change replaced the stale one
	}
	return err
}

// Del deletes keys; Redis tells every tracking client to drop its copies.
// When it cannot (Redis down, slow, or its breaker open), the keys are
// remembered: this process reads them from the database meanwhile, and
// deletes them once Redis answers again — a change made during an outage
// must not leave a stale copy behind in Redis.
func (r *Redis) Del(ctx context.Context, keys ...string) error {
	err := r.del(ctx, keys)
	if err != nil {
		r.setPending(keys, true)
		return err
	}
	r.deleted(keys)
	return nil
}

func (r *Redis) del(ctx context.Context, keys []string) error {
	c, err := r.c()
	if err != nil {
		return err
	}
	return r.guard.Do(ctx, resilience.Idempotent, func(ctx context.Context) error {
		return c.Do(ctx, c.B().Del().Key(keys...).Build()).Error()
	})
}

// Client returns the rueidis client, nil until connected (the rate
// limiter shares the connection).
func (r *Redis) Client() rueidis.Client {
	c, _ := r.c()
	return c
}

// Guard returns the guard Redis calls go through.
func (r *Redis) Guard() *resilience.Guard { return r.guard }

// Close stops connecting and closes the client.
func (r *Redis) Close() {
	r.stop()
	<-r.started
	if c, err := r.c(); err == nil {
		c.Close()
	}
}
