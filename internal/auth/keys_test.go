package auth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func kidOf(t *testing.T, jwt string) string {
	t.Helper()
	header, err := base64.RawURLEncoding.DecodeString(strings.Split(jwt, ".")[0])
	require.NoError(t, err)
	var h struct {
		Kid string `json:"kid"`
	}
	require.NoError(t, json.Unmarshal(header, &h))
	return h.Kid
}

func TestSigningKeyRotation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	first := h.signup("keys@example.com")
	firstKid := kidOf(t, first.Access)
	require.Len(t, jwks(t, h), 1)

	// Shortly before the first key retires, the next one is published ahead.
	h.clock.Advance(h.cfg.KeyRotation - h.cfg.KeyPublishAhead + time.Minute)
	require.NoError(t, h.svc.RotateKeys(ctx))
	require.Len(t, jwks(t, h), 2)
	require.NoError(t, h.svc.RotateKeys(ctx))
	require.Len(t, jwks(t, h), 2, "rotation is idempotent")

	// A token signed a minute before the old key retires...
	h.clock.Advance(h.cfg.KeyPublishAhead - 2*time.Minute)
	late := h.decodeTokens(login(h, "keys@example.com", goodPassword))
	require.Equal(t, firstKid, kidOf(t, late.Access), "the old key still signs until it retires")

	// ...still verifies after the new key has taken over signing.
	h.clock.Advance(2 * time.Minute)
	require.NoError(t, h.svc.Ring().Refresh(ctx))
	newer := h.decodeTokens(login(h, "keys@example.com", goodPassword))
	require.NotEqual(t, firstKid, kidOf(t, newer.Access))
	require.Equal(t, http.StatusOK, h.do("GET", "/v1/auth/me", nil, bearer(late.Access)...).status)
	require.Equal(t, http.StatusOK, h.do("GET", "/v1/auth/me", nil, bearer(newer.Access)...).status)

	// Once no token of the old key can be valid, it leaves the JWKS.
	h.clock.Advance(h.cfg.AccessTTL + 2*time.Minute)
	require.NoError(t, h.svc.Ring().Refresh(ctx))
	keys := jwks(t, h)
	require.Len(t, keys, 1)
	require.Equal(t, kidOf(t, newer.Access), keys[0]["kid"])
}
