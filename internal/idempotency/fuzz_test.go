package idempotency_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stratadev/strata/internal/idempotency"
	"github.com/stratadev/strata/internal/storage/sqldbtest"
	"github.com/stratadev/strata/stratatest"
	"github.com/stretchr/testify/require"
)

// FuzzKey checks that any Idempotency-Key value is either refused with 400
// validation_failed, without running the handler, or accepted as a key:
// the request runs once and its retry is replayed.
func FuzzKey(f *testing.F) {
	for _, seed := range []string{"k", "", " ", "a b", "clé", "key\x00", "\x7f", "!~", "0b9c5a8e-2f1d-4c7a-9e3b-5d6f7a8b9c0d"} {
		f.Add(seed)
	}
	r := sqldbtest.OpenShards(f, numShards, 1)
	sqldbtest.Migrate(f, r, "idempotency", idempotency.Migrations())
	store := idempotency.NewStore(r, stratatest.NewClock(start))
	u := user(1)
	f.Fuzz(func(t *testing.T, key string) {
		calls := 0
		h := idempotency.Middleware(store, idempotency.Config{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls++
			w.WriteHeader(http.StatusCreated)
		}))
		send := func() *http.Response {
			req := newRequest(u, http.MethodPost, "/v1/fuzz", "", body)
			req.Header[idempotency.HeaderKey] = []string{key}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			return w.Result()
		}
		first, second := send(), send()
		if first.StatusCode == http.StatusBadRequest {
			require.Equal(t, http.StatusBadRequest, second.StatusCode)
			require.Zero(t, calls)
			require.True(t, key == "" || len(key) > idempotency.MaxKeyLen || !printable(key), "%q refused", key)
			return
		}
		require.True(t, key != "" && len(key) <= idempotency.MaxKeyLen && printable(key), "%q accepted", key)
		require.Equal(t, http.StatusCreated, second.StatusCode)
		require.LessOrEqual(t, calls, 1, "run at most once (an earlier input may have used the key)")
		require.Equal(t, "true", second.Header.Get(idempotency.HeaderReplayed))
	})
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
