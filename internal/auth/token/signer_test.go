package token_test

import (
	"testing"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/auth/token"
	"github.com/stratadev/strata/stratatest"
	"github.com/stretchr/testify/require"
)

func TestSignClaims(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	e.clock.Advance(1500 * time.Millisecond) // tokens carry whole seconds
	raw, exp, err := e.signer.Sign(e.ring.Current(), testClaims())
	require.NoError(t, err)
	now := t0.Add(time.Second)
	require.Equal(t, now.Add(ttl), exp)

	require.Equal(t, map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": "k1"}, decodePart(t, raw, 0))
	payload := decodePart(t, raw, 1)
	jti, _ := payload["jti"].(string)
	require.Len(t, jti, 22, "16 random bytes")
	delete(payload, "jti")
	c := testClaims()
	require.Equal(t, map[string]any{
		"iss": issuer, "aud": audience, "sub": string(c.UserID), "sid": string(c.SessionID),
		"roles": []any{"buyer", "creator"},
		"iat":   float64(now.Unix()), "nbf": float64(now.Unix()), "exp": float64(exp.Unix()),
	}, payload)

	again, _, err := e.signer.Sign(e.ring.Current(), testClaims())
	require.NoError(t, err)
	require.NotEqual(t, jti, decodePart(t, again, 1)["jti"], "every token has its own jti")
}

func TestSignExplicitClaims(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	c := token.Claims{
		UserID: strata.NewID("usr", 1, t0), ID: "my-jti",
		IssuedAt: t0.Add(-time.Minute), ExpiresAt: t0.Add(5 * time.Minute),
	}
	raw, exp, err := e.signer.Sign(e.ring.Current(), c)
	require.NoError(t, err)
	require.Equal(t, t0.Add(5*time.Minute), exp)
	payload := decodePart(t, raw, 1)
	require.Equal(t, "my-jti", payload["jti"])
	require.Equal(t, float64(t0.Add(-time.Minute).Unix()), payload["iat"])
	require.NotContains(t, payload, "sid", "no session, no sid")
	require.NotContains(t, payload, "roles")

	p, err := e.verifier.Verify(t.Context(), raw)
	require.NoError(t, err)
	require.Equal(t, c.UserID, p.UserID)
	require.Empty(t, p.SessionID)
	require.Empty(t, p.Roles)
	require.WithinDuration(t, exp, p.ExpiresAt, 0)
}

func TestSignClampsExpiryToKey(t *testing.T) {
	t.Parallel()
	clock := stratatest.NewClock(t0)
	key := generateKey(t, "k", t0.Add(-time.Hour), time.Hour+time.Minute, 5*time.Minute)
	signer := token.NewSigner(issuer, audience, time.Hour, clock)
	_, exp, err := signer.Sign(token.NewKeySet([]token.Key{key}, t0), testClaims())
	require.NoError(t, err)
	require.Equal(t, key.ExpiresAt, exp, "no token outlives its key")
}

func TestSignErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)

	verifyOnly := e.key
	verifyOnly.Private = nil
	_, _, err := e.signer.Sign(token.NewKeySet([]token.Key{verifyOnly}, t0), testClaims())
	require.Equal(t, strata.CodeUnavailable, strata.ErrorCode(err))
	require.Equal(t, "signing_key_unavailable", strata.ErrorReason(err))

	for name, c := range map[string]token.Claims{
		"no user":         {},
		"not a user id":   {UserID: strata.NewID("ses", 1, t0)},
		"born expired":    {UserID: strata.NewID("usr", 1, t0), ExpiresAt: t0.Add(-time.Hour)},
		"zero lifetime":   {UserID: strata.NewID("usr", 1, t0), IssuedAt: t0, ExpiresAt: t0},
		"malformed usrID": {UserID: "usr_!!"},
	} {
		_, _, err := e.signer.Sign(e.ring.Current(), c)
		require.Equal(t, strata.CodeInternal, strata.ErrorCode(err), name)
	}
}

func BenchmarkSign(b *testing.B) {
	e := newEnv(b, 0)
	ks := e.ring.Current()
	c := testClaims()
	for b.Loop() {
		if _, _, err := e.signer.Sign(ks, c); err != nil {
			b.Fatal(err)
		}
	}
}
