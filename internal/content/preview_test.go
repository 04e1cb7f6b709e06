package content_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"math/rand/v2"
	"net/http"
	"testing"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/content"
	"github.com/stratadev/strata/internal/queue"
	"github.com/stratadev/strata/internal/storage/blob"
	"github.com/stretchr/testify/require"
	"golang.org/x/image/draw"
)

// photo draws a w×h image with gradients and a disc, like a photo only in
// that it compresses well and varies everywhere.
func photo(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{R: uint8(255 * x / w), G: uint8(255 * y / h), B: 128, A: 255}
			if dx, dy := x-w/2, y-h/2; dx*dx+dy*dy < h*h/16 {
				c = color.RGBA{R: 240, G: 220, B: 40, A: 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

func encodePNG(t testing.TB, img image.Image) string {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	return buf.String()
}

func encodeJPEG(t testing.TB, img image.Image) string {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}))
	return buf.String()
}

// encodeGIF encodes an animation of the frames, each the same size.
func encodeGIF(t testing.TB, frames ...image.Image) string {
	t.Helper()
	var g gif.GIF
	for _, f := range frames {
		p := image.NewPaletted(f.Bounds(), palette.Plan9)
		draw.Draw(p, p.Rect, f, f.Bounds().Min, draw.Src)
		g.Image, g.Delay = append(g.Image, p), append(g.Delay, 10)
	}
	var buf bytes.Buffer
	require.NoError(t, gif.EncodeAll(&buf, &g))
	return buf.String()
}

func uniform(w, h int, c color.Color) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Rect, image.NewUniform(c), image.Point{}, draw.Src)
	return img
}

// processed uploads file as the file of a new item of u, runs the
// processor on the upload event and returns the stored asset.
func (h *harness) processed(u user, file string) (strata.ID, content.Asset) {
	h.t.Helper()
	id := h.create(u, itemBody("Picture", 500)).ID
	h.upload(u, id, file)
	rows := h.events(id, content.SubjectAssetUploaded)
	require.Len(h.t, rows, 1)
	require.NoError(h.t, h.process(rows[0]))
	return strata.ID(id), h.storedAsset(strata.ID(id))
}

func (h *harness) storedAsset(id strata.ID) content.Asset {
	h.t.Helper()
	it, err := h.store.ItemByID(context.Background(), id)
	require.NoError(h.t, err)
	require.NotNil(h.t, it.Asset)
	return *it.Asset
}

// preview reads and decodes the preview with digest sha from the previews
// namespace.
func (h *harness) preview(sha string) image.Image {
	h.t.Helper()
	rc, attrs, err := h.proc.Previews.Open(context.Background(), sha)
	require.NoError(h.t, err)
	defer rc.Close()
	require.Equal(h.t, "image/jpeg", attrs.ContentType)
	img, format, err := image.Decode(rc)
	require.NoError(h.t, err)
	require.Equal(h.t, "jpeg", format)
	return img
}

func TestPreviewsOfImages(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name               string
		file               func(testing.TB) string
		thumbW, thumbH     int
		previewW, previewH int
	}{
		{"png wide", func(t testing.TB) string { return encodePNG(t, photo(1000, 500)) }, 320, 160, 64, 32},
		{"jpeg tall", func(t testing.TB) string { return encodeJPEG(t, photo(600, 900)) }, 213, 320, 43, 64},
		{"gif small is not enlarged", func(t testing.TB) string { return encodeGIF(t, photo(100, 50)) }, 100, 50, 64, 32},
		{"tiny", func(t testing.TB) string { return encodePNG(t, photo(3, 2)) }, 3, 2, 3, 2},
		{"a line", func(t testing.TB) string { return encodePNG(t, photo(2000, 3)) }, 320, 1, 64, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			c := h.newUser(strata.RoleCreator, testShards[0])
			_, a := h.processed(c, tc.file(t))
			require.Equal(t, content.AssetReady, a.Status)
			require.NotEmpty(t, a.ThumbnailSHA256)
			require.NotEmpty(t, a.PreviewSHA256)
			require.NotEqual(t, a.ThumbnailSHA256, a.PreviewSHA256)

			thumb, preview := h.preview(a.ThumbnailSHA256), h.preview(a.PreviewSHA256)
			require.Equal(t, image.Rect(0, 0, tc.thumbW, tc.thumbH), thumb.Bounds())
			require.Equal(t, image.Rect(0, 0, tc.previewW, tc.previewH), preview.Bounds())

			// Previews live in their own namespace: the root store, where
			// the originals are, does not have them.
			for _, sha := range []string{a.ThumbnailSHA256, a.PreviewSHA256} {
				_, _, err := h.proc.Blobs.Open(context.Background(), sha)
				require.Equal(t, strata.CodeNotFound, strata.ErrorCode(err), "%v", err)
			}
			_, _, err := h.proc.Previews.Open(context.Background(), a.SHA256)
			require.Equal(t, strata.CodeNotFound, strata.ErrorCode(err), "the original is not in the namespace: %v", err)
		})
	}
}

// near reports whether c is within 16 of want in every channel.
func near(c color.Color, want color.RGBA) bool {
	r, g, b, _ := c.RGBA()
	d := func(x uint32, y uint8) bool { return max(int(x>>8), int(y))-min(int(x>>8), int(y)) <= 16 }
	return d(r, want.R) && d(g, want.G) && d(b, want.B)
}

func TestPreviewOfAnimatedGIFIsItsFirstFrame(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.newUser(strata.RoleCreator, testShards[1])
	red, blue := color.RGBA{R: 255, A: 255}, color.RGBA{B: 255, A: 255}
	_, a := h.processed(c, encodeGIF(t, uniform(400, 200, red), uniform(400, 200, blue)))
	require.Equal(t, content.AssetReady, a.Status)
	for _, sha := range []string{a.ThumbnailSHA256, a.PreviewSHA256} {
		img := h.preview(sha)
		c := img.At(img.Bounds().Dx()/2, img.Bounds().Dy()/2)
		require.True(t, near(c, red), "%v", c)
	}
}

func TestThumbnailFlattensTransparencyOntoWhite(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.newUser(strata.RoleCreator, testShards[2])
	img := image.NewNRGBA(image.Rect(0, 0, 800, 400)) // transparent
	blue := color.RGBA{B: 200, A: 255}
	draw.Draw(img, image.Rect(400, 0, 800, 400), image.NewUniform(blue), image.Point{}, draw.Src)
	_, a := h.processed(c, encodePNG(t, img))

	thumb := h.preview(a.ThumbnailSHA256)
	require.Equal(t, image.Rect(0, 0, 320, 160), thumb.Bounds())
	white := color.RGBA{R: 255, G: 255, B: 255, A: 255}
	require.True(t, near(thumb.At(40, 80), white), "transparent becomes white: %v", thumb.At(40, 80))
	require.True(t, near(thumb.At(280, 80), blue), "%v", thumb.At(280, 80))
	preview := h.preview(a.PreviewSHA256)
	require.True(t, near(preview.At(2, 16), white), "%v", preview.At(2, 16))
}

// contrast is the mean difference of luma between neighbouring pixels.
func contrast(img image.Image) float64 {
	b := img.Bounds()
	luma := func(x, y int) float64 { return float64(color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y) }
	var sum float64
	n := 0
	for y := b.Min.Y; y < b.Max.Y-1; y++ {
		for x := b.Min.X; x < b.Max.X-1; x++ {
			l := luma(x, y)
			sum += abs(l-luma(x+1, y)) + abs(l-luma(x, y+1))
			n += 2
		}
	}
	return sum / float64(n)
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

// TestPreviewHidesDetail: detail as fine as the preview's pixels (a
// checkerboard, noise like small print) survives a plain resize to the
// preview's size but not the blurred preview.
func TestPreviewHidesDetail(t *testing.T) {
	t.Parallel()
	const side, cell = 640, 10 // 10 px cells become 1 px at 64×64
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name string
		dark func(cx, cy int) bool
	}{
		{"checkerboard", func(cx, cy int) bool { return (cx+cy)%2 == 0 }},
		{"noise", func(int, int) bool { return rnd.IntN(2) == 0 }},
	} {
		img := image.NewGray(image.Rect(0, 0, side, side))
		for cy := range side / cell {
			for cx := range side / cell {
				v := color.Gray{Y: 255}
				if tc.dark(cx, cy) {
					v.Y = 0
				}
				draw.Draw(img, image.Rect(cx*cell, cy*cell, (cx+1)*cell, (cy+1)*cell), image.NewUniform(v), image.Point{}, draw.Src)
			}
		}
		plain := image.NewRGBA(image.Rect(0, 0, side/cell, side/cell))
		draw.CatmullRom.Scale(plain, plain.Rect, img, img.Rect, draw.Src, nil)
		var buf bytes.Buffer
		require.NoError(t, jpeg.Encode(&buf, plain, &jpeg.Options{Quality: 70}))
		plainJPEG, err := jpeg.Decode(&buf)
		require.NoError(t, err)

		h := newHarness(t)
		c := h.newUser(strata.RoleCreator, testShards[0])
		_, a := h.processed(c, encodePNG(t, img))
		blurred := h.preview(a.PreviewSHA256)
		require.Equal(t, plain.Rect, blurred.Bounds())

		p, b := contrast(plainJPEG), contrast(blurred)
		t.Logf("%s: neighbour contrast %.1f resized, %.1f blurred", tc.name, p, b)
		require.Greater(t, p, 60.0, "%s: the plain resize keeps the detail", tc.name)
		require.Less(t, b, p/10, "%s: the blurred preview does not", tc.name)
	}
}

func TestPreviewsReprocessSameDigests(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.newUser(strata.RoleCreator, testShards[1])
	id, first := h.processed(c, encodeJPEG(t, photo(500, 400)))
	require.NotEmpty(t, first.ThumbnailSHA256)

	r := h.do(c, "POST", "/v1/items/"+string(id)+"/reprocess", nil)
	require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
	a := h.storedAsset(id)
	require.Equal(t, content.AssetProcessing, a.Status)
	require.Empty(t, a.ThumbnailSHA256, "reprocessing clears the previews until they are made again")
	rows := h.events(string(id), content.SubjectAssetUploaded)
	require.Len(t, rows, 2)
	require.NoError(t, h.process(rows[1]))

	a = h.storedAsset(id)
	require.Equal(t, content.AssetReady, a.Status)
	require.Equal(t, first.ThumbnailSHA256, a.ThumbnailSHA256)
	require.Equal(t, first.PreviewSHA256, a.PreviewSHA256)
}

func TestNoPreviewsOfOtherFiles(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.newUser(strata.RoleCreator, testShards[2])
	_, a := h.processed(c, "%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
	require.Equal(t, "application/pdf", a.MediaType)
	require.Equal(t, content.AssetReady, a.Status)
	require.Empty(t, a.ThumbnailSHA256)
	require.Empty(t, a.PreviewSHA256)
}

// TestProcessImageBodyUnreadable: the header decodes, the pixels do not.
func TestProcessImageBodyUnreadable(t *testing.T) {
	t.Parallel()
	pngBytes, jpegBytes := encodePNG(t, photo(300, 200)), encodeJPEG(t, photo(300, 200))
	badCRC := []byte(pngBytes)
	badCRC[len(badCRC)-20] ^= 0xff // in the last IDAT chunk
	for name, file := range map[string]string{
		"png truncated":  pngBytes[:len(pngBytes)/2],
		"png damaged":    string(badCRC),
		"jpeg truncated": jpegBytes[:len(jpegBytes)/2],
	} {
		h := newHarness(t)
		cfg, _, err := image.DecodeConfig(bytes.NewReader([]byte(file)))
		require.NoError(t, err, "%s: the header must decode", name)
		require.Equal(t, 300, cfg.Width)
		h.failed(file, content.ReasonImageUnreadable, nil)
	}
}

// failingPuts is a previews store whose Put fails as storage that is down.
type failingPuts struct{ content.Blobs }

func (failingPuts) Put(context.Context, io.Reader, blob.PutOptions) (blob.Object, error) {
	return blob.Object{}, &strata.Error{Code: strata.CodeUnavailable, Reason: "blob_unavailable", Message: "storage is down"}
}

func TestPreviewStorageFailureIsRetried(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.newUser(strata.RoleCreator, testShards[0])
	id := h.create(c, itemBody("Retry", 100)).ID
	h.upload(c, id, encodePNG(t, photo(50, 40)))
	row := h.events(id, content.SubjectAssetUploaded)[0]
	msg := queue.Message{Subject: content.SubjectAssetUploaded, ID: row.id, Data: row.payload, NumDelivered: 1}
	down := h.proc
	down.Previews = failingPuts{h.proc.Previews}

	err := down.Handle(context.Background(), msg)
	require.Error(t, err)
	require.False(t, queue.IsPermanent(err), "retried: %v", err)
	require.Equal(t, content.AssetProcessing, h.storedAsset(strata.ID(id)).Status)
	require.Empty(t, h.events(id, content.SubjectAssetReady))

	msg.NumDelivered = 2
	require.NoError(t, h.proc.Handle(context.Background(), msg))
	a := h.storedAsset(strata.ID(id))
	require.Equal(t, content.AssetReady, a.Status)
	require.NotEmpty(t, a.ThumbnailSHA256)
	require.NotEmpty(t, a.PreviewSHA256)

	// Down through the last delivery: failed, as for the originals.
	id = h.create(c, itemBody("Never", 100)).ID
	h.upload(c, id, encodePNG(t, photo(51, 40)))
	row = h.events(id, content.SubjectAssetUploaded)[0]
	msg = queue.Message{Subject: content.SubjectAssetUploaded, ID: row.id, Data: row.payload, NumDelivered: content.ProcessorMaxDeliver}
	err = down.Handle(context.Background(), msg)
	require.True(t, queue.IsPermanent(err), "%v", err)
	a = h.storedAsset(strata.ID(id))
	require.Equal(t, content.AssetFailed, a.Status)
	require.Equal(t, content.ReasonProcessingFailed, a.FailureReason)
	require.Empty(t, a.ThumbnailSHA256)
}

// swappedBlobs answers the second Open of any digest with the object other:
// storage handing back different bytes the second time.
type swappedBlobs struct {
	content.Blobs
	other string
	opens *int
}

func (s swappedBlobs) Open(ctx context.Context, sha string) (*blob.Reader, blob.Attributes, error) {
	*s.opens++
	if *s.opens == 2 {
		sha = s.other
	}
	return s.Blobs.Open(ctx, sha)
}

// TestPreviewsRecheckTheSecondRead: the full decode reads the file again;
// bytes that changed meanwhile, even into a decompression bomb, are never
// decoded.
func TestPreviewsRecheckTheSecondRead(t *testing.T) {
	t.Parallel()
	for name, other := range map[string]string{
		"bomb":          bombPNG(100_000, 100_000),
		"another image": encodePNG(t, photo(20, 10)),
		"same size":     encodePNG(t, uniform(20, 20, color.Black)),
	} {
		h := newHarness(t)
		c := h.newUser(strata.RoleCreator, testShards[1])
		otherID := h.create(c, itemBody("Other", 0)).ID
		sha := h.upload(c, otherID, other)["sha256"].(string)
		id := h.create(c, itemBody("Swapped", 0)).ID
		h.upload(c, id, encodePNG(t, photo(20, 20)))
		opens := 0
		proc := h.proc
		proc.Blobs = swappedBlobs{Blobs: h.proc.Blobs, other: sha, opens: &opens}
		row := h.events(id, content.SubjectAssetUploaded)[0]
		require.NoError(t, proc.Handle(context.Background(), queue.Message{ID: row.id, Data: row.payload, NumDelivered: 1}))
		require.Equal(t, 2, opens, name)
		a := h.storedAsset(strata.ID(id))
		require.Equal(t, content.AssetFailed, a.Status, name)
		require.Equal(t, content.ReasonChecksumMismatch, a.FailureReason, name)
	}
}
