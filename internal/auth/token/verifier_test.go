package token_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/auth/token"
	"github.com/stretchr/testify/require"
)

var (
	rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	})
	ecKey = sync.OnceValue(func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
)

func TestVerifyScenarios(t *testing.T) {
	t.Parallel()
	edDSA := jwt.SigningMethodEdDSA
	kid := map[string]any{"kid": "k1"}
	spoil := func(e *env, f func(c jwt.MapClaims)) jwt.MapClaims { c := e.mapClaims(); f(c); return c }
	tests := []struct {
		name   string
		token  func(t *testing.T, e *env) string
		reason string // "" when the token is good
	}{
		{"valid", func(t *testing.T, e *env) string { return e.sign(t) }, ""},
		{"valid crafted", func(t *testing.T, e *env) string {
			return craft(t, edDSA, e.key.Private, kid, e.mapClaims())
		}, ""},
		{"valid with aud array", func(t *testing.T, e *env) string {
			return craft(t, edDSA, e.key.Private, kid, spoil(e, func(c jwt.MapClaims) { c["aud"] = []string{"other", audience} }))
		}, ""},
		{"expired within leeway", func(t *testing.T, e *env) string {
			return craft(t, edDSA, e.key.Private, kid, spoil(e, func(c jwt.MapClaims) { c["exp"] = t0.Add(-leeway / 2).Unix() }))
		}, ""},
		{"issued in the future within leeway", func(t *testing.T, e *env) string {
			return craft(t, edDSA, e.key.Private, kid, spoil(e, func(c jwt.MapClaims) { c["iat"], c["nbf"] = t0.Add(leeway/2).Unix(), t0.Add(leeway/2).Unix() }))
		}, ""},

		{"empty", func(*testing.T, *env) string { return "" }, token.ReasonMalformed},
		{"garbage", func(*testing.T, *env) string { return "not a token at all" }, token.ReasonMalformed},
		{"three garbage parts", func(*testing.T, *env) string { return "a.b.c" }, token.ReasonMalformed},
		{"four parts", func(t *testing.T, e *env) string { return e.sign(t) + ".x" }, token.ReasonMalformed},
		{"header not JSON", func(t *testing.T, e *env) string {
			raw := e.sign(t)
			return b64([]byte("{not json")) + raw[strings.IndexByte(raw, '.'):]
		}, token.ReasonMalformed},
		{"padded base64", func(t *testing.T, e *env) string { return e.sign(t) + "==" }, token.ReasonMalformed},
		{"too long", func(*testing.T, *env) string { return strings.Repeat("a", 9000) }, token.ReasonMalformed},
		{"missing exp", func(t *testing.T, e *env) string {
			return craft(t, edDSA, e.key.Private, kid, spoil(e, func(c jwt.MapClaims) { delete(c, "exp") }))
		}, token.ReasonMalformed},
		{"missing iat", func(t *testing.T, e *env) string {
			return craft(t, edDSA, e.key.Private, kid, spoil(e, func(c jwt.MapClaims) { delete(c, "iat") }))
		}, token.ReasonMalformed},
		{"exp not a number", func(t *testing.T, e *env) string {
			return craft(t, edDSA, e.key.Private, kid, spoil(e, func(c jwt.MapClaims) { c["exp"] = "tomorrow" }))
		}, token.ReasonMalformed},
		{"bad session id", func(t *testing.T, e *env) string {
			return craft(t, edDSA, e.key.Private, kid, spoil(e, func(c jwt.MapClaims) { c["sid"] = "ses_nope" }))
		}, token.ReasonMalformed},
		{"crit header", func(t *testing.T, e *env) string {
			return craft(t, edDSA, e.key.Private, map[string]any{"kid": "k1", "crit": []string{"exp"}}, e.mapClaims())
		}, token.ReasonMalformed},

		{"alg none", func(t *testing.T, e *env) string {
			return craft(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid, e.mapClaims())
		}, token.ReasonAlgorithmInvalid},
		{"HS256 with the public key as secret", func(t *testing.T, e *env) string {
			return craft(t, jwt.SigningMethodHS256, []byte(e.key.Public), kid, e.mapClaims())
		}, token.ReasonAlgorithmInvalid},
		{"HS256 with the JWKS x as secret", func(t *testing.T, e *env) string {
			return craft(t, jwt.SigningMethodHS256, []byte(b64(e.key.Public)), kid, e.mapClaims())
		}, token.ReasonAlgorithmInvalid},
		{"RS256", func(t *testing.T, e *env) string {
			return craft(t, jwt.SigningMethodRS256, rsaKey(), kid, e.mapClaims())
		}, token.ReasonAlgorithmInvalid},
		{"ES256", func(t *testing.T, e *env) string {
			return craft(t, jwt.SigningMethodES256, ecKey(), kid, e.mapClaims())
		}, token.ReasonAlgorithmInvalid},
		{"alg unknown to jwt", func(t *testing.T, e *env) string {
			return handcraft(t, e.key.Private, map[string]any{"alg": "Ed25519", "kid": "k1", "typ": "JWT"}, e.mapClaims())
		}, token.ReasonAlgorithmInvalid},
		{"alg missing", func(t *testing.T, e *env) string {
			return handcraft(t, e.key.Private, map[string]any{"kid": "k1", "typ": "JWT"}, e.mapClaims())
		}, token.ReasonAlgorithmInvalid},

		{"unknown kid", func(t *testing.T, e *env) string {
			ghost := generateKey(t, "ghost", t0.Add(-time.Hour), time.Hour*2, time.Hour)
			return craft(t, edDSA, ghost.Private, map[string]any{"kid": "ghost"}, e.mapClaims())
		}, token.ReasonUnknownKey},
		{"missing kid", func(t *testing.T, e *env) string {
			return craft(t, edDSA, e.key.Private, nil, e.mapClaims())
		}, token.ReasonUnknownKey},
		{"kid not a string", func(t *testing.T, e *env) string {
			return craft(t, edDSA, e.key.Private, map[string]any{"kid": 1}, e.mapClaims())
		}, token.ReasonUnknownKey},

		{"signature byte flipped", func(t *testing.T, e *env) string { return flipSignatureByte(t, e.sign(t)) }, token.ReasonSignatureInvalid},
		{"payload changed", func(t *testing.T, e *env) string {
			raw := e.sign(t)
			parts := strings.Split(raw, ".")
			forged := craft(t, edDSA, e.key.Private, kid, spoil(e, func(c jwt.MapClaims) { c["roles"] = []string{"admin"} }))
			return parts[0] + "." + strings.Split(forged, ".")[1] + "." + parts[2]
		}, token.ReasonSignatureInvalid},
		{"another key under our kid", func(t *testing.T, e *env) string {
			ghost := generateKey(t, "k1", t0.Add(-time.Hour), time.Hour*2, time.Hour)
			return craft(t, edDSA, ghost.Private, kid, e.mapClaims())
		}, token.ReasonSignatureInvalid},
		{"empty signature", func(t *testing.T, e *env) string {
			raw := e.sign(t)
			return raw[:strings.LastIndexByte(raw, '.')+1]
		}, token.ReasonSignatureInvalid},

		{"expired", func(t *testing.T, e *env) string {
			return craft(t, edDSA, e.key.Private, kid, spoil(e, func(c jwt.MapClaims) {
				c["iat"], c["nbf"], c["exp"] = t0.Add(-time.Hour).Unix(), t0.Add(-time.Hour).Unix(), t0.Add(-leeway).Unix()
			}))
		}, token.ReasonExpired},
		{"nbf in the future", func(t *testing.T, e *env) string {
			return craft(t, edDSA, e.key.Private, kid, spoil(e, func(c jwt.MapClaims) { c["nbf"] = t0.Add(leeway + time.Second).Unix() }))
		}, token.ReasonNotYetValid},
		{"iat in the future", func(t *testing.T, e *env) string {
			return craft(t, edDSA, e.key.Private, kid, spoil(e, func(c jwt.MapClaims) { c["iat"] = t0.Add(time.Hour).Unix(); delete(c, "nbf") }))
		}, token.ReasonNotYetValid},
		{"wrong iss", func(t *testing.T, e *env) string {
			return craft(t, edDSA, e.key.Private, kid, spoil(e, func(c jwt.MapClaims) { c["iss"] = "https://evil.test" }))
		}, token.ReasonIssuerInvalid},
		{"missing iss", func(t *testing.T, e *env) string {
			return craft(t, edDSA, e.key.Private, kid, spoil(e, func(c jwt.MapClaims) { delete(c, "iss") }))
		}, token.ReasonIssuerInvalid},
		{"wrong aud", func(t *testing.T, e *env) string {
			return craft(t, edDSA, e.key.Private, kid, spoil(e, func(c jwt.MapClaims) { c["aud"] = "billing-api" }))
		}, token.ReasonAudienceInvalid},
		{"missing aud", func(t *testing.T, e *env) string {
			return craft(t, edDSA, e.key.Private, kid, spoil(e, func(c jwt.MapClaims) { delete(c, "aud") }))
		}, token.ReasonAudienceInvalid},
		{"sub of another kind", func(t *testing.T, e *env) string {
			return craft(t, edDSA, e.key.Private, kid, spoil(e, func(c jwt.MapClaims) { c["sub"] = string(strata.NewID("acc", 1, t0)) }))
		}, token.ReasonSubjectInvalid},
		{"sub not an id", func(t *testing.T, e *env) string {
			return craft(t, edDSA, e.key.Private, kid, spoil(e, func(c jwt.MapClaims) { c["sub"] = "admin" }))
		}, token.ReasonSubjectInvalid},
		{"missing sub", func(t *testing.T, e *env) string {
			return craft(t, edDSA, e.key.Private, kid, spoil(e, func(c jwt.MapClaims) { delete(c, "sub") }))
		}, token.ReasonSubjectInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, cacheSize := range []int{0, 100} {
				e := newEnv(t, cacheSize)
				raw := tt.token(t, e)
				for range 2 { // the second time may come from the cache
					p, err := e.verifier.Verify(t.Context(), raw)
					if tt.reason != "" {
						requireRejected(t, err, tt.reason)
						require.Nil(t, p)
						if len(raw) > 20 {
							require.NotContains(t, err.Error(), raw[len(raw)-20:], "errors do not echo the token")
						}
						continue
					}
					require.NoError(t, err)
					c := testClaims()
					require.Equal(t, c.UserID, p.UserID)
					require.Equal(t, c.SessionID, p.SessionID)
					require.Equal(t, c.Roles, p.Roles)
					require.False(t, p.ExpiresAt.IsZero())
				}
			}
		})
	}
}

func TestVerifyDropsUnknownRoles(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	c := e.mapClaims()
	c["roles"] = []string{"buyer", "superuser", "admin"}
	p, err := e.verifier.Verify(t.Context(), craft(t, jwt.SigningMethodEdDSA, e.key.Private, map[string]any{"kid": "k1"}, c))
	require.NoError(t, err)
	require.Equal(t, []strata.Role{strata.RoleBuyer, strata.RoleAdmin}, p.Roles)
}

func TestVerifyRotation(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t, 100)
	old := e.key // signs until t0+23h, verifies until t0+47h

	oldToken := e.sign(t)
	// A token that claims to outlive its key, to show the key's expiry
	// itself ends verification.
	c := e.mapClaims()
	c["exp"] = t0.Add(100 * time.Hour).Unix()
	longToken := craft(t, jwt.SigningMethodEdDSA, old.Private, map[string]any{"kid": old.ID}, c)
	_, err := e.verifier.Verify(ctx, longToken)
	require.NoError(t, err)

	// k2 is published now and starts signing in ten minutes.
	next := generateKey(t, "k2", t0.Add(10*time.Minute), 24*time.Hour, 24*time.Hour)
	e.store.add(next)
	require.NoError(t, e.ring.Refresh(ctx))
	signing, _ := e.ring.Current().Signing()
	require.Equal(t, "k1", signing.ID, "k2 is published but does not sign yet")
	_, ok := e.ring.Current().Lookup("k2")
	require.True(t, ok, "k2 verifies before it signs")

	e.clock.Advance(10 * time.Minute)
	require.NoError(t, e.ring.Refresh(ctx))
	signing, _ = e.ring.Current().Signing()
	require.Equal(t, "k2", signing.ID, "the newest key takes over")
	newToken := e.sign(t)
	require.Equal(t, "k2", decodePart(t, newToken, 0)["kid"])

	for _, raw := range []string{oldToken, newToken, longToken} {
		_, err := e.verifier.Verify(ctx, raw)
		require.NoError(t, err, "old and new keys both verify during the overlap")
	}

	// Past k1's ExpiresAt, even before the ring reloads, its tokens fail,
	// cached or not.
	e.clock.Advance(old.ExpiresAt.Sub(e.clock.Now()))
	_, err = e.verifier.Verify(ctx, longToken)
	requireRejected(t, err, token.ReasonUnknownKey)
	require.NoError(t, e.ring.Refresh(ctx))
	_, ok = e.ring.Current().Lookup("k1")
	require.False(t, ok)
	require.NotContains(t, string(e.ring.Current().JWKS()), `"k1"`)
	_, err = e.verifier.Verify(ctx, longToken)
	requireRejected(t, err, token.ReasonUnknownKey)
}

func TestVerifyUnknownKidRefreshesRing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 100)
	require.EqualValues(t, 1, e.store.loads.Load())

	// Another instance created k2 and signs with it already.
	k2 := generateKey(t, "k2", t0, time.Hour, time.Hour)
	e.store.add(k2)
	raw, _, err := e.signer.Sign(token.NewKeySet([]token.Key{k2}, t0), testClaims())
	require.NoError(t, err)

	p, err := e.verifier.Verify(t.Context(), raw)
	require.NoError(t, err)
	require.Equal(t, testClaims().UserID, p.UserID)
	require.EqualValues(t, 2, e.store.loads.Load())
	_, ok := e.ring.Current().Lookup("k2")
	require.True(t, ok)
}

func TestVerifyUnknownKidRefreshIsThrottled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 100)
	ghost := generateKey(t, "ghost", t0.Add(-time.Hour), 2*time.Hour, time.Hour)
	tokens := make([]string, 1000)
	for i := range tokens {
		tokens[i] = craft(t, jwt.SigningMethodEdDSA, ghost.Private, map[string]any{"kid": "ghost-" + string(strata.NewID("x", 0, t0))}, e.mapClaims())
	}

	var wg sync.WaitGroup
	errs := make(chan error, len(tokens))
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < len(tokens); i += 8 {
				_, err := e.verifier.Verify(context.Background(), tokens[i])
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		requireRejected(t, err, token.ReasonUnknownKey)
	}
	require.EqualValues(t, 2, e.store.loads.Load(), "the first load at setup, then one for all 1000 unknown kids")

	e.clock.Advance(time.Second)
	_, err := e.verifier.Verify(t.Context(), tokens[0])
	requireRejected(t, err, token.ReasonUnknownKey)
	require.EqualValues(t, 3, e.store.loads.Load(), "a second later one more load is allowed")

	_, err = e.verifier.Verify(t.Context(), e.sign(t))
	require.NoError(t, err, "known kids never wait for a refresh")
	require.EqualValues(t, 3, e.store.loads.Load())
}

func TestVerifyCache(t *testing.T) {
	t.Parallel()
	ctx := t.Context()

	e := newEnv(t, 100)
	raw := e.sign(t)
	p1, err := e.verifier.Verify(ctx, raw)
	require.NoError(t, err)
	p2, err := e.verifier.Verify(ctx, raw)
	require.NoError(t, err)
	require.Same(t, p1, p2, "the second verification is a cache hit")
	require.WithinDuration(t, t0.Add(ttl), p1.ExpiresAt, 0)

	uncached := newEnv(t, 0)
	raw = uncached.sign(t)
	p1, err = uncached.verifier.Verify(ctx, raw)
	require.NoError(t, err)
	p2, err = uncached.verifier.Verify(ctx, raw)
	require.NoError(t, err)
	require.NotSame(t, p1, p2)
	require.Equal(t, p1, p2)
}

func TestVerifyCachedTokenStillExpires(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t, 100)
	raw := e.sign(t)
	_, err := e.verifier.Verify(ctx, raw)
	require.NoError(t, err)

	e.clock.Advance(ttl + leeway - time.Second)
	_, err = e.verifier.Verify(ctx, raw)
	require.NoError(t, err, "within the leeway")

	e.clock.Advance(time.Second)
	_, err = e.verifier.Verify(ctx, raw)
	requireRejected(t, err, token.ReasonExpired)
	_, err = e.verifier.Verify(ctx, raw)
	requireRejected(t, err, token.ReasonExpired)
}

func TestVerifyCachedTokenOfRemovedKey(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t, 100)
	raw := e.sign(t)
	_, err := e.verifier.Verify(ctx, raw)
	require.NoError(t, err)

	// The key is compromised: an operator deletes it and the ring reloads.
	e.store.set(generateKey(t, "k2", t0, time.Hour, time.Hour))
	require.NoError(t, e.ring.Refresh(ctx))
	_, err = e.verifier.Verify(ctx, raw)
	requireRejected(t, err, token.ReasonUnknownKey)
}

// FuzzVerify feeds arbitrary strings to Verify: it must never panic, and
// every failure is an unauthenticated *strata.Error.
func FuzzVerify(f *testing.F) {
	e := newEnv(f, 16)
	kid := map[string]any{"kid": "k1"}
	f.Add(e.sign(f))
	f.Add(flipSignatureByte(f, e.sign(f)))
	f.Add(craft(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid, e.mapClaims()))
	f.Add(craft(f, jwt.SigningMethodHS256, []byte(e.key.Public), kid, e.mapClaims()))
	c := e.mapClaims()
	c["exp"], c["aud"], c["sub"] = 1e300, []any{1, nil, "x"}, map[string]any{}
	f.Add(craft(f, jwt.SigningMethodEdDSA, e.key.Private, kid, c))
	f.Add(handcraft(f, e.key.Private, map[string]any{"alg": "EdDSA", "kid": []int{1}}, e.mapClaims()))
	f.Add("")
	f.Add("..")
	f.Add("e30.e30.")
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := e.verifier.Verify(context.Background(), raw)
		if err == nil {
			require.NotNil(t, p)
			return
		}
		require.Nil(t, p)
		var se *strata.Error
		require.True(t, errors.As(err, &se), "%T %v", err, err)
		require.Equal(t, strata.CodeUnauthenticated, se.Code)
		require.True(t, strings.HasPrefix(se.Reason, "token_"), se.Reason)
	})
}

// BenchmarkVerifyCold measures a full verification: the cache is disabled,
// so every iteration parses, checks the Ed25519 signature and the claims.
func BenchmarkVerifyCold(b *testing.B) {
	e := newEnv(b, 0)
	raw := e.sign(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := e.verifier.Verify(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyWarm measures a repeat verification served by the cache.
func BenchmarkVerifyWarm(b *testing.B) {
	e := newEnv(b, 1000)
	raw := e.sign(b)
	ctx := context.Background()
	if _, err := e.verifier.Verify(ctx, raw); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := e.verifier.Verify(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyWarmParallel(b *testing.B) {
	e := newEnv(b, 1000)
	tokens := make([]string, 64)
	for i := range tokens {
		tokens[i] = e.sign(b)
	}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := e.verifier.Verify(context.Background(), tokens[i%len(tokens)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkEd25519Verify is the floor under BenchmarkVerifyCold: the
// signature check alone, on the same token.
func BenchmarkEd25519Verify(b *testing.B) {
	e := newEnv(b, 0)
	raw := e.sign(b)
	i := strings.LastIndexByte(raw, '.')
	sig, err := base64.RawURLEncoding.DecodeString(raw[i+1:])
	if err != nil {
		b.Fatal(err)
	}
	msg := []byte(raw[:i])
	for b.Loop() {
		if !ed25519.Verify(e.key.Public, msg, sig) {
			b.Fatal("bad signature")
		}
	}
}
