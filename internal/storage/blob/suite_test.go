package blob_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/storage/blob"
	"github.com/stratadev/strata/internal/storage/blob/blobtest"
	"github.com/stretchr/testify/require"
)

// The same suite runs on every backend.

func TestFile(t *testing.T) {
	t.Parallel()
	runSuite(t, blobtest.Open)
}

func TestS3(t *testing.T) {
	t.Parallel()
	srv := blobtest.StartS3(t)
	runSuite(t, srv.Open)
}

func runSuite(t *testing.T, open opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, *blob.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"Deduplicates", testDeduplicates},
		{"RefusesOverMaxSize", testRefusesOverMaxSize},
		{"RefusesUnreadableBody", testRefusesUnreadableBody},
		{"RefusesBadOptions", testRefusesBadOptions},
		{"ReadsRanges", testReadsRanges},
		{"NotFound", testNotFound},
		{"RejectsBadDigests", testRejectsBadDigests},
		{"ConcurrentIdenticalPuts", testConcurrentIdenticalPuts},
		{"SniffsMediaType", testSniffsMediaType},
		{"SweepsTemp", testSweepsTemp},
		{"Pings", testPings},
		{"SeparatesNamespaces", testSeparatesNamespaces},
		{"SweepsUnreferenced", testSweepsUnreferenced},
		{"OpensLocalFiles", testOpensLocalFiles},
		{"PartsRoundTrip", testPartsRoundTrip},
		{"PartsFailingBody", testPartsFailingBody},
		{"PartsDelete", testPartsDelete},
		{"PartsRejectBadKeys", testPartsRejectBadKeys},
		{"PartsInNamespace", testPartsInNamespace},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

func testRoundTrip(t *testing.T, s *blob.Store) {
	for _, n := range []int{0, 1, 511, 512, 513, 1<<20 + 3} {
		data := randomBytes(n, byte(n))
		o := put(t, s, data, blob.PutOptions{})
		require.Equal(t, sum(data), o.SHA256)
		require.Equal(t, int64(n), o.Size)
		require.Equal(t, "sha256/"+o.SHA256[:2]+"/"+o.SHA256, o.Key)
		require.False(t, o.ModTime.IsZero())

		got, a := readAll(t, s, o.SHA256)
		require.Equal(t, data, got, "size %d", n)
		require.Equal(t, blob.Attributes{SHA256: o.SHA256, Size: int64(n), ContentType: o.ContentType, ModTime: a.ModTime}, a)
		require.Equal(t, `"`+o.SHA256+`"`, a.ETag())

		st, err := s.Stat(context.Background(), o.SHA256)
		require.NoError(t, err)
		require.Equal(t, o.SHA256, st.SHA256)
		require.Equal(t, o.Size, st.Size)
		require.Equal(t, o.ContentType, st.ContentType)
		require.Equal(t, o.Sniffed, st.Sniffed)
		require.Equal(t, o.Key, st.Key)
	}
	const empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	_, err := s.Stat(context.Background(), empty)
	require.NoError(t, err)
	for _, k := range keys(t, s) {
		require.True(t, strings.HasPrefix(k, "sha256/"), "leftover key %s", k)
	}
	require.Len(t, keys(t, s), 6)
}

func testDeduplicates(t *testing.T, s *blob.Store) {
	data := []byte("the same bytes, stored twice")
	first := put(t, s, data, blob.PutOptions{ContentType: "text/markdown"})
	second := put(t, s, data, blob.PutOptions{ContentType: "application/octet-stream"})
	require.Equal(t, first.Key, second.Key)
	require.Equal(t, first.SHA256, second.SHA256)
	require.Equal(t, "text/markdown", second.ContentType, "the first media type stays")
	require.Equal(t, []string{first.Key}, keys(t, s))

	require.NoError(t, s.Delete(context.Background(), first.SHA256))
	require.Empty(t, keys(t, s))
}

func testRefusesOverMaxSize(t *testing.T, s *blob.Store) {
	tests := []struct {
		name    string
		size    int64
		max     int64
		refused bool
	}{
		{"exactly the limit", 4096, 4096, false},
		{"one byte over", 4097, 4096, true},
		{"under the sniff length", 300, 100, true},
		{"large body, small limit", 8 << 20, 1 << 20, true},
		{"no limit", 64 << 10, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := keys(t, s)
			g := newGenerator(tc.size, 7)
			o, err := s.Put(context.Background(), g, blob.PutOptions{MaxSize: tc.max})
			if !tc.refused {
				require.NoError(t, err)
				require.Equal(t, tc.size, o.Size)
				require.NoError(t, s.Delete(context.Background(), o.SHA256))
				return
			}
			requireCode(t, err, strata.CodeTooLarge, "body_too_large")
			// The body was not read to its end: Put stopped at the limit.
			require.LessOrEqual(t, g.served, max(tc.max+1, 512)+32<<10)
			require.Equal(t, before, keys(t, s), "a refused body leaves nothing behind")
		})
	}
}

func testRefusesUnreadableBody(t *testing.T, s *blob.Store) {
	for _, n := range []int{0, 100, 3 << 20} {
		_, err := s.Put(context.Background(), &failingReader{n: n}, blob.PutOptions{})
		requireCode(t, err, strata.CodeInvalid, "unreadable_body")
	}
	require.Empty(t, keys(t, s))
}

func testRefusesBadOptions(t *testing.T, s *blob.Store) {
	for _, opts := range []blob.PutOptions{{MaxSize: -1}, {ContentType: "not a type"}, {ContentType: "text/"}} {
		_, err := s.Put(context.Background(), strings.NewReader("x"), opts)
		requireCode(t, err, strata.CodeInvalid, "validation_failed")
	}
	require.Empty(t, keys(t, s))
}

func testReadsRanges(t *testing.T, s *blob.Store) {
	data := randomBytes(10_000, 3)
	o := put(t, s, data, blob.PutOptions{})
	empty := put(t, s, nil, blob.PutOptions{})
	tests := []struct {
		name           string
		sha            string
		offset, length int64
		want           []byte
		reason         string
	}{
		{"first bytes", o.SHA256, 0, 5, data[:5], ""},
		{"middle", o.SHA256, 4000, 1000, data[4000:5000], ""},
		{"to the end", o.SHA256, 9000, -1, data[9000:], ""},
		{"whole", o.SHA256, 0, -1, data, ""},
		{"past the end is cut", o.SHA256, 9990, 100, data[9990:], ""},
		{"zero length", o.SHA256, 10, 0, []byte{}, ""},
		{"at the end", o.SHA256, 10_000, -1, []byte{}, ""},
		{"at the end, zero length", o.SHA256, 10_000, 0, []byte{}, ""},
		{"last byte", o.SHA256, 9999, 1, data[9999:], ""},
		{"empty object", empty.SHA256, 0, -1, []byte{}, ""},
		{"empty object, zero length", empty.SHA256, 0, 0, []byte{}, ""},
		{"empty object, some length", empty.SHA256, 0, 10, []byte{}, ""},
		{"past the end", o.SHA256, 10_001, -1, nil, "range_not_satisfiable"},
		{"far past the end", o.SHA256, 1 << 40, 10, nil, "range_not_satisfiable"},
		{"past the end of empty", empty.SHA256, 1, -1, nil, "range_not_satisfiable"},
		{"negative offset", o.SHA256, -1, 10, nil, "validation_failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, a, err := s.OpenRange(context.Background(), tc.sha, tc.offset, tc.length)
			if tc.reason != "" {
				requireCode(t, err, strata.CodeInvalid, tc.reason)
				return
			}
			require.NoError(t, err)
			defer r.Close()
			got, err := io.ReadAll(r)
			require.NoError(t, err)
			require.Equal(t, tc.want, append([]byte{}, got...))
			want := o
			if tc.sha == empty.SHA256 {
				want = empty
			}
			require.Equal(t, want.Size, a.Size, "the size is the whole object's")
			require.Equal(t, want.ContentType, a.ContentType)
		})
	}

	// A Reader seeks, as http.ServeContent needs.
	r, _, err := s.Open(context.Background(), o.SHA256)
	require.NoError(t, err)
	defer r.Close()
	_, err = r.Seek(-10, io.SeekEnd)
	require.NoError(t, err)
	tail, err := io.ReadAll(r)
	require.NoError(t, err)
	require.Equal(t, data[len(data)-10:], tail)
}

func testNotFound(t *testing.T, s *blob.Store) {
	ctx := context.Background()
	missing := sum([]byte("never stored"))
	_, err := s.Stat(ctx, missing)
	requireCode(t, err, strata.CodeNotFound, "blob_not_found")
	_, _, err = s.Open(ctx, missing)
	requireCode(t, err, strata.CodeNotFound, "blob_not_found")
	_, _, err = s.OpenRange(ctx, missing, 10, 10)
	requireCode(t, err, strata.CodeNotFound, "blob_not_found")
	require.NoError(t, s.Delete(ctx, missing), "deleting a missing object is not an error")
}

func testRejectsBadDigests(t *testing.T, s *blob.Store) {
	ctx := context.Background()
	good := sum([]byte("x"))
	// A real object, so that a digest resolving to it by accident shows.
	put(t, s, []byte("x"), blob.PutOptions{})
	tests := []struct{ name, sha string }{
		{"empty", ""},
		{"short", good[:63]},
		{"long", good + "0"},
		{"upper case", strings.ToUpper(good)},
		{"not hex", strings.Repeat("g", 64)},
		{"parent dir", "../" + good[3:]},
		{"slash", good[:2] + "/" + good[3:]},
		{"dot dot in the middle", good[:30] + ".." + good[32:]},
		{"encoded slash", good[:61] + "%2f"},
		{"backslash", good[:63] + `\`},
		{"nul", good[:63] + "\x00"},
		{"space", " " + good[1:]},
		{"unicode", "é" + good[2:]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.False(t, blob.ValidDigest(tc.sha))
			_, err := blob.Key(tc.sha)
			requireCode(t, err, strata.CodeInvalid, "validation_failed")
			_, err = s.Stat(ctx, tc.sha)
			requireCode(t, err, strata.CodeInvalid, "validation_failed")
			_, _, err = s.Open(ctx, tc.sha)
			requireCode(t, err, strata.CodeInvalid, "validation_failed")
			_, _, err = s.OpenRange(ctx, tc.sha, 0, 1)
			requireCode(t, err, strata.CodeInvalid, "validation_failed")
			requireCode(t, s.Delete(ctx, tc.sha), strata.CodeInvalid, "validation_failed")
		})
	}
	require.True(t, blob.ValidDigest(good))
}

func testConcurrentIdenticalPuts(t *testing.T, s *blob.Store) {
	data := randomBytes(256<<10, 9)
	const n = 8
	objs := make([]blob.Object, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			objs[i], errs[i] = s.Put(context.Background(), bytes.NewReader(data), blob.PutOptions{})
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, sum(data), objs[i].SHA256)
		require.Equal(t, int64(len(data)), objs[i].Size)
	}
	require.Equal(t, []string{objs[0].Key}, keys(t, s), "one object, no temporaries")
	got, _ := readAll(t, s, objs[0].SHA256)
	require.Equal(t, data, got)
}

func testSniffsMediaType(t *testing.T, s *blob.Store) {
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00")
	tests := []struct {
		name        string
		body        []byte
		contentType string
		wantType    string
		wantSniffed string
	}{
		{"png", png, "", "image/png", "image/png"},
		{"html", []byte("<!DOCTYPE html><html><body>hi</body></html>"), "", "text/html; charset=utf-8", "text/html; charset=utf-8"},
		{"text", []byte("plain words"), "", "text/plain; charset=utf-8", "text/plain; charset=utf-8"},
		{"binary", randomBytes(2048, 1), "", "application/octet-stream", "application/octet-stream"},
		{"pdf", []byte("%PDF-1.7\n..."), "", "application/pdf", "application/pdf"},
		{"stated type wins, sniffed kept", append(append([]byte{}, png...), 'x'), "application/x-custom", "application/x-custom", "image/png"},
		{"signature past 512 bytes is not seen", append(bytes.Repeat([]byte{0}, 600), png...), "", "application/octet-stream", "application/octet-stream"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := put(t, s, tc.body, blob.PutOptions{ContentType: tc.contentType})
			require.Equal(t, tc.wantType, o.ContentType)
			require.Equal(t, tc.wantSniffed, o.Sniffed)
			st, err := s.Stat(context.Background(), o.SHA256)
			require.NoError(t, err)
			require.Equal(t, tc.wantType, st.ContentType)
			require.Equal(t, tc.wantSniffed, st.Sniffed)
			_, a := readAll(t, s, o.SHA256)
			require.Equal(t, tc.wantType, a.ContentType)
		})
	}
}

func testSweepsTemp(t *testing.T, s *blob.Store) {
	ctx := context.Background()
	o := put(t, s, []byte("kept"), blob.PutOptions{})
	require.NoError(t, blob.WriteRaw(ctx, s, "tmp/0123456789abcdef0123456789abcdef", []byte("crashed upload")))

	n, err := s.SweepTemp(ctx, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	require.Zero(t, n, "recent temporaries stay")
	require.Len(t, keys(t, s), 2)

	n, err = s.SweepTemp(ctx, time.Now().Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, []string{o.Key}, keys(t, s))
}

func testPings(t *testing.T, s *blob.Store) {
	require.NoError(t, s.Ping(context.Background()))
}

func testSeparatesNamespaces(t *testing.T, s *blob.Store) {
	ctx := context.Background()
	ns := s.Namespace("previews")
	data := randomBytes(1000, 7)
	o := put(t, ns, data, blob.PutOptions{})
	require.True(t, strings.HasPrefix(o.Key, "previews/sha256/"), o.Key)

	// The root store does not see the namespace's object, nor the reverse.
	_, _, err := s.Open(ctx, o.SHA256)
	require.Equal(t, strata.CodeNotFound, strata.ErrorCode(err))
	other := randomBytes(500, 9)
	root := put(t, s, other, blob.PutOptions{})
	_, _, err = ns.Open(ctx, root.SHA256)
	require.Equal(t, strata.CodeNotFound, strata.ErrorCode(err))

	rc, a, err := ns.Open(ctx, o.SHA256)
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	rc.Close()
	require.NoError(t, err)
	require.Equal(t, data, got)
	require.Equal(t, int64(len(data)), a.Size)

	// Closing a namespace leaves the store usable.
	require.NoError(t, ns.Close())
	require.NoError(t, s.Ping(ctx))
	require.NoError(t, ns.Delete(ctx, o.SHA256))
	_, err = ns.Stat(ctx, o.SHA256)
	require.Equal(t, strata.CodeNotFound, strata.ErrorCode(err))
	require.Panics(t, func() { s.Namespace("../x") })
}

func testSweepsUnreferenced(t *testing.T, s *blob.Store) {
	ctx := context.Background()
	keep := put(t, s, randomBytes(100, 1), blob.PutOptions{})
	drop1 := put(t, s, randomBytes(200, 2), blob.PutOptions{})
	drop2 := put(t, s, randomBytes(300, 3), blob.PutOptions{})
	ns := s.Namespace("previews")
	other := put(t, ns, randomBytes(400, 4), blob.PutOptions{})

	// The real Sweep refuses a cutoff younger than MinSweepAge.
	_, err := s.Sweep(ctx, time.Now(), perSHA(func(string) (bool, error) { return false, nil }))
	require.Error(t, err)

	var asked []string
	n, err := blob.SweepAt(ctx, s, time.Now().Add(time.Minute), perSHA(func(sha string) (bool, error) {
		asked = append(asked, sha)
		return sha == keep.SHA256, nil
	}))
	require.NoError(t, err)
	require.Equal(t, 2, n)
	// Asked once about the kept object; about a swept one again after it is gone.
	require.ElementsMatch(t, []string{keep.SHA256, drop1.SHA256, drop1.SHA256, drop2.SHA256, drop2.SHA256}, asked, "only this namespace's objects")
	_, err = s.Stat(ctx, keep.SHA256)
	require.NoError(t, err)
	for _, sha := range []string{drop1.SHA256, drop2.SHA256} {
		_, err = s.Stat(ctx, sha)
		require.Equal(t, strata.CodeNotFound, strata.ErrorCode(err))
	}
	_, err = ns.Stat(ctx, other.SHA256)
	require.NoError(t, err)

	// Objects newer than the cutoff are not even considered.
	n, err = blob.SweepAt(ctx, s, time.Now().Add(-time.Hour), perSHA(func(string) (bool, error) {
		t.Fatal("asked about an object newer than the cutoff")
		return false, nil
	}))
	require.NoError(t, err)
	require.Zero(t, n)

	// An error from referenced stops the sweep, deleting nothing more.
	boom := errors.New("db down")
	_, err = blob.SweepAt(ctx, s, time.Now().Add(time.Minute), perSHA(func(string) (bool, error) { return false, boom }))
	require.ErrorIs(t, err, boom)
	_, err = s.Stat(ctx, keep.SHA256)
	require.NoError(t, err)
	// An error on the second question (after deleting) restores the batch.
	second := 0
	_, err = blob.SweepAt(ctx, s, time.Now().Add(time.Minute), func(_ context.Context, shas []string) (map[string]bool, error) {
		second++
		if second == 2 {
			return nil, boom
		}
		return map[string]bool{}, nil
	})
	require.ErrorIs(t, err, boom)
	_, err = s.Stat(ctx, keep.SHA256)
	require.NoError(t, err, "restored after the failed second question")

	// A reference committed while the object is being swept (the second
	// question says yes) brings it back.
	n, err = blob.SweepAt(ctx, s, time.Now().Add(time.Minute), perSHA(func(string) (bool, error) {
		return false, nil
	}))
	require.NoError(t, err)
	require.Equal(t, 1, n, "keep is swept once unreferenced")
	revived := put(t, s, randomBytes(500, 5), blob.PutOptions{})
	calls := 0
	n, err = blob.SweepAt(ctx, s, time.Now().Add(time.Minute), perSHA(func(string) (bool, error) {
		calls++
		return calls > 1, nil
	}))
	require.NoError(t, err)
	require.Zero(t, n)
	require.Equal(t, 2, calls)
	got, _ := readAll(t, s, revived.SHA256)
	require.Equal(t, randomBytes(500, 5), got)

	// The other side: the sweep finished first; the caller that has just
	// committed its reference restores the object from the trash.
	n, err = blob.SweepAt(ctx, s, time.Now().Add(time.Minute), perSHA(func(string) (bool, error) { return false, nil }))
	require.NoError(t, err)
	require.Equal(t, 1, n)
	_, err = s.Stat(ctx, revived.SHA256)
	require.Equal(t, strata.CodeNotFound, strata.ErrorCode(err))
	ok, err := s.EnsurePresent(ctx, revived.SHA256)
	require.NoError(t, err)
	require.True(t, ok)
	got, _ = readAll(t, s, revived.SHA256)
	require.Equal(t, randomBytes(500, 5), got)
	ok, err = s.EnsurePresent(ctx, revived.SHA256)
	require.NoError(t, err)
	require.True(t, ok, "present stays present")

	// Once the trash is purged, nothing comes back.
	_, err = blob.SweepAt(ctx, s, time.Now().Add(time.Minute), perSHA(func(string) (bool, error) { return false, nil }))
	require.NoError(t, err)
	purged, err := s.PurgeTrash(ctx, time.Now().Add(time.Minute))
	require.NoError(t, err)
	require.GreaterOrEqual(t, purged, 1)
	ok, err = s.EnsurePresent(ctx, revived.SHA256)
	require.NoError(t, err)
	require.False(t, ok)
	_, err = s.EnsurePresent(ctx, "nope")
	require.Equal(t, strata.CodeInvalid, strata.ErrorCode(err))
}

// perSHA adapts a question about one digest to blob.Referenced.
func perSHA(fn func(sha string) (bool, error)) blob.Referenced {
	return func(_ context.Context, shas []string) (map[string]bool, error) {
		refs := map[string]bool{}
		for _, sha := range shas {
			ok, err := fn(sha)
			if err != nil {
				return nil, err
			}
			if ok {
				refs[sha] = true
			}
		}
		return refs, nil
	}
}

func testOpensLocalFiles(t *testing.T, s *blob.Store) {
	data := randomBytes(3000, 6)
	o := put(t, s, data, blob.PutOptions{})
	f, err := s.File(o.SHA256)
	if !s.Local() {
		require.ErrorIs(t, err, blob.ErrNotLocal)
		return
	}
	require.NoError(t, err)
	got, err := io.ReadAll(f)
	f.Close()
	require.NoError(t, err)
	require.Equal(t, data, got)
	ns := s.Namespace("previews")
	_, err = ns.File(o.SHA256)
	require.Equal(t, strata.CodeNotFound, strata.ErrorCode(err), "namespaces stay apart")
	_, err = s.File("../../etc/passwd")
	require.Equal(t, strata.CodeInvalid, strata.ErrorCode(err))
}
