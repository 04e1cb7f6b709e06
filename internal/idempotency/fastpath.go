package idempotency

import (
	"context"
	"net/http"
	"time"

	"github.com/stratadev/strata/internal/cache"
)

// Replay is a recorded response as the fast path caches it.
type Replay struct {
	Hash    string            `json:"hash"` // the fingerprint of the request that made it
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    []byte            `json:"body"`
}

// SetReplayCache makes the store keep every response it records in c too,
// so that a retry of a completed key is replayed from the cache (this
// process, or Redis) without a database transaction. Recorded responses
// never change; c keeps each at most until its key expires. Call it
// before use.
func (s *Store) SetReplayCache(c *cache.Cache[Replay]) { s.replays = c }

func replayKey(scope, key string) string { return scope + "\x00" + key }

// fastReplay replays the cached response of (scope, key) when the request
// is the one that made it, and reports whether it did. A different
// request under the key goes the slow way, which refuses it.
func (s *Store) fastReplay(ctx context.Context, w http.ResponseWriter, scope, key, hash string) bool {
	if s.replays == nil {
		return false
	}
	r, ok := s.replays.Peek(ctx, replayKey(scope, key))
	if !ok || r.Hash != hash {
		return false
	}
	replay(w, &response{status: r.Status, headers: r.Headers, body: r.Body})
	return true
}

// remember caches a response just recorded, until its key expires.
func (s *Store) remember(ctx context.Context, scope, key, hash string, resp response, ttl time.Duration) {
	if s.replays == nil {
		return
	}
	s.replays.Put(ctx, replayKey(scope, key), Replay{Hash: hash, Status: resp.status, Headers: resp.headers, Body: resp.body}, ttl)
}
