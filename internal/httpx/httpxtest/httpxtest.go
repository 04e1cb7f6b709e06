// Package httpxtest builds requests for tests that drive a module's real
// router, like net/http/httptest.
package httpxtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stratadev/strata"
)

// NewRequest returns a server request for method and path. body may be
// nil, a string (sent as is) or any other value (JSON-encoded); a request
// with a body is marked application/json.
func NewRequest(t testing.TB, method, path string, body any) *http.Request {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("encode request body: %v", err)
		}
		rd = bytes.NewReader(buf)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// Verifier is an httpx.TokenVerifier for module tests, which must not
// import the auth module: it accepts the tokens Token makes and refuses
// anything else as the real verifier would (unauthenticated
// "token_invalid").
type Verifier struct{}

// Token is the bearer token Verifier accepts for user with role.
func Token(user strata.ID, role strata.Role) string {
	return "user:" + string(user) + ":" + string(role)
}

// Verify returns the principal of a Token.
func (Verifier) Verify(_ context.Context, raw string) (*strata.Principal, error) {
	parts := strings.Split(raw, ":")
	if len(parts) != 3 || parts[0] != "user" {
		return nil, strata.Errorf(strata.CodeUnauthenticated, "token_invalid", "bad token")
	}
	return &strata.Principal{UserID: strata.ID(parts[1]), Roles: []strata.Role{strata.Role(parts[2])}}, nil
}
