package content

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/jpeg"
	"io"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/storage/blob"
	"golang.org/x/image/draw"
)

// Sizes and qualities of the previews made for image assets.
const (
	thumbnailMax     = 320 // px, the longer side of a thumbnail
	previewMax       = 64  // px, the longer side of a blurred preview
	thumbnailQuality = 82
	previewQuality   = 70
	// Three passes of a box blur approach a Gaussian (σ ≈ 2.4 px at
	// radius 2, over a 64 px image): shapes and colours stay, detail
	// and text do not.
	blurRadius = 2
	blurPasses = 3
)

// previewable reports whether processing makes previews of a media type:
// the image types whose decoders are registered.
func previewable(mediaType string) bool {
	switch mediaType {
	case "image/jpeg", "image/png", "image/gif":
		return true
	}
	return false
}

// previews reads the image with digest sha a second time (inspect hashed
// the first read and checked its header), decodes it whole and stores its
// thumbnail and blurred preview in p.Previews. It returns the failure
// reason ("" when fine) and the previews' digests; err is for a retry.
// The second read is checked like the first, not trusted: its header must
// give the dimensions w×h inspect allowed (so the full decode is bounded
// by MaxPixels) and its bytes must hash to sha.
func (p AssetProcessor) previews(ctx context.Context, sha string, w, h int) (reason, thumb, preview string, err error) {
	rc, _, err := p.Blobs.Open(ctx, sha)
	if strata.ErrorCode(err) == strata.CodeNotFound {
		return ReasonBlobMissing, "", "", nil
	}
	if err != nil {
		return "", "", "", fmt.Errorf("open blob %s: %w", sha, err)
	}
	defer rc.Close()
	hash := sha256.New()
	src := &readErr{r: io.TeeReader(rc, hash)}
	// The header decoder reads ahead; what it read is replayed to the
	// full decoder, so the blob is streamed, never held whole.
	var head bytes.Buffer
	cfg, _, cfgErr := image.DecodeConfig(io.TeeReader(src, &head))
	// A header other than the one inspect allowed: the bytes changed.
	changed := cfgErr != nil || cfg.Width != w || cfg.Height != h
	var img image.Image
	var decodeErr error
	if !changed {
		img, _, decodeErr = image.Decode(io.MultiReader(&head, src))
	}
	if src.err != nil {
		return "", "", "", fmt.Errorf("read blob %s: %w", sha, src.err)
	}
	if _, err := io.Copy(io.Discard, src); err != nil {
		return "", "", "", fmt.Errorf("read blob %s: %w", sha, err)
	}
	if changed || hex.EncodeToString(hash.Sum(nil)) != sha {
		return ReasonChecksumMismatch, "", "", nil
	}
	if decodeErr != nil {
		return ReasonImageUnreadable, "", "", nil
	}
	t, b, err := makePreviews(img)
	if err != nil {
		return "", "", "", err
	}
	// Content-addressed: processing the same image again stores nothing new
	// and yields the same digests.
	to, err := p.Previews.Put(ctx, bytes.NewReader(t), blob.PutOptions{ContentType: "image/jpeg"})
	if err != nil {
		return "", "", "", fmt.Errorf("store thumbnail of %s: %w", sha, err)
	}
	bo, err := p.Previews.Put(ctx, bytes.NewReader(b), blob.PutOptions{ContentType: "image/jpeg"})
	if err != nil {
		return "", "", "", fmt.Errorf("store preview of %s: %w", sha, err)
	}
	return "", to.SHA256, bo.SHA256, nil
}

// makePreviews returns the JPEG thumbnail of img (within
// thumbnailMax×thumbnailMax, transparency flattened onto white) and its
// blurred preview (within previewMax×previewMax). Neither is ever larger
// than img.
func makePreviews(img image.Image) (thumb, blurred []byte, err error) {
	sb := img.Bounds()
	tw, th := fit(sb.Dx(), sb.Dy(), thumbnailMax)
	t := image.NewRGBA(image.Rect(0, 0, tw, th))
	draw.Draw(t, t.Rect, image.White, image.Point{}, draw.Src)
	draw.CatmullRom.Scale(t, t.Rect, img, sb, draw.Over, nil)

	// The preview is made from the thumbnail, far cheaper than from the
	// original and no different once blurred.
	pw, ph := fit(tw, th, previewMax)
	b := image.NewRGBA(image.Rect(0, 0, pw, ph))
	draw.CatmullRom.Scale(b, b.Rect, t, t.Rect, draw.Src, nil)
	boxBlur(b, blurRadius, blurPasses)

	if thumb, err = encodeJPEG(t, thumbnailQuality); err != nil {
		return nil, nil, err
	}
	if blurred, err = encodeJPEG(b, previewQuality); err != nil {
		return nil, nil, err
	}
	return thumb, blurred, nil
}

func encodeJPEG(img image.Image, quality int) ([]byte, error) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		return nil, strata.Internal(fmt.Errorf("encode jpeg: %w", err))
	}
	return buf.Bytes(), nil
}

// fit returns the size of a w×h image scaled to fit within side×side with
// its aspect ratio kept, never scaled up; no side is under 1 px.
func fit(w, h, side int) (int, int) {
	if w <= side && h <= side {
		return w, h
	}
	if w >= h {
		return side, int(roundDiv(int64(h)*int64(side), int64(w)))
	}
	return int(roundDiv(int64(w)*int64(side), int64(h))), side
}

// roundDiv returns a/b rounded to the nearest integer, at least 1 (a, b > 0).
func roundDiv(a, b int64) int64 {
	return max((2*a+b)/(2*b), 1)
}

// boxBlur blurs img in place: passes times, a box blur of the given radius
// across, then down. Pixels past an edge repeat the edge. img must start
// at (0, 0).
func boxBlur(img *image.RGBA, radius, passes int) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	tmp := make([]uint8, len(img.Pix))
	for range passes {
		blurLines(tmp, img.Pix, w, 4, h, img.Stride, radius)
		blurLines(img.Pix, tmp, h, img.Stride, w, 4, radius)
	}
}

// blurLines sets each pixel of dst to the mean of the 2·radius+1 pixels of
// src around it along its line. A line has n pixels step bytes apart;
// there are lines lines, lineStep bytes apart; a pixel is 4 bytes.
func blurLines(dst, src []uint8, n, step, lines, lineStep, radius int) {
	width := 2*radius + 1
	for l := range lines {
		line := l * lineStep
		for i := range n {
			var sum [4]int
			for k := i - radius; k <= i+radius; k++ {
				p := src[line+min(max(k, 0), n-1)*step:]
				sum[0], sum[1], sum[2], sum[3] = sum[0]+int(p[0]), sum[1]+int(p[1]), sum[2]+int(p[2]), sum[3]+int(p[3])
			}
			d := dst[line+i*step:]
			for c, s := range sum {
				d[c] = uint8((s + width/2) / width)
			}
		}
	}
}
