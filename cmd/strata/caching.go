package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/cache"
	"github.com/stratadev/strata/internal/content"
	"github.com/stratadev/strata/internal/idempotency"
	"github.com/stratadev/strata/internal/payments"
	"github.com/stratadev/strata/internal/resilience"
)

// cacheSettings are the settings of the caching tier.
type cacheSettings struct {
	enabled    bool
	tiers      string
	redisURL   string
	ttl        time.Duration
	maxEntries int
	redisGuard resilience.Config
}

func (c *cacheSettings) registerFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&c.enabled, "cache", true, "cache items, listings and entitlements (false reads the database every time)")
	fs.StringVar(&c.tiers, "cache-tiers", "both", "which tiers the item and entitlement caches use: both (in process, then Redis), local (in process only) or redis (Redis only, with its client-side cache); for measuring them apart")
	fs.StringVar(&c.redisURL, "redis-url", "", "redis://[user:password@]host:port[/db] of a Redis shared by the instances as the second cache tier and for rate limits; empty caches in each process only")
	fs.DurationVar(&c.ttl, "cache-ttl", 30*time.Second, "how long a cached item or entitlement is served without reading the database; changes invalidate it at once, this bounds staleness when an event is lost")
	fs.IntVar(&c.maxEntries, "cache-max-entries", 100_000, "entries each in-process cache keeps at most (least valuable evicted first)")
	c.redisGuard.RegisterFlags(fs, "redis", "Redis (a cache read or write, a rate-limit check)", resilience.Config{
		Timeout: 100 * time.Millisecond, BreakerFailureRate: 0.5, BreakerMinCalls: 20, BreakerWindow: 10 * time.Second,
		BreakerDelay: 2 * time.Second, MaxWait: time.Second})
}

func (c *cacheSettings) validate() error {
	if c.ttl < time.Second {
		return fmt.Errorf("cache-ttl: must be at least 1s, got %s", c.ttl)
	}
	switch c.tiers {
	case "both", "local":
	case "redis":
		if c.redisURL == "" {
			return fmt.Errorf("cache-tiers: redis needs --redis-url")
		}
	default:
		return fmt.Errorf("cache-tiers: must be both, local or redis, got %q", c.tiers)
	}
	if c.maxEntries < 100 {
		return fmt.Errorf("cache-max-entries: must be at least 100, got %d", c.maxEntries)
	}
	return c.redisGuard.Validate("redis")
}

// caches are the instance's caches; nil fields when caching is off.
type caches struct {
	redis        *cache.Redis
	content      content.Caches
	entitlements *cache.Cache[bool]
	replays      *cache.Cache[idempotency.Replay]
	subs         []*nats.Subscription
}

// openCaches builds the caches: in-process, and over Redis when
// --redis-url is set.
func openCaches(c cacheSettings, reg prometheus.Registerer, guards *resilience.Metrics, logger *slog.Logger) (*caches, error) {
	cs := &caches{}
	if c.redisURL != "" { // the rate limits use it too, cache or not
		r, err := cache.OpenRedis(c.redisURL, resilience.New("redis", c.redisGuard, guards, logger), logger)
		if err != nil {
			return nil, err
		}
		cs.redis = r
	}
	if !c.enabled {
		return cs, nil
	}
	var remote cache.Remote
	if cs.redis != nil && c.tiers != "local" {
		remote = cs.redis
	}
	m := cache.NewMetrics(reg)
	noLocal := c.tiers == "redis"
	cs.content.Items = cache.New[content.Item]("items", cache.Config{TTL: c.ttl, StaleFor: c.ttl, NegativeTTL: 5 * time.Second,
		Jitter: 0.1, MaxEntries: c.maxEntries, Shared: true, NoLocal: noLocal}, remote, m)
	cs.content.Lists = cache.New[content.ListPage]("listings", cache.Config{TTL: 5 * time.Second, Jitter: 0.1,
		MaxEntries: 1000}, nil, m)
	cs.content.Bodies = cache.New[[]byte]("item_bodies", cache.Config{TTL: c.ttl, Jitter: 0.1, MaxEntries: c.maxEntries}, nil, m)
	cs.entitlements = cache.New[bool]("entitlements", cache.Config{TTL: c.ttl, Jitter: 0.1, MaxEntries: c.maxEntries,
		Shared: true, NoLocal: noLocal}, remote, m)
	cs.replays = cache.New[idempotency.Replay]("replays", cache.Config{TTL: 10 * time.Minute, MaxEntries: c.maxEntries,
		Shared: true, NoLocal: noLocal}, remote, m)
	return cs, nil
}

// subscribe keeps the caches current with every instance's changes.
func (cs *caches) subscribe(nc *nats.Conn, contentSvc *content.Service) error {
	if cs.content.Items == nil {
		return nil
	}
	sub, err := cache.Subscribe(nc, content.InvalidationSubjects, contentSvc.Invalidate)
	if err != nil {
		return err
	}
	cs.subs = append(cs.subs, sub)
	sub, err = cache.Subscribe(nc, payments.SubjectPurchaseRefunded, cs.refunded)
	if err != nil {
		return err
	}
	cs.subs = append(cs.subs, sub)
	return nil
}

// refunded drops the entitlement a refund took away.
func (cs *caches) refunded(_ string, data []byte) {
	var e payments.PurchaseEvent
	if err := json.Unmarshal(data, &e); err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	cs.entitlements.Delete(ctx, entitlementKey(e.BuyerID, e.ItemID))
}

func (cs *caches) close() {
	for _, s := range cs.subs {
		_ = s.Unsubscribe()
	}
	if cs.redis != nil {
		cs.redis.Close()
	}
}

// cachedEntitlements is content's Entitlements through a cache that holds
// only "entitled": a purchase must show at once (nothing to invalidate,
// since "not entitled" is never kept), a refund takes effect when its
// event arrives (within the relay's latency, --cache-ttl at worst).
type cachedEntitlements struct {
	inner content.Entitlements
	cache *cache.Cache[bool]
}

var errNotEntitled = strata.Errorf(strata.CodeNotFound, "not_entitled", "not entitled")

func (c cachedEntitlements) Has(ctx context.Context, user, item strata.ID) (bool, error) {
	ok, err := c.cache.Get(ctx, entitlementKey(user, item), func(ctx context.Context) (bool, error) {
		ok, err := c.inner.Has(ctx, user, item)
		if err == nil && !ok {
			return false, errNotEntitled // not cached: NegativeTTL is 0
		}
		return ok, err
	})
	if err == errNotEntitled {
		return false, nil
	}
	return ok, err
}

func entitlementKey(user, item strata.ID) string { return string(user) + "/" + string(item) }
