package idempotency_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/httpx"
	"github.com/stratadev/strata/internal/idempotency"
	"github.com/stratadev/strata/internal/storage/sqldb"
	"github.com/stratadev/strata/internal/storage/sqldbtest"
	"github.com/stratadev/strata/stratatest"
	"github.com/stretchr/testify/require"
)

// Tests spread 8 logical shards over 3 SQLite files: shards 0-2 live on
// the first, 3-5 on the second, 6-7 on the third.
const (
	numShards = 8
	numFiles  = 3
)

var start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// reply is what the test handler answers.
type reply struct {
	status  int
	body    []byte
	headers map[string]string
}

// harness is the middleware over real SQLite shards and a fake clock,
// wrapping a handler that counts its calls.
type harness struct {
	router *sqldb.Router
	store  *idempotency.Store
	clock  *stratatest.Clock
	h      http.Handler

	calls atomic.Int64
	mu    sync.Mutex
	// reply returns the answer of call n (1-based); by default 201 with
	// {"id":"thing_<n>"} and Location /v1/things/thing_<n>.
	reply func(n int64) reply
	// before, when set, runs at the start of call n (to block it, say).
	before func(n int64)
	// bodies are the request bodies the handler read, in call order.
	bodies []string
}

func setup(t *testing.T, cfg idempotency.Config) *harness {
	t.Helper()
	r := sqldbtest.OpenShards(t, numShards, numFiles)
	require.NoError(t, idempotency.Migrate(context.Background(), r))
	clock := stratatest.NewClock(start)
	store := idempotency.NewStore(r, clock)
	h := &harness{router: r, store: store, clock: clock, reply: created}
	h.h = httpx.Chain(http.HandlerFunc(h.serve), httpx.Recover, idempotency.Middleware(store, cfg))
	return h
}

func created(n int64) reply {
	id := fmt.Sprintf("thing_%d", n)
	return reply{
		status: http.StatusCreated,
		body:   []byte(`{"id":"` + id + `"}`),
		headers: map[string]string{
			"Content-Type":           "application/json",
			"X-Content-Type-Options": "nosniff",
			"Location":               "/v1/things/" + id,
			"Set-Cookie":             "session=secret", // never recorded
			"X-Call":                 fmt.Sprint(n),    // not a replayed header
		},
	}
}

// replyWith answers every call with status and a JSON body naming the call.
func replyWith(status int) func(int64) reply {
	return func(n int64) reply {
		rp := created(n)
		rp.status = status
		if status == http.StatusNoContent {
			rp.body = nil
		}
		return rp
	}
}

func (h *harness) setReply(f func(int64) reply) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reply = f
}

func (h *harness) setBefore(f func(int64)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.before = f
}

func (h *harness) serve(w http.ResponseWriter, r *http.Request) {
	n := h.calls.Add(1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		panic(err)
	}
	h.mu.Lock()
	h.bodies = append(h.bodies, string(body))
	before, replyFunc := h.before, h.reply
	h.mu.Unlock()
	if before != nil {
		before(n)
	}
	rp := replyFunc(n)
	for k, v := range rp.headers {
		w.Header().Set(k, v)
	}
	w.WriteHeader(rp.status)
	_, _ = w.Write(rp.body)
}

func (h *harness) handlerBodies() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.bodies...)
}

// user returns a principal whose user id lives on shard.
func user(shard int) *strata.Principal {
	return &strata.Principal{UserID: strata.NewID("usr", shard, start), Roles: []strata.Role{strata.RoleBuyer}}
}

// newRequest builds a request from p (nil: anonymous) with the key header
// (none when key is "").
func newRequest(p *strata.Principal, method, target, key, body string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if key != "" {
		r.Header.Set(idempotency.HeaderKey, key)
	}
	if p != nil {
		r = r.WithContext(strata.NewContext(r.Context(), p))
	}
	return r
}

func (h *harness) send(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.h.ServeHTTP(w, r)
	return w
}

func (h *harness) post(p *strata.Principal, key, body string) *httptest.ResponseRecorder {
	return h.send(newRequest(p, http.MethodPost, "/v1/things", key, body))
}

// rows counts the idempotency rows of each physical database.
func (h *harness) rows(t *testing.T) []int {
	t.Helper()
	var out []int
	for _, db := range h.router.DBs() {
		var n int
		require.NoError(t, db.Reader().QueryRowContext(context.Background(), "SELECT count(*) FROM idempotency_keys").Scan(&n))
		out = append(out, n)
	}
	return out
}

func problem(t *testing.T, w *httptest.ResponseRecorder) httpx.Problem {
	t.Helper()
	require.Equal(t, httpx.ContentTypeProblem, w.Header().Get("Content-Type"), w.Body.String())
	var p httpx.Problem
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p))
	return p
}

// requireFresh checks that w is an answer of the handler, not a replay.
func requireFresh(t *testing.T, w *httptest.ResponseRecorder, status int) {
	t.Helper()
	require.Equal(t, status, w.Code, w.Body.String())
	require.Empty(t, w.Header().Values(idempotency.HeaderReplayed), "only replays are marked")
}

// requireReplay checks that w replays first exactly, with the marker.
func requireReplay(t *testing.T, first, w *httptest.ResponseRecorder) {
	t.Helper()
	require.Equal(t, first.Code, w.Code)
	require.Equal(t, first.Body.String(), w.Body.String())
	for _, name := range []string{"Content-Type", "Location", "X-Content-Type-Options"} {
		require.Equal(t, first.Header().Get(name), w.Header().Get(name), name)
	}
	require.Equal(t, "true", w.Header().Get(idempotency.HeaderReplayed))
	require.Empty(t, w.Header().Get("Set-Cookie"), "cookies are never replayed")
	require.Empty(t, w.Header().Get("X-Call"), "only the chosen headers are replayed")
}
