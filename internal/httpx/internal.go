package httpx

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/stratadev/strata"
)

// InternalPrefix starts the paths of the service-to-service API, which
// modules call on each other's instances in a split deployment. The
// gateway never routes it.
const InternalPrefix = "/internal/"

// RequireInternal lets through only requests bearing token, the secret
// every instance of a deployment derives from the master key; others get
// 401 (no credentials) or 403.
func RequireInternal(token string) func(http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got := r.Header.Get("Authorization")
			if !strings.HasPrefix(got, "Bearer ") {
				WriteError(w, r, strata.Errorf(strata.CodeUnauthenticated, ReasonTokenMissing, "the internal API needs the deployment's internal token"))
				return
			}
			if subtle.ConstantTimeCompare([]byte(got), want) != 1 {
				WriteError(w, r, strata.Errorf(strata.CodePermissionDenied, "internal_token_invalid", "the internal token is not this deployment's"))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
