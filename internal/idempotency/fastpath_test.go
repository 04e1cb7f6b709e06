package idempotency_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stratadev/strata/internal/cache"
	"github.com/stratadev/strata/internal/idempotency"
	"github.com/stretchr/testify/require"
)

// With a replay cache, a retry of a completed key is answered from the
// cache: it replays even with every database gone, while a different
// request under the key still takes the database path (and fails here).
func TestReplayFastPath(t *testing.T) {
	t.Parallel()
	h := setup(t, idempotency.Config{TTL: time.Hour})
	h.store.SetReplayCache(cache.New[idempotency.Replay]("replays", cache.Config{TTL: 10 * time.Minute}, nil, nil))
	p := user(1)
	first := h.post(p, "k1", `{"n":1}`)
	require.Equal(t, http.StatusCreated, first.Code)
	require.NoError(t, h.router.Close())

	again := h.post(p, "k1", `{"n":1}`)
	require.Equal(t, http.StatusCreated, again.Code, "replayed from the cache: %s", again.Body)
	require.Equal(t, first.Body.String(), again.Body.String())
	require.Equal(t, "true", again.Header().Get(idempotency.HeaderReplayed))
	require.Equal(t, int64(1), h.calls.Load())

	other := h.post(p, "k1", `{"n":2}`)
	require.Equal(t, http.StatusServiceUnavailable, other.Code, "a different body is checked against the database")
	otherUser := h.post(user(2), "k1", `{"n":1}`)
	require.Equal(t, http.StatusServiceUnavailable, otherUser.Code, "keys are per user")
}
