package blob_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/storage/blob"
	"github.com/stretchr/testify/require"
)

// The part tests run in runSuite, on every backend.

func readPart(t *testing.T, s *blob.Store, key string) []byte {
	t.Helper()
	rc, err := s.OpenPart(context.Background(), key)
	require.NoError(t, err)
	defer rc.Close()
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	return got
}

func testPartsRoundTrip(t *testing.T, s *blob.Store) {
	ctx := context.Background()
	sizes := []int{0, 1, 512, 1<<20 + 3, 6 << 20} // 6 MiB: more than one S3 multipart part
	for i, n := range sizes {
		data := randomBytes(n, byte(i+1))
		key := "upl_roundtrip/" + string(rune('0'+i))
		got, err := s.PutPart(ctx, key, bytes.NewReader(data))
		require.NoError(t, err)
		require.Equal(t, int64(n), got)
		require.Equal(t, data, append([]byte{}, readPart(t, s, key)...), "size %d", n)
	}
	for _, k := range keys(t, s) {
		require.True(t, strings.HasPrefix(k, "uploads/upl_roundtrip/"), "key %s", k)
	}
	require.Len(t, keys(t, s), len(sizes))

	// Writing a key again replaces the part.
	_, err := s.PutPart(ctx, "upl_roundtrip/0", stringsReader("again"))
	require.NoError(t, err)
	require.Equal(t, "again", string(readPart(t, s, "upl_roundtrip/0")))
	require.Len(t, keys(t, s), len(sizes))
}

// hideFailure turns its reader's failure into io.EOF, as a caller keeping
// the bytes of an interrupted body does.
type hideFailure struct{ r io.Reader }

func (h hideFailure) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if err != nil && err != io.EOF {
		return n, io.EOF
	}
	return n, err
}

func testPartsFailingBody(t *testing.T, s *blob.Store) {
	ctx := context.Background()
	for _, n := range []int{0, 100, 6 << 20} {
		_, err := s.PutPart(ctx, "upl_fail/000001", &failingReader{n: n})
		requireCode(t, err, strata.CodeInvalid, "unreadable_body")
	}
	// The reader's own *strata.Error comes back as it is.
	own := strata.Errorf(strata.CodeTooLarge, "chunk_too_large", "too much")
	_, err := s.PutPart(ctx, "upl_fail/000001", io.MultiReader(stringsReader("abc"), errReader{own}))
	require.True(t, errors.Is(err, own), "%v", err)
	require.Empty(t, keys(t, s), "a failed body leaves nothing behind")

	// Hidden as io.EOF, the failure keeps the bytes that came before it.
	n, err := s.PutPart(ctx, "upl_fail/000002", hideFailure{&failingReader{n: 1000}})
	require.NoError(t, err)
	require.EqualValues(t, 1000, n)
	require.Equal(t, make([]byte, 1000), readPart(t, s, "upl_fail/000002"))
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func testPartsDelete(t *testing.T, s *blob.Store) {
	ctx := context.Background()
	for _, k := range []string{"upl_a/000001", "upl_a/000002", "upl_ab/000001"} {
		_, err := s.PutPart(ctx, k, stringsReader(k))
		require.NoError(t, err)
	}
	o := put(t, s, []byte("an object"), blob.PutOptions{})

	n, err := s.DeleteParts(ctx, "upl_a/")
	require.NoError(t, err)
	require.Equal(t, 2, n)
	_, err = s.OpenPart(ctx, "upl_a/000001")
	requireCode(t, err, strata.CodeNotFound, "blob_not_found")
	require.Equal(t, "upl_ab/000001", string(readPart(t, s, "upl_ab/000001")), "a mere name prefix is not the upload")

	n, err = s.DeleteParts(ctx, "upl_a/")
	require.NoError(t, err)
	require.Zero(t, n, "deleting again finds nothing")

	n, err = s.DeleteParts(ctx, "upl_ab/000001")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, []string{o.Key}, keys(t, s), "objects are not parts")
}

func testPartsRejectBadKeys(t *testing.T, s *blob.Store) {
	ctx := context.Background()
	_, err := s.PutPart(ctx, "upl_x/000001", stringsReader("kept"))
	require.NoError(t, err)
	tests := []struct{ name, key string }{
		{"empty", ""},
		{"leading slash", "/upl_x/000001"},
		{"parent", "../sha256/ab"},
		{"parent in the middle", "upl_x/../../etc/passwd"},
		{"dot dot", ".."},
		{"dot", "upl_x/./000001"},
		{"double slash", "upl_x//000001"},
		{"upper case", "UPL_X/000001"},
		{"dot in a name", "upl_x/000001.attrs"},
		{"backslash", `upl_x\000001`},
		{"encoded slash", "upl_x%2f000001"},
		{"space", "upl x"},
		{"nul", "upl_x\x00"},
		{"unicode", "upl_é"},
		{"too long", strings.Repeat("a", 513)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.False(t, blob.ValidPartKey(tc.key))
			_, err := s.PutPart(ctx, tc.key, stringsReader("x"))
			requireCode(t, err, strata.CodeInvalid, "validation_failed")
			_, err = s.OpenPart(ctx, tc.key)
			requireCode(t, err, strata.CodeInvalid, "validation_failed")
			_, err = s.DeleteParts(ctx, tc.key)
			requireCode(t, err, strata.CodeInvalid, "validation_failed")
		})
	}
	// A trailing slash names a part's folder: a prefix, not a part.
	require.False(t, blob.ValidPartKey("upl_x/"))
	_, err = s.PutPart(ctx, "upl_x/", stringsReader("x"))
	requireCode(t, err, strata.CodeInvalid, "validation_failed")
	_, err = s.OpenPart(ctx, "upl_x/")
	requireCode(t, err, strata.CodeInvalid, "validation_failed")
	for _, p := range []string{"/", "//", "upl_x//", "../"} {
		_, err = s.DeleteParts(ctx, p)
		requireCode(t, err, strata.CodeInvalid, "validation_failed")
	}
	require.Equal(t, []string{"uploads/upl_x/000001"}, keys(t, s))
	require.True(t, blob.ValidPartKey("upl_06c3y8k2x0001m3b7q4w9r2e5t/000001"))
}

func testPartsInNamespace(t *testing.T, s *blob.Store) {
	ctx := context.Background()
	ns := s.Namespace("previews")
	_, err := ns.PutPart(ctx, "upl_ns/000001", stringsReader("namespaced"))
	require.NoError(t, err)
	require.Equal(t, []string{"previews/uploads/upl_ns/000001"}, keys(t, s))
	_, err = s.OpenPart(ctx, "upl_ns/000001")
	requireCode(t, err, strata.CodeNotFound, "blob_not_found")
	n, err := s.DeleteParts(ctx, "upl_ns/")
	require.NoError(t, err)
	require.Zero(t, n, "the root store does not reach the namespace's parts")
	require.Equal(t, "namespaced", string(readPart(t, ns, "upl_ns/000001")))
	n, err = ns.DeleteParts(ctx, "upl_ns/")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Empty(t, keys(t, s))
}
