package token_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/auth/token"
	"github.com/stratadev/strata/stratatest"
	"github.com/stretchr/testify/require"
)

const (
	issuer   = "https://auth.strata.test"
	audience = "strata-api"
	leeway   = 30 * time.Second
	ttl      = 15 * time.Minute
)

var (
	// t0 is when every test starts.
	t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	// The user and session every test token is about.
	testUser    = strata.NewID("usr", 7, t0)
	testSession = strata.NewID("ses", 7, t0)
)

// keyStore stands in for the database table of signing keys.
type keyStore struct {
	mu    sync.Mutex
	keys  []token.Key
	err   error
	loads atomic.Int64
}

func (s *keyStore) load(context.Context) ([]token.Key, error) {
	s.loads.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.keys), s.err
}

func (s *keyStore) set(keys ...token.Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = keys
}

func (s *keyStore) add(keys ...token.Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, keys...)
}

func (s *keyStore) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

type env struct {
	clock    *stratatest.Clock
	store    *keyStore
	ring     *token.Ring
	signer   *token.Signer
	verifier *token.Verifier
	key      token.Key // k1, signing since an hour before t0
}

func newEnv(t testing.TB, cacheSize int) *env {
	t.Helper()
	clock := stratatest.NewClock(t0)
	key := generateKey(t, "k1", t0.Add(-time.Hour), 24*time.Hour, 24*time.Hour)
	store := &keyStore{keys: []token.Key{key}}
	ring := token.NewRing(store.load, clock, time.Minute)
	require.NoError(t, ring.Refresh(context.Background()))
	return &env{
		clock:    clock,
		store:    store,
		ring:     ring,
		signer:   token.NewSigner(issuer, audience, ttl, clock),
		verifier: token.NewVerifier(ring, issuer, audience, leeway, clock, cacheSize),
		key:      key,
	}
}

func generateKey(t testing.TB, id string, now time.Time, signFor, verifyFor time.Duration) token.Key {
	t.Helper()
	k, err := token.GenerateKey(id, now, signFor, verifyFor)
	require.NoError(t, err)
	return k
}

func testClaims() token.Claims {
	return token.Claims{
		UserID:    testUser,
		SessionID: testSession,
		Roles:     []strata.Role{strata.RoleBuyer, strata.RoleCreator},
	}
}

// sign issues a token for testClaims with the ring's current signing key.
func (e *env) sign(t testing.TB) string {
	t.Helper()
	raw, _, err := e.signer.Sign(e.ring.Current(), testClaims())
	require.NoError(t, err)
	return raw
}

// mapClaims returns valid claims as a map that a test can spoil.
func (e *env) mapClaims() jwt.MapClaims {
	now := e.clock.Now()
	c := testClaims()
	return jwt.MapClaims{
		"iss": issuer, "aud": audience, "sub": string(c.UserID), "sid": string(c.SessionID),
		"roles": c.Roles, "jti": "test-jti",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(ttl).Unix(),
	}
}

// craft signs claims with any jwt method and key; header entries override
// the defaults, and a nil value deletes one.
func craft(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

// handcraft builds a token without jwt's help, for headers jwt refuses to
// sign: its signature is Ed25519 over the first two parts with priv.
func handcraft(t testing.TB, priv ed25519.PrivateKey, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	h, err := json.Marshal(header)
	require.NoError(t, err)
	c, err := json.Marshal(claims)
	require.NoError(t, err)
	signing := b64(h) + "." + b64(c)
	return signing + "." + b64(ed25519.Sign(priv, []byte(signing)))
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// flipSignatureByte returns raw with one byte of its decoded signature
// changed, so that it is still well-formed.
func flipSignatureByte(t testing.TB, raw string) string {
	t.Helper()
	i := strings.LastIndexByte(raw, '.')
	sig, err := base64.RawURLEncoding.DecodeString(raw[i+1:])
	require.NoError(t, err)
	sig[10] ^= 0x01
	return raw[:i+1] + b64(sig)
}

// decodePart returns the JSON of a token's header (0) or payload (1).
func decodePart(t testing.TB, raw string, part int) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[part])
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

func requireRejected(t testing.TB, err error, reason string) {
	t.Helper()
	require.Error(t, err)
	var se *strata.Error
	require.ErrorAs(t, err, &se)
	require.Equal(t, strata.CodeUnauthenticated, se.Code, "%v", err)
	require.Equal(t, reason, se.Reason, "%v", err)
	require.NotEmpty(t, se.Message)
}
