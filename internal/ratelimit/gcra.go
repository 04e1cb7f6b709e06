package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redis/rueidis"
	"github.com/stratadev/strata/internal/resilience"
)

// gcraScript takes one event for KEYS[1], whose value is its TAT in
// microseconds of Redis time. ARGV[1] is the emission interval T and
// ARGV[2] the burst tolerance burst·T, both in microseconds. It returns
// {1, 0} when the event is allowed and {0, wait} when it is refused, wait
// being the microseconds until the next event would be allowed.
//
// Lua numbers are doubles: microseconds since 1970 (about 2^51) are still
// exact integers, but tostring would print them with 14 significant
// digits, so the TAT is written with %.0f.
var gcraScript = rueidis.NewLuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then
  tat = now
end
local newtat = tat + interval
local wait = newtat - tolerance - now
if wait > 0 then
  return {0, wait}
end
local ttl = math.ceil((newtat - now) / 1000)
redis.call('SET', KEYS[1], string.format('%.0f', newtat), 'PX', ttl)
return {1, 0}
`)

// GCRA limits each key to Rate events per second with bursts of Burst, the
// state being one Redis key per limited key (its theoretical arrival time,
// TAT), updated atomically by a Lua script (EVALSHA via rueidis' Lua helper,
// rueidis.NewLuaScript), with a PX expiry so idle keys vanish. Time comes from
// Redis (the TIME command inside the script) so instance clocks need not agree.
type GCRA struct {
	client rueidis.Client
	prefix string
	guard  *resilience.Guard
	// The script's arguments, in microseconds: the emission interval T
	// and the burst tolerance burst·T.
	interval, tolerance string
}

// NewGCRA returns a limiter over client; prefix namespaces its keys
// (e.g. "strata:rl:gateway:"). guard may be nil.
//
// rate must be positive and finite and burst at least 1 (validate them
// with the configuration); NewGCRA panics otherwise. The emission
// interval is kept in whole microseconds, so rates above a million per
// second are limited to a million.
func NewGCRA(client rueidis.Client, prefix string, rate float64, burst int, guard *resilience.Guard) *GCRA {
	if !(rate > 0) || math.IsInf(rate, 0) {
		panic(fmt.Sprintf("ratelimit: rate must be positive and finite, got %g", rate))
	}
	if burst < 1 {
		panic(fmt.Sprintf("ratelimit: burst must be at least 1, got %d", burst))
	}
	t := max(int64(math.Round(1e6/rate)), 1)
	return &GCRA{
		client:    client,
		prefix:    prefix,
		guard:     guard,
		interval:  strconv.FormatInt(t, 10),
		tolerance: strconv.FormatInt(t*int64(burst), 10),
	}
}

var errNoClient = errors.New("redis: not connected")

// Allow takes one event for key. ok is false when the key is over its
// limit; retryAfter then says when the next event would be allowed. err is
// non-nil only when Redis could not answer (the caller decides to fail open).
func (g *GCRA) Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error) {
	if g.client == nil {
		return false, 0, fmt.Errorf("rate limit %s: %w", key, errNoClient)
	}
	var reply []int64
	// Once: the script is not idempotent, a retry after a timeout that
	// did reach Redis would take a second event.
	err = g.guard.Do(ctx, resilience.Once, func(ctx context.Context) error {
		var err error
		reply, err = gcraScript.Exec(ctx, g.client, []string{g.prefix + key}, []string{g.interval, g.tolerance}).AsIntSlice()
		return err
	})
	if err != nil {
		return false, 0, fmt.Errorf("rate limit %s: %w", key, err)
	}
	if len(reply) != 2 {
		return false, 0, fmt.Errorf("rate limit %s: unexpected script reply %v", key, reply)
	}
	if reply[0] == 1 {
		return true, 0, nil
	}
	// Rounded up to the millisecond: waiting retryAfter is always enough.
	ms := (reply[1] + 999) / 1000
	return false, time.Duration(ms) * time.Millisecond, nil
}
