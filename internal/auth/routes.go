package auth

import (
	"net/http"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/httpx"
)

// Routes registers every auth route on mux. trustProxy says whether
// X-Forwarded-For names the client (only behind a trusted proxy).
func Routes(mux *httpx.Mux, s *Service, trustProxy bool) {
	client := withClient(trustProxy)
	authn := httpx.Authenticate(s.Verifier())
	// Reading one's own profile records nothing about the client.
	user := func(h http.Handler) http.Handler { return httpx.Chain(h, authn, httpx.RequireAuth()) }
	admin := func(h http.Handler) http.Handler {
		return httpx.Chain(h, client, authn, httpx.RequireAuth(strata.RoleAdmin))
	}
	public := func(h http.Handler) http.Handler { return httpx.Chain(h, client) }

	mux.Handle("POST /v1/auth/signup", public(noStore(handleSignup(s))))
	mux.Handle("POST /v1/auth/login", public(noStore(handleLogin(s))))
	mux.Handle("POST /v1/auth/refresh", public(noStore(handleRefresh(s))))
	mux.Handle("POST /v1/auth/logout", public(handleLogout(s)))
	mux.Handle("GET /v1/auth/me", user(handleMe(s)))
	mux.Handle("POST /v1/auth/password/forgot", public(handleForgot(s)))
	mux.Handle("POST /v1/auth/password/reset", public(handleReset(s)))
	mux.Handle("POST /v1/auth/email/verify", public(handleVerifyEmail(s)))
	mux.Handle("GET /.well-known/jwks.json", handleJWKS(s))
	mux.Handle("GET /v1/admin/audit", admin(handleAudit(s)))
	mux.Handle("PUT /v1/admin/users/{id}/roles", admin(handleSetRoles(s)))
}
