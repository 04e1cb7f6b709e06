package token_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stratadev/strata/internal/auth/token"
	"github.com/stratadev/strata/stratatest"
	"github.com/stretchr/testify/require"
)

func TestGenerateKey(t *testing.T) {
	t.Parallel()
	k, err := token.GenerateKey("k1", t0, time.Hour, 2*time.Hour)
	require.NoError(t, err)
	require.Equal(t, "k1", k.ID)
	require.Equal(t, t0, k.NotBefore)
	require.Equal(t, t0.Add(time.Hour), k.RetireAt)
	require.Equal(t, t0.Add(3*time.Hour), k.ExpiresAt)
	require.Len(t, k.Private, ed25519.PrivateKeySize)
	require.Equal(t, k.Private.Public(), k.Public)

	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		printed := fmt.Sprintf(format, k)
		require.Contains(t, printed, `"k1"`)
		require.NotContains(t, printed, fmt.Sprint([]byte(k.Private[:4])), "no key material in %s", format)
		require.NotContains(t, printed, fmt.Sprintf("%x", k.Private.Seed()[:4]))
	}

	_, err = token.GenerateKey("", t0, time.Hour, time.Hour)
	require.Error(t, err)
	_, err = token.GenerateKey("k", t0, 0, time.Hour)
	require.Error(t, err)
}

func TestKeySetSigningAndLookup(t *testing.T) {
	t.Parallel()
	h := time.Hour
	retired := generateKey(t, "retired", t0.Add(-3*h), h, 4*h)      // signed until t0-2h, verifies until t0+2h
	current := generateKey(t, "current", t0.Add(-h), 2*h, 4*h)      // signs until t0+h
	newer := generateKey(t, "newer", t0.Add(-h/2), 2*h, 4*h)        // signs, and is newer
	upcoming := generateKey(t, "upcoming", t0.Add(h), 2*h, 4*h)     // published, signs from t0+h
	expired := generateKey(t, "expired", t0.Add(-10*h), h, h)       // gone at t0-8h
	verifyOnly := generateKey(t, "verify-only", t0.Add(-h/4), h, h) // newest, but no private half
	verifyOnly.Private = nil

	tests := []struct {
		name     string
		keys     []token.Key
		signing  string // "" for none
		verifies []string
	}{
		{"empty", nil, "", nil},
		{"one current", []token.Key{current}, "current", []string{"current"}},
		{"newest signs", []token.Key{current, newer, retired}, "newer", []string{"current", "newer", "retired"}},
		{"order does not matter", []token.Key{retired, newer, current}, "newer", []string{"current", "newer", "retired"}},
		{"upcoming is published but does not sign", []token.Key{current, upcoming}, "current", []string{"current", "upcoming"}},
		{"retired verifies but does not sign", []token.Key{retired}, "", []string{"retired"}},
		{"expired is gone", []token.Key{expired, current}, "current", []string{"current"}},
		{"verify-only never signs", []token.Key{current, verifyOnly}, "current", []string{"current", "verify-only"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ks := token.NewKeySet(tt.keys, t0)
			k, ok := ks.Signing()
			require.Equal(t, tt.signing != "", ok)
			require.Equal(t, tt.signing, k.ID)
			for _, kid := range []string{"retired", "current", "newer", "upcoming", "expired", "verify-only"} {
				pub, ok := ks.Lookup(kid)
				require.Equal(t, contains(tt.verifies, kid), ok, kid)
				if ok {
					require.Len(t, pub, ed25519.PublicKeySize)
				}
			}
		})
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestKeySetSkipsUnusableKeys(t *testing.T) {
	t.Parallel()
	good := generateKey(t, "good", t0, time.Hour, time.Hour)
	noPublic := generateKey(t, "no-public", t0.Add(-time.Minute), time.Hour, time.Hour)
	noPublic.Public = nil // derived from the private half
	mismatched := generateKey(t, "mismatched", t0, time.Hour, time.Hour)
	mismatched.Public = good.Public
	short := generateKey(t, "short", t0, time.Hour, time.Hour)
	short.Public, short.Private = short.Public[:16], nil
	dup := generateKey(t, "good", t0, time.Hour, time.Hour)
	noID := generateKey(t, "x", t0, time.Hour, time.Hour)
	noID.ID = ""
	inverted := generateKey(t, "inverted", t0, time.Hour, time.Hour)
	inverted.RetireAt = inverted.ExpiresAt.Add(time.Hour)

	ks := token.NewKeySet([]token.Key{good, noPublic, mismatched, short, dup, noID, inverted}, t0)
	pub, ok := ks.Lookup("good")
	require.True(t, ok)
	require.Equal(t, good.Public, pub, "the first of two keys with one kid wins")
	pub, ok = ks.Lookup("no-public")
	require.True(t, ok)
	require.Equal(t, noPublic.Private.Public(), pub)
	for _, kid := range []string{"mismatched", "short", "inverted", ""} {
		_, ok := ks.Lookup(kid)
		require.False(t, ok, kid)
	}
	k, ok := ks.Signing()
	require.True(t, ok)
	require.Equal(t, "good", k.ID)

	// The ring installs the usable keys and reports the others.
	store := &keyStore{keys: []token.Key{good, mismatched, dup}}
	ring := token.NewRing(store.load, stratatest.NewClock(t0), time.Minute)
	err := ring.Refresh(t.Context())
	require.ErrorContains(t, err, "mismatched")
	require.ErrorContains(t, err, "duplicate kid")
	_, ok = ring.Current().Lookup("good")
	require.True(t, ok)
}

func TestJWKS(t *testing.T) {
	t.Parallel()
	older := generateKey(t, "older", t0.Add(-2*time.Hour), time.Hour, 2*time.Hour)
	current := generateKey(t, "current", t0.Add(-time.Hour), 2*time.Hour, 2*time.Hour)
	verifyOnly := generateKey(t, "verify-only", t0.Add(-3*time.Hour), 2*time.Hour, 2*time.Hour)
	verifyOnly.Private = nil
	gone := generateKey(t, "gone", t0.Add(-5*time.Hour), time.Hour, time.Hour)

	ks := token.NewKeySet([]token.Key{older, gone, verifyOnly, current}, t0)
	raw := ks.JWKS()
	require.NotContains(t, string(raw), `"d"`, "no private key material")

	var doc struct {
		Keys []map[string]string `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(raw, &doc))
	require.Len(t, doc.Keys, 3)
	wantOrder := []token.Key{current, older, verifyOnly} // newest first
	for i, k := range doc.Keys {
		require.Equal(t, map[string]string{
			"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA",
			"kid": wantOrder[i].ID, "x": base64.RawURLEncoding.EncodeToString(wantOrder[i].Public),
		}, k)
		x, err := base64.RawURLEncoding.DecodeString(k["x"])
		require.NoError(t, err)
		pub, ok := ks.Lookup(k["kid"])
		require.True(t, ok)
		require.Equal(t, []byte(pub), x)
	}

	require.JSONEq(t, `{"keys":[]}`, string(token.NewKeySet(nil, t0).JWKS()))
}
