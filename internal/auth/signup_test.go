package auth_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSignupScenarios(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.signup("taken@example.com")

	for _, tc := range []struct {
		name   string
		body   any
		ctype  string
		status int
		code   string
		field  string
	}{
		{name: "buyer by default", body: map[string]string{"email": "New@Example.com", "password": goodPassword, "name": "Ann"}, status: 201},
		{name: "creator", body: map[string]string{"email": "creator@example.com", "password": goodPassword, "name": "Cat", "role": "creator"}, status: 201},
		{name: "admin refused", body: map[string]string{"email": "a@example.com", "password": goodPassword, "name": "A", "role": "admin"}, status: 400, code: "validation_failed", field: "role"},
		{name: "unknown role", body: map[string]string{"email": "a@example.com", "password": goodPassword, "name": "A", "role": "god"}, status: 400, code: "validation_failed", field: "role"},
		{name: "duplicate email, other case", body: map[string]string{"email": "TAKEN@example.com", "password": goodPassword, "name": "B"}, status: 409, code: "email_taken"},
		{name: "malformed json", body: `{"email": "x@example.com",`, status: 400, code: "malformed_json"},
		{name: "unknown field", body: `{"email":"x@example.com","password":"` + goodPassword + `","name":"X","admin":true}`, status: 400, code: "unknown_field", field: "admin"},
		{name: "wrong type", body: `{"email": 42, "password": "` + goodPassword + `", "name": "X"}`, status: 400, code: "invalid_type", field: "email"},
		{name: "oversize body", body: `{"email":"x@example.com","name":"` + strings.Repeat("x", 20<<10) + `","password":"p"}`, status: 413, code: "body_too_large"},
		{name: "empty body", body: "", status: 400, code: "empty_body"},
		{name: "wrong content type", body: `{}`, ctype: "text/plain", status: 415, code: "unsupported_media_type"},
		{name: "missing email", body: map[string]string{"password": goodPassword, "name": "X"}, status: 400, code: "validation_failed", field: "email"},
		{name: "bad email", body: map[string]string{"email": "not-an-email", "password": goodPassword, "name": "X"}, status: 400, code: "validation_failed", field: "email"},
		{name: "control character in email", body: map[string]string{"email": "a\u0000b@example.com", "password": goodPassword, "name": "X"}, status: 400, code: "validation_failed", field: "email"},
		{name: "display name in email", body: map[string]string{"email": "Bob <bob@example.com>", "password": goodPassword, "name": "X"}, status: 400, code: "validation_failed", field: "email"},
		{name: "missing name", body: map[string]string{"email": "n@example.com", "password": goodPassword}, status: 400, code: "validation_failed", field: "name"},
		{name: "short password", body: map[string]string{"email": "s@example.com", "password": "abc12", "name": "S"}, status: 400, code: "password_too_short", field: "password"},
		{name: "common password", body: map[string]string{"email": "c@example.com", "password": "QwertyUiop", "name": "C"}, status: 400, code: "password_common", field: "password"},
		{name: "password contains email", body: map[string]string{"email": "zebrafish@example.com", "password": "my-zebrafish-pass", "name": "Z"}, status: 400, code: "password_contains_identity", field: "password"},
		{name: "missing password", body: map[string]string{"email": "m@example.com", "name": "M"}, status: 400, field: "password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			headers := []string{}
			if tc.ctype != "" {
				headers = append(headers, "Content-Type", tc.ctype)
			}
			r := h.do("POST", "/v1/auth/signup", tc.body, headers...)
			require.Equal(t, tc.status, r.status, "body: %s", r.body)
			if tc.status == http.StatusCreated {
				require.Equal(t, "no-store", r.header.Get("Cache-Control"), "token responses are never cached")
				tk := h.decodeTokens(r)
				require.NotEmpty(t, tk.Access)
				require.NotEmpty(t, tk.Refresh)
				require.Equal(t, "Bearer", tk.Type)
				require.EqualValues(t, 900, tk.Expires)
				require.Equal(t, strings.ToLower(tc.body.(map[string]string)["email"]), tk.User.Email)
				require.False(t, tk.User.EmailVerified)
				want := tc.body.(map[string]string)["role"]
				if want == "" {
					want = "buyer"
				}
				require.Equal(t, []string{want}, tk.User.Roles)
				return
			}
			if tc.code != "" {
				require.Equal(t, tc.code, r.problemCode(t))
			}
			if tc.field != "" {
				require.Contains(t, string(r.body), `"field":"`+tc.field+`"`)
			}
		})
	}
}

func TestConcurrentSignupsOfOneEmail(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const n = 8
	statuses := make(chan int, n)
	for range n {
		go func() {
			statuses <- h.do("POST", "/v1/auth/signup", map[string]string{"email": "race@example.com", "password": goodPassword, "name": "R"}).status
		}()
	}
	created := 0
	for range n {
		switch s := <-statuses; s {
		case http.StatusCreated:
			created++
		default:
			require.Equal(t, http.StatusConflict, s)
		}
	}
	require.Equal(t, 1, created, "exactly one signup of an email wins")
}
