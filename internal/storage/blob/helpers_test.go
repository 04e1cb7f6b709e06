package blob_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/storage/blob"
	"github.com/stretchr/testify/require"
)

// opener opens a fresh, empty store for one test.
type opener func(testing.TB) *blob.Store

func sum(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// randomBytes returns n reproducible bytes that sniff as octet-stream.
func randomBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	g := &generator{rng: rand.NewChaCha8([32]byte{seed}), left: int64(n)}
	io.ReadFull(g, b)
	return b
}

// generator produces left pseudo-random bytes without holding them, and
// hashes what it produced, so a test knows the digest of a body it never
// stored.
type generator struct {
	rng    *rand.ChaCha8
	left   int64
	served int64
	h      hash.Hash
	// onRead, when set, is called after each read with the bytes served.
	onRead func(served int64)
}

func newGenerator(n int64, seed byte) *generator {
	return &generator{rng: rand.NewChaCha8([32]byte{seed}), left: n, h: sha256.New()}
}

func (g *generator) Read(p []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	g.rng.Read(p)
	if g.h != nil {
		g.h.Write(p)
	}
	g.left -= int64(len(p))
	g.served += int64(len(p))
	if g.onRead != nil {
		g.onRead(g.served)
	}
	return len(p), nil
}

func (g *generator) sum() string { return hex.EncodeToString(g.h.Sum(nil)) }

// failingReader yields n bytes, then fails.
type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errors.New("connection reset")
	}
	k := min(len(p), r.n)
	clear(p[:k])
	r.n -= k
	return k, nil
}

func put(t *testing.T, s *blob.Store, data []byte, opts blob.PutOptions) blob.Object {
	t.Helper()
	o, err := s.Put(context.Background(), bytes.NewReader(data), opts)
	require.NoError(t, err)
	return o
}

func readAll(t *testing.T, s *blob.Store, sha string) ([]byte, blob.Attributes) {
	t.Helper()
	r, a, err := s.Open(context.Background(), sha)
	require.NoError(t, err)
	defer r.Close()
	got, err := io.ReadAll(r)
	require.NoError(t, err)
	return got, a
}

func keys(t *testing.T, s *blob.Store) []string {
	t.Helper()
	k, err := blob.Keys(context.Background(), s)
	require.NoError(t, err)
	return k
}

func requireCode(t *testing.T, err error, code strata.Code, reason string) {
	t.Helper()
	require.Error(t, err)
	var se *strata.Error
	require.True(t, errors.As(err, &se), "want *strata.Error, got %T: %v", err, err)
	require.Equal(t, code, se.Code, "%v", err)
	if reason != "" {
		require.Equal(t, reason, strata.ErrorReason(err), "%v", err)
	}
}

func stringsReader(s string) io.Reader { return bytes.NewReader([]byte(s)) }
