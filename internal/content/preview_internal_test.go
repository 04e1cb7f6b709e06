package content

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ w, h, side, wantW, wantH int }{
		{1000, 500, 320, 320, 160},
		{500, 1000, 320, 160, 320},
		{2000, 1500, 320, 320, 240},
		{600, 900, 320, 213, 320},
		{100, 50, 320, 100, 50}, // never enlarged
		{320, 320, 320, 320, 320},
		{321, 1, 320, 320, 1},
		{100_000, 1, 64, 64, 1}, // at least 1 px
		{1, 100_000, 64, 1, 64},
	} {
		w, h := fit(tc.w, tc.h, tc.side)
		require.Equal(t, [2]int{tc.wantW, tc.wantH}, [2]int{w, h}, "%d×%d within %d", tc.w, tc.h, tc.side)
	}
}

func TestBoxBlur(t *testing.T) {
	t.Parallel()
	img := image.NewRGBA(image.Rect(0, 0, 9, 7))
	for i := range img.Pix {
		img.Pix[i] = 100
	}
	boxBlur(img, 2, 3)
	for _, v := range img.Pix {
		require.EqualValues(t, 100, v, "a flat image stays flat, edges included")
	}

	img.SetRGBA(4, 3, color.RGBA{R: 255, G: 255, B: 255, A: 255})
	boxBlur(img, 2, 1)
	c := img.RGBAAt(4, 3)
	require.EqualValues(t, 100+(155+12)/25, c.R, "one bright pixel spreads over the 5×5 box")
	require.Equal(t, c, img.RGBAAt(2, 1))
	require.EqualValues(t, 100, img.RGBAAt(1, 3).R, "nothing beyond the radius")
}

// photoLike is a w×h image as a camera's JPEG decodes: YCbCr 4:2:0, with
// smooth gradients, edges and sensor noise.
func photoLike(tb testing.TB, w, h int) image.Image {
	tb.Helper()
	rnd := rand.New(rand.NewPCG(3, 4))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			n := rnd.IntN(24)
			c := color.RGBA{R: uint8(x * 200 / w), G: uint8(y * 200 / h), B: uint8((x + y) % 200), A: 255}
			if (x/150+y/150)%3 == 0 {
				c.R, c.G = 220, 210
			}
			c.R, c.G, c.B = c.R+uint8(n), c.G+uint8(n), c.B+uint8(n)
			img.SetRGBA(x, y, c)
		}
	}
	var buf bytes.Buffer
	require.NoError(tb, jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}))
	out, err := jpeg.Decode(&buf)
	require.NoError(tb, err)
	return out
}

func BenchmarkMakePreviews(b *testing.B) {
	img := photoLike(b, 2000, 1500)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := makePreviews(img); err != nil {
			b.Fatal(err)
		}
	}
}
