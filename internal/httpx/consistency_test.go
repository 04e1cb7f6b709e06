package httpx_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stratadev/strata/internal/httpx"
	"github.com/stratadev/strata/internal/storage/sqldb"
	"github.com/stretchr/testify/require"
)

// The token comes in with the request, reaches the handler's context, and
// goes back on the response; a malformed one is refused.
func TestConsistencyMiddleware(t *testing.T) {
	var seen string
	h := httpx.Consistency(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = sqldb.ConsistencyFrom(r.Context()).String()
		w.WriteHeader(http.StatusNoContent)
	}))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set(httpx.HeaderConsistency, "a=0/16B3748")
	h.ServeHTTP(rec, req)
	require.Equal(t, "a=0/16B3748", seen)
	require.Equal(t, "a=0/16B3748", rec.Header().Get(httpx.HeaderConsistency))

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	require.Empty(t, rec.Header().Get(httpx.HeaderConsistency), "nothing written, nothing to return")

	rec = httptest.NewRecorder()
	req = httptest.NewRequest("GET", "/", nil)
	req.Header.Set(httpx.HeaderConsistency, "garbage")
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusBadRequest, rec.Code)
}
