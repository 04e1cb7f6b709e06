// Package cache is Strata's cache: a bounded in-process tier (otter) in
// front of an optional shared Redis tier (rueidis, with server-assisted
// client-side caching, so that a Redis hit is served from this process's
// memory until Redis says the key changed), filled cache-aside by a
// loader that reads the database.
//
// A Cache coalesces concurrent misses of one key into one load
// (singleflight), jitters every TTL so that keys cached together do not
// expire together, caches "not found" for a short while, serves a stale
// value while one request refreshes it (stale-while-revalidate) and when
// the loader fails (stale-if-error). It is best-effort: a Redis that is
// down or slow (behind a circuit breaker) is skipped, and the loader's
// answer is served; a client never sees an error because of the cache.
//
// Invalidation: the instance that changes something deletes its keys at
// once from both tiers (Delete); every other instance forgets its local
// copy when the change's event reaches it (Forget, wired to the outbox
// events by Invalidator), and Redis's tracking drops their client-side
// copies of the Redis keys. The TTL bounds staleness if an event is lost.
package cache

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/stratadev/strata"
	"golang.org/x/sync/singleflight"
)

// Config tunes one cache.
type Config struct {
	// TTL is how long a value is served as fresh.
	TTL time.Duration
	// StaleFor is how long after TTL a value may still be served: at once
	// while one request reloads it, or when the reload fails. 0: never.
	StaleFor time.Duration
	// NegativeTTL is how long "not found" is cached; 0: not cached.
	NegativeTTL time.Duration
	// Jitter spreads every TTL by up to this fraction (0.1: ±10 %).
	Jitter float64
	// MaxEntries bounds the in-process tier.
	MaxEntries int
	// Shared keeps values in the Redis tier too (when one is configured);
	// false keeps them in this process only (listings, say).
	Shared bool
	// NoLocal skips the in-process tier: every lookup asks the Redis tier
	// (whose client-side cache still answers repeated reads in process).
	// For measuring the tiers apart; a deployment wants both.
	NoLocal bool
}

// Remote is the shared tier.
type Remote interface {
	// Get returns the value of key; ok is false when there is none.
	Get(ctx context.Context, key string) (val []byte, ok bool, err error)
	Set(ctx context.Context, key string, val []byte, ttl time.Duration) error
	Del(ctx context.Context, keys ...string) error
}

// Cache caches values of type V by string key. It is safe for concurrent
// use.
type Cache[V any] struct {
	name    string
	cfg     Config
	local   *otter.Cache[string, *entry[V]]
	remote  Remote // nil: in-process only
	flight  singleflight.Group
	metrics *cacheMetrics
	now     func() time.Time
}

// entry is a cached value or a cached "not found".
type entry[V any] struct {
	val      V
	notFound *strata.Error // set when the key names nothing
	fresh    time.Time     // served as fresh until
	stale    time.Time     // served at all until
}

// envelope is an entry as the Redis tier keeps it.
type envelope[V any] struct {
	Val      V     `json:"v"`
	NotFound bool  `json:"nf,omitempty"`
	Fresh    int64 `json:"f"` // unix ms
}

// New returns a cache named name (for metrics and Redis keys). remote may
// be nil; m may be nil.
func New[V any](name string, cfg Config, remote Remote, m *Metrics) *Cache[V] {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 10_000
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	cm := m.forCache(name)
	local := otter.Must(&otter.Options[string, *entry[V]]{
		MaximumSize: cfg.MaxEntries,
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, *entry[V]]) time.Duration {
			return time.Until(e.Value.stale)
		}),
		OnDeletion: func(e otter.DeletionEvent[string, *entry[V]]) {
			if e.Cause == otter.CauseOverflow {
				cm.evictions.Inc()
			}
		},
	})
	if !cfg.Shared {
		remote = nil
	}
	return &Cache[V]{name: name, cfg: cfg, local: local, remote: remote, metrics: cm, now: time.Now}
}

type freshKey struct{}

// Fresh returns ctx marked so that lookups under it skip cached values,
// load, and cache what they loaded: the reads of a client that must see
// its own writes (one that sent a consistency token), which another
// instance's cached copy might not hold yet.
func Fresh(ctx context.Context) context.Context { return context.WithValue(ctx, freshKey{}, true) }

func mustBeFresh(ctx context.Context) bool { return ctx.Value(freshKey{}) != nil }

// Get returns the value of key, from the cache or else from load. A
// not_found error from load is cached (NegativeTTL) and returned again;
// other errors are not cached, and a stale value, when there is one, is
// served in their place.
func (c *Cache[V]) Get(ctx context.Context, key string, load func(context.Context) (V, error)) (V, error) {
	if mustBeFresh(ctx) {
		e, err := c.loadAndStore(ctx, key, load)
		if err != nil {
			var zero V
			return zero, err
		}
		return e.result()
	}
	now := c.now()
	if e, ok := c.getLocal(key); ok {
		if now.Before(e.fresh) {
			c.metrics.hit("local")
			return e.result()
		}
		if now.Before(e.stale) {
			// Stale: serve it, and let one request refresh it.
			c.metrics.stale.Inc()
			c.refresh(key, load)
			return e.result()
		}
	}
	leader := false
	v, err, shared := c.flight.Do(key, func() (any, error) {
		leader = true
		return c.fill(ctx, key, load)
	})
	if shared && !leader { // waited for another lookup's load
		c.metrics.coalesced.Inc()
	}
	if err != nil {
		var zero V
		return zero, err
	}
	return v.(*entry[V]).result()
}

// fill is a miss: the Redis tier, else the loader.
func (c *Cache[V]) fill(ctx context.Context, key string, load func(context.Context) (V, error)) (*entry[V], error) {
	if e := c.fromRemote(ctx, key); e != nil {
		c.setLocal(key, e)
		return e, nil
	}
	return c.loadAndStore(ctx, key, load)
}

// loadAndStore runs the loader and caches its answer in both tiers.
func (c *Cache[V]) loadAndStore(ctx context.Context, key string, load func(context.Context) (V, error)) (*entry[V], error) {
	c.metrics.miss.Inc()
	v, err := load(ctx)
	c.metrics.load(err)
	var e *entry[V]
	switch {
	case err == nil:
		e = c.newEntry(v, nil)
	case strata.ErrorCode(err) == strata.CodeNotFound && c.cfg.NegativeTTL > 0:
		var se *strata.Error
		errors.As(err, &se)
		e = c.newEntry(v, se)
	default:
		// stale-if-error: the loader failed; an expired value is better
		// than none, within StaleFor.
		if old, ok := c.getLocal(key); ok && c.now().Before(old.stale) {
			c.metrics.stale.Inc()
			return old, nil
		}
		return nil, err
	}
	c.setLocal(key, e)
	c.toRemote(ctx, key, e)
	return e, nil
}

func (c *Cache[V]) getLocal(key string) (*entry[V], bool) {
	if c.cfg.NoLocal {
		return nil, false
	}
	return c.local.GetIfPresent(key)
}

func (c *Cache[V]) setLocal(key string, e *entry[V]) {
	if !c.cfg.NoLocal {
		c.local.Set(key, e)
	}
}

// refresh reloads key in the background, once however many ask.
func (c *Cache[V]) refresh(key string, load func(context.Context) (V, error)) {
	go c.flight.Do(key, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c.metrics.miss.Inc()
		v, err := load(ctx)
		c.metrics.load(err)
		if err != nil && strata.ErrorCode(err) != strata.CodeNotFound {
			return nil, err // keep serving the stale value
		}
		var se *strata.Error
		errors.As(err, &se)
		e := c.newEntry(v, se)
		c.setLocal(key, e)
		c.toRemote(ctx, key, e)
		return e, nil
	})
}

func (c *Cache[V]) newEntry(v V, notFound *strata.Error) *entry[V] {
	ttl := c.cfg.TTL
	stale := c.cfg.StaleFor
	if notFound != nil {
		ttl, stale = c.cfg.NegativeTTL, 0
	}
	ttl = c.jitter(ttl)
	now := c.now()
	return &entry[V]{val: v, notFound: notFound, fresh: now.Add(ttl), stale: now.Add(ttl + stale)}
}

func (c *Cache[V]) jitter(d time.Duration) time.Duration {
	if c.cfg.Jitter <= 0 || d <= 0 {
		return d
	}
	span := float64(d) * c.cfg.Jitter
	return d + time.Duration((rand.Float64()*2-1)*span)
}

func (e *entry[V]) result() (V, error) {
	if e.notFound != nil {
		var zero V
		return zero, e.notFound
	}
	return e.val, nil
}

func (c *Cache[V]) remoteKey(key string) string { return "strata:" + c.name + ":" + key }

func (c *Cache[V]) fromRemote(ctx context.Context, key string) *entry[V] {
	if c.remote == nil {
		return nil
	}
	raw, ok, err := c.remote.Get(ctx, c.remoteKey(key))
	if err != nil {
		c.metrics.remoteErrors.Inc()
		return nil
	}
	if !ok {
		return nil
	}
	var env envelope[V]
	if json.Unmarshal(raw, &env) != nil {
		c.metrics.remoteErrors.Inc()
		return nil
	}
	c.metrics.hit("redis")
	fresh := time.UnixMilli(env.Fresh)
	e := &entry[V]{val: env.Val, fresh: fresh, stale: fresh.Add(c.cfg.StaleFor)}
	if env.NotFound {
		e.notFound = strata.Errorf(strata.CodeNotFound, "not_found", "not found")
		e.stale = fresh
	}
	if !c.now().Before(e.stale) {
		return nil
	}
	return e
}

func (c *Cache[V]) toRemote(ctx context.Context, key string, e *entry[V]) {
	if c.remote == nil {
		return
	}
	env := envelope[V]{Val: e.val, NotFound: e.notFound != nil, Fresh: e.fresh.UnixMilli()}
	raw, err := json.Marshal(env)
	if err != nil {
		return
	}
	if err := c.remote.Set(ctx, c.remoteKey(key), raw, time.Until(e.stale)); err != nil {
		c.metrics.remoteErrors.Inc()
	}
}

// Peek returns the value of key when a tier holds it fresh, without
// loading anything: for values that are put, not loaded (Put).
func (c *Cache[V]) Peek(ctx context.Context, key string) (V, bool) {
	now := c.now()
	if e, ok := c.getLocal(key); ok && now.Before(e.fresh) && e.notFound == nil {
		c.metrics.hit("local")
		return e.val, true
	}
	if e := c.fromRemote(ctx, key); e != nil && now.Before(e.fresh) && e.notFound == nil {
		c.setLocal(key, e)
		return e.val, true
	}
	c.metrics.miss.Inc()
	var zero V
	return zero, false
}

// Put caches v under key in both tiers for at most ttl (and at most the
// cache's TTL): for values that never change once made, like a recorded
// response.
func (c *Cache[V]) Put(ctx context.Context, key string, v V, ttl time.Duration) {
	ttl = min(ttl, c.cfg.TTL)
	if ttl <= 0 {
		return
	}
	now := c.now()
	e := &entry[V]{val: v, fresh: now.Add(ttl), stale: now.Add(ttl)}
	c.setLocal(key, e)
	c.toRemote(ctx, key, e)
}

// Delete drops keys from both tiers: the writer's call after a change
// commits, so that its own next read sees the change.
func (c *Cache[V]) Delete(ctx context.Context, keys ...string) {
	c.Forget(keys...)
	if c.remote == nil || len(keys) == 0 {
		return
	}
	rk := make([]string, len(keys))
	for i, k := range keys {
		rk[i] = c.remoteKey(k)
	}
	if err := c.remote.Del(ctx, rk...); err != nil {
		c.metrics.remoteErrors.Inc()
	}
}

// Forget drops keys from this process's tier only. An instance told of
// another's change should Delete instead: besides making sure Redis holds
// no stale copy, that makes it read the keys past its client-side copy,
// whose invalidation Redis may not have pushed yet.
func (c *Cache[V]) Forget(keys ...string) {
	for _, k := range keys {
		c.local.Invalidate(k)
	}
}

// Clear drops every key of this process's tier (a listing cache, when any
// item changes).
func (c *Cache[V]) Clear() { c.local.InvalidateAll() }
