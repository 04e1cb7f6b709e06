package token_test

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/stratadev/strata/internal/auth/token"
	"github.com/stretchr/testify/require"
)

func newSealer(t *testing.T) *token.Sealer {
	t.Helper()
	s, err := token.NewSealer(bytes.Repeat([]byte{7}, 32))
	require.NoError(t, err)
	return s
}

func TestSealerRoundTrip(t *testing.T) {
	t.Parallel()
	s := newSealer(t)
	key := generateKey(t, "k1", t0, 1, 1)
	sealed, err := s.Seal(key.Private.Seed(), []byte("k1"))
	require.NoError(t, err)
	require.Len(t, sealed, 12+32+16, "nonce, ciphertext, tag")
	require.False(t, bytes.Contains(sealed, key.Private.Seed()))

	plain, err := s.Open(sealed, []byte("k1"))
	require.NoError(t, err)
	require.Equal(t, key.Private.Seed(), plain)

	again, err := s.Seal(key.Private.Seed(), []byte("k1"))
	require.NoError(t, err)
	require.NotEqual(t, sealed, again, "a fresh nonce every time")
}

func TestSealerRejectsTampering(t *testing.T) {
	t.Parallel()
	s := newSealer(t)
	sealed, err := s.Seal([]byte("private key seed"), []byte("k1"))
	require.NoError(t, err)

	flipped := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 0x80
		return b
	}
	other, err := token.NewSealer(bytes.Repeat([]byte{8}, 32))
	require.NoError(t, err)

	tests := []struct {
		name   string
		sealer *token.Sealer
		sealed []byte
		ad     string
	}{
		{"wrong additional data (key swapped between rows)", s, sealed, "k2"},
		{"no additional data", s, sealed, ""},
		{"flipped nonce byte", s, flipped(0), "k1"},
		{"flipped ciphertext byte", s, flipped(14), "k1"},
		{"flipped tag byte", s, flipped(len(sealed) - 1), "k1"},
		{"truncated", s, sealed[:len(sealed)-1], "k1"},
		{"too short", s, sealed[:20], "k1"},
		{"empty", s, nil, "k1"},
		{"other master key", other, sealed, "k1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			plain, err := tt.sealer.Open(tt.sealed, []byte(tt.ad))
			require.Error(t, err)
			require.Nil(t, plain)
		})
	}
}

func TestNewSealerKeyLength(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		_, err := token.NewSealer(make([]byte, n))
		require.Error(t, err, n)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	_, err := token.NewSealer(key)
	require.NoError(t, err)
}
