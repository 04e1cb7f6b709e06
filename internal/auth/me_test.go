package auth_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

// jwks fetches the served key set.
func jwks(t *testing.T, h *harness) []map[string]string {
	t.Helper()
	r := h.do("GET", "/.well-known/jwks.json", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, r.header.Get("Cache-Control"), "max-age=")
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(r.body, &set))
	return set.Keys
}

func TestJWKS(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	keys := jwks(t, h)
	require.Len(t, keys, 1)
	k := keys[0]
	require.Equal(t, "OKP", k["kty"])
	require.Equal(t, "Ed25519", k["crv"])
	require.Equal(t, "EdDSA", k["alg"])
	require.NotEmpty(t, k["kid"])
	x, err := base64.RawURLEncoding.DecodeString(k["x"])
	require.NoError(t, err)
	require.Len(t, x, ed25519.PublicKeySize)
	require.NotContains(t, k, "d", "the private half is never published")
}

func TestMeAndTokenScenarios(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tk := h.signup("me@example.com")
	key := jwks(t, h)[0]
	pub, err := base64.RawURLEncoding.DecodeString(key["x"])
	require.NoError(t, err)

	claims := func(mut func(jwt.MapClaims)) jwt.MapClaims {
		now := h.clock.Now()
		c := jwt.MapClaims{
			"iss": h.cfg.Issuer, "aud": h.cfg.Audience, "sub": tk.User.ID, "roles": []string{"buyer"},
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "jti": "x",
		}
		if mut != nil {
			mut(c)
		}
		return c
	}
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	signEd := func(kid string, c jwt.MapClaims) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(otherKey)
		require.NoError(t, err)
		return s
	}
	hs256 := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(nil))
		tok.Header["kid"] = key["kid"]
		s, err := tok.SignedString(pub) // the classic confusion: the public key as HMAC secret
		require.NoError(t, err)
		return s
	}
	none := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil))
		tok.Header["kid"] = key["kid"]
		s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		require.NoError(t, err)
		return s
	}
	tampered := func() string {
		parts := strings.Split(tk.Access, ".")
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		require.NoError(t, err)
		payload = []byte(strings.Replace(string(payload), `"buyer"`, `"admin"`, 1))
		parts[1] = base64.RawURLEncoding.EncodeToString(payload)
		return strings.Join(parts, ".")
	}

	for _, tc := range []struct {
		name   string
		header []string
		status int
		code   string
	}{
		{name: "valid", header: bearer(tk.Access), status: 200},
		{name: "no token", status: 401, code: "token_missing"},
		{name: "not bearer", header: []string{"Authorization", "Basic dXNlcjpwYXNz"}, status: 401, code: "token_malformed"},
		{name: "garbage", header: bearer("not.a.jwt"), status: 401, code: "token_malformed"},
		{name: "tampered payload", header: bearer(tampered()), status: 401, code: "token_signature_invalid"},
		{name: "alg none", header: bearer(none()), status: 401, code: "token_algorithm_invalid"},
		{name: "HS256 with the public key", header: bearer(hs256()), status: 401, code: "token_algorithm_invalid"},
		{name: "unknown kid", header: bearer(signEd("key_nope", claims(nil))), status: 401, code: "token_unknown_key"},
		{name: "signed by another key", header: bearer(signEd(key["kid"], claims(nil))), status: 401, code: "token_signature_invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do("GET", "/v1/auth/me", nil, tc.header...)
			require.Equal(t, tc.status, r.status, "body: %s", r.body)
			if tc.code != "" {
				require.Equal(t, tc.code, r.problemCode(t))
				require.NotEmpty(t, r.header.Get("WWW-Authenticate"))
				return
			}
			me := r.json(t)
			require.Equal(t, tk.User.ID, me["id"])
			require.Equal(t, "me@example.com", me["email"])
			require.Equal(t, "private, no-store", r.header.Get("Cache-Control"))
		})
	}

	t.Run("expired", func(t *testing.T) {
		h2 := newHarness(t)
		tk2 := h2.signup("exp@example.com")
		h2.clock.Advance(h2.cfg.AccessTTL + time.Minute)
		r := h2.do("GET", "/v1/auth/me", nil, bearer(tk2.Access)...)
		require.Equal(t, http.StatusUnauthorized, r.status)
		require.Equal(t, "token_expired", r.problemCode(t))
	})
}
