package httpx

import (
	"context"
	"net/http"
	"strings"

	"github.com/stratadev/strata"
)

// ReasonTokenMissing is the reason of a 401 for a request that carried no
// bearer token.
const ReasonTokenMissing = "token_missing"

// TokenVerifier turns a bearer token into the Principal it proves. The auth
// module's verifier does it from its key ring, without a database call.
type TokenVerifier interface {
	Verify(ctx context.Context, raw string) (*strata.Principal, error)
}

// Authenticate verifies the bearer token of a request, when there is one,
// and puts its Principal in the context. A request without an
// Authorization header passes through unauthenticated; a bad token is 401
// at once, with the verifier's reason.
func Authenticate(v TokenVerifier) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := r.Header.Get("Authorization")
			if h == "" {
				next.ServeHTTP(w, r)
				return
			}
			scheme, raw, ok := strings.Cut(h, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(raw) == "" {
				WriteError(w, r, &strata.Error{Code: strata.CodeUnauthenticated, Reason: "token_malformed", Message: "the Authorization header must be \"Bearer <token>\""})
				return
			}
			p, err := v.Verify(r.Context(), strings.TrimSpace(raw))
			if err != nil {
				WriteError(w, r, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(strata.NewContext(r.Context(), p)))
		})
	}
}

// RequireAuth answers 401 when the request carries no Principal and 403
// when the Principal holds none of roles (any role will do when none are
// given). It runs after Authenticate.
func RequireAuth(roles ...strata.Role) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := CheckRole(r.Context(), roles...); err != nil {
				WriteError(w, r, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// CheckRole returns unauthenticated when ctx carries no Principal and
// permission_denied when it holds none of roles.
func CheckRole(ctx context.Context, roles ...strata.Role) error {
	p := strata.PrincipalFrom(ctx)
	if p == nil {
		return &strata.Error{Code: strata.CodeUnauthenticated, Reason: ReasonTokenMissing, Message: "a bearer access token is required"}
	}
	if len(roles) == 0 {
		return nil
	}
	for _, r := range roles {
		if p.HasRole(r) {
			return nil
		}
	}
	return &strata.Error{Code: strata.CodePermissionDenied, Reason: "role_required", Message: "this needs the role " + string(roles[0])}
}
