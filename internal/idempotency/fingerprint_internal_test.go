package idempotency

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// A stored fingerprint is keyed: without the deployment's key it cannot
// be recomputed from a guessed body (a card number and CVC in a top-up).
func TestFingerprintIsKeyed(t *testing.T) {
	body := []byte(`{"card":{"number":"4242424242424242","cvc":"123"}}`)
	r := httptest.NewRequest("POST", "/v1/topups", nil)
	a := fingerprint([]byte("key one"), r, body)
	b := fingerprint([]byte("key two"), r, body)
	require.NotEqual(t, a, b)
	require.Equal(t, a, fingerprint([]byte("key one"), r, body), "stable under one key")
	plain := sha256.New()
	writePart(plain, []byte("POST"))
	writePart(plain, []byte("/v1/topups"))
	writePart(plain, nil)
	writePart(plain, body)
	require.NotEqual(t, hex.EncodeToString(plain.Sum(nil)), a)
	require.Empty(t, KeyFrom(context.Background()))
}
