package main

import (
	"database/sql"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stratadev/strata/internal/httpx"
	"github.com/stratadev/strata/internal/storage/sqldbtest"
	"github.com/stretchr/testify/require"
)

// callToken is call with a consistency token sent and the returned one
// read back.
func callToken(t *testing.T, method, url string, body any, bearer, token string) (int, map[string]any, string) {
	t.Helper()
	h := http.Header{}
	if token != "" {
		h.Set(httpx.HeaderConsistency, token)
	}
	status, m, got := callWith(t, method, url, body, bearer, h)
	return status, m, got.Get(httpx.HeaderConsistency)
}

// strata serve on PostgreSQL with a streaming replica: writes return a
// consistency token; with replay paused on the replica, a read carrying
// the token sees the write (the primary answers) while one without it is
// served, stale, by the replica within the lag bound.
func TestServeOnPostgresWithAReplica(t *testing.T) {
	t.Parallel()
	pair := sqldbtest.StartPostgresPair(t)
	in := start(t, t.TempDir(), "--shards", "16", "--postgres", "main="+pair.Primary,
		"--postgres-replicas", "main="+pair.Replica, "--replica-max-lag", "1m", "--replica-check-interval", "50ms",
		"--cache=false") // to see the replica's stale answer; with the cache, a token also reads through it
	require.Contains(t, in.stdout.String(), "PostgreSQL, 1 database(s) (main), 1 replica(s), 16 logical shards")

	status, body := call(t, "POST", in.base+"/v1/auth/signup", map[string]string{"email": "maker@example.com",
		"password": "correct horse battery staple", "name": "M", "role": "creator"}, "")
	require.Equal(t, http.StatusCreated, status, "%v", body)
	bearer := body["access_token"].(string)
	pair.WaitReplayed(t)
	time.Sleep(200 * time.Millisecond) // a health check or two

	replica, err := sql.Open("pgx", pair.Replica)
	require.NoError(t, err)
	defer replica.Close()
	_, err = replica.Exec("SELECT pg_wal_replay_pause()")
	require.NoError(t, err)
	defer replica.Exec("SELECT pg_wal_replay_resume()") //nolint:errcheck // best effort

	status, item, token := callToken(t, "POST", in.base+"/v1/items", map[string]any{"title": "Fresh",
		"price": map[string]any{"amount": 100, "currency": "USD"}}, bearer, "")
	require.Equal(t, http.StatusCreated, status, "%v", item)
	require.True(t, strings.HasPrefix(token, "main="), "a write returns the token: %q", token)
	url := in.base + "/v1/items/" + item["id"].(string)

	status, got, _ := callToken(t, "GET", url, nil, bearer, token)
	require.Equal(t, http.StatusOK, status, "read-your-writes with the token: %v", got)
	status, _, _ = callToken(t, "GET", url, nil, bearer, "")
	require.Equal(t, http.StatusNotFound, status, "without it, the paused replica answers, stale")
	status, _, _ = callToken(t, "GET", url, nil, bearer, "main=zz")
	require.Equal(t, http.StatusBadRequest, status)

	metrics := func() string {
		resp, err := http.Get(in.base + "/metrics")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	require.Contains(t, metrics(), "strata_db_replica_healthy{")
	require.Contains(t, metrics(), "strata_db_replica_fallbacks_total{db=\"main\"} ")
}
