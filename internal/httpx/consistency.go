package httpx

import (
	"net/http"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/cache"
	"github.com/stratadev/strata/internal/storage/sqldb"
)

// HeaderConsistency carries a client's consistency token: Strata returns
// it on responses to requests that wrote, and a client that sends it back
// on later requests reads its own writes, even from a lagging replica
// (see sqldb.Consistency).
const HeaderConsistency = "Strata-Consistency"

// Consistency is middleware for deployments with read replicas: it parses
// the request's Strata-Consistency token into the context, where reads
// route by it and writes raise it, and returns the token, when it holds
// anything, on the response. A malformed token is 400.
func Consistency(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := sqldb.ParseConsistency(r.Header.Get(HeaderConsistency))
		if err != nil {
			WriteError(w, r, strata.Invalid(HeaderConsistency, "must be the token a Strata response returned"))
			return
		}
		rw := NewResponseWriter(w)
		rw.BeforeHeader(func() {
			if tok := c.String(); tok != "" {
				rw.Header().Set(HeaderConsistency, tok)
			}
		})
		ctx := sqldb.WithConsistency(r.Context(), c)
		if !c.Empty() {
			// Another instance's cached copy may predate the client's
			// write: read through the caches.
			ctx = cache.Fresh(ctx)
		}
		next.ServeHTTP(rw, r.WithContext(ctx))
	})
}
