package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/storage/sqldb"
	"github.com/stretchr/testify/require"
)

// databaseOf names the SQLite file holding user id's shard in a new
// deployment of shards logical shards spread over files databases.
func databaseOf(t *testing.T, id string, shards, files int) string {
	t.Helper()
	s, ok := strata.ID(id).Shard()
	require.True(t, ok, id)
	return sqliteName(s * files / shards)
}

// With --sqlite-shards the logical shards spread over several files: a
// buyer and a creator in different files still buy and sell (the saga
// credits the creator), and the ledger verifies across all of them.
func TestShardedSQLiteCrossDatabasePurchase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := start(t, dir, "--sqlite-shards", "3", "--shards", "16", "--fee-basis-points", "1000")
	for _, name := range []string{"strata.db", "strata-1.db", "strata-2.db"} {
		_, err := os.Stat(filepath.Join(dir, name))
		require.NoError(t, err, name)
	}
	require.Contains(t, in.stdout.String(), "3 database(s) (strata, strata-1, strata-2), 16 logical shards, shard map version 1")

	signup := func(email, role string) (token, id string) {
		status, body := call(t, "POST", in.base+"/v1/auth/signup", map[string]string{"email": email, "password": "correct horse battery staple", "name": "X", "role": role}, "")
		require.Equal(t, http.StatusCreated, status, "%v", body)
		return body["access_token"].(string), body["user"].(map[string]any)["id"].(string)
	}
	creator, creatorID := signup("seller@example.com", "creator")
	users := int64(1)
	var buyer, buyerID string
	for i := 0; ; i++ {
		require.Less(t, i, 50, "every buyer landed in the creator's database")
		tok, id := signup("buyer"+string(rune('a'+i))+"@example.com", "buyer")
		users++
		if databaseOf(t, id, 16, 3) != databaseOf(t, creatorID, 16, 3) {
			buyer, buyerID = tok, id
			break
		}
	}
	// Login by email finds the user whatever file holds them.
	status, body := call(t, "POST", in.base+"/v1/auth/login", map[string]string{"email": "seller@example.com", "password": "correct horse battery staple"}, "")
	require.Equal(t, http.StatusOK, status, "%v", body)

	itemID, _ := publishItem(t, in, creator, 500)

	status, body = call(t, "POST", in.base+"/v1/topups", map[string]any{"amount": map[string]any{"amount": 1000, "currency": "USD"},
		"card": map[string]any{"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}}, buyer)
	require.Equal(t, http.StatusCreated, status, "%v", body)
	status, body = call(t, "POST", in.base+"/v1/purchases", map[string]any{"item_id": itemID}, buyer)
	require.Equal(t, http.StatusCreated, status, "%v", body)
	require.Equal(t, "saga", body["settlement"])
	require.Equal(t, buyerID, body["buyer_id"])

	// The buyer downloads at once; the worker credits the creator soon after.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequest("GET", in.base+"/v1/items/"+itemID+"/download", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+buyer)
	resp, err := noRedirect.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	require.Eventually(t, func() bool {
		_, body := call(t, "GET", in.base+"/v1/wallet", nil, creator)
		return len(body["earnings"].([]any)) == 1 &&
			body["earnings"].([]any)[0].(map[string]any)["available"] == float64(450)
	}, 20*time.Second, 50*time.Millisecond, "the creator is credited the price less the 10% fee")
	status, body = call(t, "GET", in.base+"/v1/wallet", nil, buyer)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, []any{map[string]any{"available": float64(500), "currency": "USD"}}, body["balances"])
	in.stop(t)

	var out, errOut syncBuffer
	err = run(context.Background(), []string{"ledger", "verify", "--data-dir", dir, "--sqlite-shards", "3", "--shards", "16"},
		noEnv, strings.NewReader(""), &out, &errOut)
	require.NoError(t, err, "out: %s\nerr: %s", out.String(), errOut.String())
	require.Contains(t, out.String(), "ok: 11 invariants hold")
	require.Equal(t, 3, strings.Count(out.String(), "database "), out.String())

	out = syncBuffer{}
	err = run(context.Background(), []string{"shards", "list", "--format", "json", "--data-dir", dir, "--sqlite-shards", "3", "--shards", "16"},
		noEnv, strings.NewReader(""), &out, &errOut)
	require.NoError(t, err, "err: %s", errOut.String())
	var l shardListing
	require.NoError(t, json.Unmarshal([]byte(out.String()), &l))
	require.Equal(t, int64(1), l.Version)
	require.Equal(t, []string{"strata", "strata-1", "strata-2"}, l.Databases)
	require.Empty(t, l.Stray)
	counts := map[string]int64{}
	for _, row := range l.PerShard {
		for what, n := range row.Rows {
			counts[what] += n
		}
	}
	require.Equal(t, users, counts["users"], "every signup counted once, on its shard")
	require.Equal(t, int64(1), counts["items"])
	require.Equal(t, int64(1), counts["purchases"])

	// The shard map remembers where the shards live: fewer files cannot serve them.
	err = run(context.Background(), []string{"serve", "--data-dir", dir, "--shards", "16", "--http-addr", "127.0.0.1:0"},
		noEnv, strings.NewReader(""), io.Discard, io.Discard)
	require.ErrorContains(t, err, `which is not configured`)
}

// A data directory made before shard maps (all shards in strata.db) keeps
// every shard in strata.db when more files are configured.
func TestLegacyDeploymentKeepsItsShards(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := start(t, dir, "--shards", "16")
	// Eight users: all eight on shards 0-7 (where an even map over two
	// files would still find them) happens once in 256 runs.
	emails := []string{"a@x.io", "b@x.io", "c@x.io", "d@x.io", "e@x.io", "f@x.io", "g@x.io", "h@x.io"}
	for _, email := range emails {
		status, body := call(t, "POST", in.base+"/v1/auth/signup", map[string]string{"email": email, "password": "correct horse battery staple", "name": "A", "role": "buyer"}, "")
		require.Equal(t, http.StatusCreated, status, "%v", body)
	}
	in.stop(t)
	// As it was before shard maps existed.
	db, err := sqldb.OpenSQLite(context.Background(), filepath.Join(dir, "strata.db"), sqldb.SQLiteOptions{})
	require.NoError(t, err)
	_, err = db.Writer().Exec("DROP TABLE strata_shard_map; DROP TABLE strata_shard_map_meta; DROP TABLE goose_shardmap")
	require.NoError(t, err)
	require.NoError(t, db.Close())

	in = start(t, dir, "--shards", "16", "--sqlite-shards", "2")
	require.Contains(t, in.stdout.String(), "2 database(s) (strata, strata-1), 16 logical shards, shard map version 1")
	for _, email := range emails {
		status, body := call(t, "POST", in.base+"/v1/auth/login", map[string]string{"email": email, "password": "correct horse battery staple"}, "")
		require.Equal(t, http.StatusOK, status, "%s: %v", email, body)
	}
}
