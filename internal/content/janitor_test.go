package content_test

import (
	"context"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/content"
	"github.com/stratadev/strata/internal/storage/blob"
	"github.com/stretchr/testify/require"
)

// ageBlobs makes every stored object of the harness's blob folder look
// modified at t.
func (h *harness) ageBlobs(t time.Time) {
	h.t.Helper()
	require.NoError(h.t, filepath.WalkDir(h.blobDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Chtimes(path, t, t)
	}))
}

func TestCleanupSweepsUnreferencedBlobs(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	creator := h.newUser(strata.RoleCreator, testShards[0])
	other := h.newUser(strata.RoleCreator, testShards[2])

	kept := pdfFile(100, 1)
	it := h.readyItem(creator, 0, "kept.pdf", kept, true)
	img := h.readyItem(other, 700, "img.png", pngFile(t, 80, 60), true)
	stored, err := h.store.ItemByID(ctx, strata.ID(img.ID))
	require.NoError(t, err)
	thumb, blurred := stored.Asset.ThumbnailSHA256, stored.Asset.PreviewSHA256
	require.NotEmpty(t, thumb)
	require.NotEmpty(t, blurred)
	replaced := pdfFile(100, 2)
	it2 := h.create(other, itemBody("replaced", 0))
	h.upload(other, it2.ID, replaced)
	replacement := pdfFile(100, 3)
	h.upload(other, it2.ID, replacement)
	refused := "#!/bin/sh\necho not allowed\n" // sniffed text/plain: refused after storing
	r := h.do(creator, "PUT", "/v1/items/"+it.ID+"/file", refused)
	require.Equal(t, http.StatusUnsupportedMediaType, r.status)
	// A part left by a writer whose upload is long gone.
	_, err = h.blobs.PutPart(ctx, "upl_stray/00000001", strings.NewReader("stray part"))
	require.NoError(t, err)
	previews := h.blobs.Namespace("previews")
	_, err = previews.Put(ctx, strings.NewReader("orphan preview"), blob.PutOptions{})
	require.NoError(t, err)

	existsSHA := func(store *blob.Store, sha string) bool {
		_, err := store.Stat(ctx, sha)
		if strata.ErrorCode(err) == strata.CodeNotFound {
			return false
		}
		require.NoError(t, err)
		return true
	}
	exists := func(store *blob.Store, data string) bool {
		_, err := store.Stat(ctx, digest(data))
		if strata.ErrorCode(err) == strata.CodeNotFound {
			return false
		}
		require.NoError(t, err)
		return true
	}

	// Young blobs are left alone, referenced or not.
	st, err := h.svc.Cleanup(ctx)
	require.NoError(t, err)
	require.Equal(t, content.CleanupStats{}, st)
	require.True(t, exists(h.blobs, refused))

	h.ageBlobs(time.Now().Add(-2 * content.BlobGrace))
	st, err = h.svc.Cleanup(ctx)
	require.NoError(t, err)
	require.Equal(t, content.CleanupStats{Files: 2, Previews: 1, Parts: 1}, st)
	require.True(t, exists(h.blobs, kept))
	require.True(t, exists(h.blobs, replacement))
	require.False(t, exists(h.blobs, replaced))
	require.False(t, exists(h.blobs, refused))
	require.False(t, exists(previews, "orphan preview"))
	require.True(t, existsSHA(previews, thumb), "a referenced thumbnail stays")
	require.True(t, existsSHA(previews, blurred), "a referenced preview stays")
	require.True(t, exists(h.blobs, pngFile(t, 80, 60)))
	// The item still downloads.
	loc := h.downloadURL(creator, it.ID)
	require.Equal(t, http.StatusOK, h.fetch(user{}, "GET", loc, nil).status)
}
