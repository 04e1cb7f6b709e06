package auth

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/httpx"
)

// maxBody bounds every auth request body.
const maxBody = 16 << 10

type userJSON struct {
	ID            strata.ID     `json:"id"`
	Email         string        `json:"email"`
	Name          string        `json:"name"`
	Roles         []strata.Role `json:"roles"`
	EmailVerified bool          `json:"email_verified"`
	CreatedAt     string        `json:"created_at"` // RFC 3339, milliseconds, UTC
}

func toUserJSON(u *User) userJSON {
	roles := u.Roles
	if roles == nil {
		roles = []strata.Role{}
	}
	return userJSON{ID: u.ID, Email: u.Email, Name: u.Name, Roles: roles, EmailVerified: u.EmailVerified, CreatedAt: u.CreatedAt.UTC().Format("2006-01-02T15:04:05.000Z07:00")}
}

type tokenJSON struct {
	AccessToken  string   `json:"access_token"`
	RefreshToken string   `json:"refresh_token"`
	TokenType    string   `json:"token_type"`
	ExpiresIn    int64    `json:"expires_in"`
	User         userJSON `json:"user"`
}

func (s *Service) tokenJSON(p *TokenPair) tokenJSON {
	return tokenJSON{
		AccessToken: p.AccessToken, RefreshToken: p.RefreshToken, TokenType: "Bearer",
		ExpiresIn: int64(math.Ceil(p.ExpiresAt.Sub(s.clock.Now()).Seconds())), User: toUserJSON(p.User),
	}
}

// noStore marks responses that carry credentials as uncacheable (RFC 6749 §5.1).
func noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// withClient records the caller's address and user agent for throttling
// and audit.
func withClient(trustProxy bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := WithClient(r.Context(), Client{IP: httpx.ClientIP(r, trustProxy), UserAgent: r.UserAgent()})
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

type signupRequest struct {
	Email    string      `json:"email"`
	Password string      `json:"password"`
	Name     string      `json:"name"`
	Role     strata.Role `json:"role"`
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

type emailRequest struct {
	Email string `json:"email"`
}

type resetRequest struct {
	Token    string `json:"token"`
	Password string `json:"password"`
}

type verifyRequest struct {
	Token string `json:"token"`
}

func handleSignup(s *Service) http.Handler {
	return httpx.JSONHandler(http.StatusCreated, maxBody, func(ctx context.Context, req signupRequest) (any, error) {
		p, err := s.Signup(ctx, SignupRequest(req))
		if err != nil {
			return nil, err
		}
		return s.tokenJSON(p), nil
	})
}

func handleLogin(s *Service) http.Handler {
	return httpx.JSONHandler(http.StatusOK, maxBody, func(ctx context.Context, req loginRequest) (any, error) {
		p, err := s.Login(ctx, req.Email, req.Password)
		if err != nil {
			return nil, err
		}
		return s.tokenJSON(p), nil
	})
}

func handleRefresh(s *Service) http.Handler {
	return httpx.JSONHandler(http.StatusOK, maxBody, func(ctx context.Context, req refreshRequest) (any, error) {
		p, err := s.Refresh(ctx, req.RefreshToken)
		if err != nil {
			return nil, err
		}
		return s.tokenJSON(p), nil
	})
}

func handleLogout(s *Service) http.Handler {
	return httpx.JSONHandler(http.StatusNoContent, maxBody, func(ctx context.Context, req refreshRequest) (any, error) {
		return nil, s.Logout(ctx, req.RefreshToken)
	})
}

func handleForgot(s *Service) http.Handler {
	return httpx.JSONHandler(http.StatusAccepted, maxBody, func(ctx context.Context, req emailRequest) (any, error) {
		return nil, s.ForgotPassword(ctx, req.Email)
	})
}

func handleReset(s *Service) http.Handler {
	return httpx.JSONHandler(http.StatusNoContent, maxBody, func(ctx context.Context, req resetRequest) (any, error) {
		return nil, s.ResetPassword(ctx, req.Token, req.Password)
	})
}

func handleVerifyEmail(s *Service) http.Handler {
	return httpx.JSONHandler(http.StatusOK, maxBody, func(ctx context.Context, req verifyRequest) (any, error) {
		u, err := s.VerifyEmail(ctx, req.Token)
		if err != nil {
			return nil, err
		}
		return toUserJSON(u), nil
	})
}

func handleMe(s *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.profile(r.Context())
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		w.Header().Set("Cache-Control", "private, no-store")
		httpx.WriteJSONBytes(w, http.StatusOK, p.body)
	})
}

func handleJWKS(s *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Clients may cache the set for less than the publish-ahead time:
		// a new key is in it well before it signs anything.
		maxAge := min(s.cfg.KeyPublishAhead/2, 10*time.Minute)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(maxAge.Seconds())))
		w.Write(s.ring.Current().JWKS())
	})
}

func handleAudit(s *Service) http.Handler {
	type page struct {
		Events     []AuditEvent `json:"events"`
		NextCursor string       `json:"next_cursor,omitempty"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		f := AuditFilter{UserID: strata.ID(q.Get("user_id")), Event: q.Get("event"), Before: strata.ID(q.Get("cursor")), Limit: 50}
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				httpx.WriteError(w, r, strata.Invalid("limit", "must be an integer"))
				return
			}
			f.Limit = n
		}
		if f.UserID != "" {
			if _, err := strata.ParseID(string(f.UserID), PrefixUser); err != nil {
				httpx.WriteError(w, r, strata.Invalid("user_id", "must be a user id"))
				return
			}
		}
		if f.Before != "" {
			if _, err := strata.ParseID(string(f.Before), PrefixAudit); err != nil {
				httpx.WriteError(w, r, strata.Invalid("cursor", "is not a cursor this endpoint returned"))
				return
			}
		}
		events, err := s.ListAudit(r.Context(), f)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		p := page{Events: events}
		if p.Events == nil {
			p.Events = []AuditEvent{}
		}
		if len(events) == f.Limit {
			p.NextCursor = string(events[len(events)-1].ID)
		}
		httpx.WriteJSON(w, http.StatusOK, p)
	})
}

func handleSetRoles(s *Service) http.Handler {
	type request struct {
		Roles []strata.Role `json:"roles"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := strata.ParseID(r.PathValue("id"), PrefixUser)
		if err != nil {
			httpx.WriteError(w, r, &strata.Error{Code: strata.CodeNotFound, Reason: "user_not_found", Message: "no such user"})
			return
		}
		var req request
		if err := httpx.DecodeJSON(w, r, &req, maxBody); err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		u, err := s.SetRoles(r.Context(), id, req.Roles)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, toUserJSON(u))
	})
}
