package blob_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/stratadev/strata/internal/storage/blob"
	"github.com/stratadev/strata/internal/storage/blob/blobtest"
	"github.com/stretchr/testify/require"
)

// TestPutStreamsInBoundedMemory stores a 96 MiB body produced on the fly
// and checks that the live heap never grew by anything near the body's
// size. It is deliberately not parallel: it measures the whole process's
// heap, and Go runs parallel tests only after the sequential ones, so
// nothing else allocates meanwhile.
func TestPutStreamsInBoundedMemory(t *testing.T) {
	t.Run("File", func(t *testing.T) {
		// A 1 MiB copy buffer, little else.
		testBoundedMemory(t, blobtest.Open(t), 4<<20)
	})
	t.Run("S3", func(t *testing.T) {
		// 5 MiB multipart parts, two in flight, and the SDK's own pools:
		// about 31 MiB measured against versitygw for 32 MiB and for 96 MiB
		// bodies alike, so bounded, not proportional to the body.
		testBoundedMemory(t, blobtest.OpenS3(t), 40<<20)
	})
}

func testBoundedMemory(t *testing.T, s *blob.Store, bound uint64) {
	const size = 96 << 20
	liveHeap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	base := liveHeap()
	var peak uint64
	g := newGenerator(size, 42)
	next := int64(0)
	g.onRead = func(served int64) {
		// Sample the live heap every 2 MiB of body.
		if served >= next {
			next += 2 << 20
			peak = max(peak, liveHeap())
		}
	}
	o, err := s.Put(context.Background(), g, blob.PutOptions{MaxSize: 128 << 20})
	require.NoError(t, err)
	require.Equal(t, int64(size), o.Size)
	require.Equal(t, g.sum(), o.SHA256)
	require.Equal(t, "application/octet-stream", o.ContentType)

	growth := peak - min(base, peak)
	t.Logf("live heap grew by at most %d KiB while storing %d MiB", growth>>10, size>>20)
	require.Less(t, growth, bound, "Put must stream, not buffer the body")
	require.Less(t, bound, uint64(size))
}
