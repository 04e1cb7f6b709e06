package observability_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratadev/strata/internal/observability"
	"github.com/stretchr/testify/require"
)

// lockedBuffer is the destination: safe to read while the flusher writes.
type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestBufferedWriterBatchesAndFlushes(t *testing.T) {
	t.Parallel()
	dst := &lockedBuffer{}
	w := observability.NewBufferedWriter(dst, 1<<16, time.Hour)
	for i := range 100 {
		fmt.Fprintf(w, "line %d\n", i)
	}
	require.Empty(t, dst.String(), "nothing is written before a flush")
	require.NoError(t, w.Close())
	require.Equal(t, 100, strings.Count(dst.String(), "\n"))
	require.Equal(t, 1, dst.writes, "a hundred lines, one write")
}

func TestBufferedWriterFlushesOnItsOwn(t *testing.T) {
	t.Parallel()
	dst := &lockedBuffer{}
	w := observability.NewBufferedWriter(dst, 1<<16, 10*time.Millisecond)
	defer w.Close()
	fmt.Fprintln(w, "hello")
	require.Eventually(t, func() bool { return dst.String() == "hello\n" }, 5*time.Second, 5*time.Millisecond)
}

func TestBufferedWriterKeepsLinesWhole(t *testing.T) {
	t.Parallel()
	dst := &lockedBuffer{}
	w := observability.NewBufferedWriter(dst, 256, time.Hour)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				fmt.Fprintf(w, "goroutine %d line %03d %s\n", g, i, strings.Repeat("x", 40))
			}
		})
	}
	wg.Wait()
	require.NoError(t, w.Close())
	lines := strings.Split(strings.TrimSuffix(dst.String(), "\n"), "\n")
	require.Len(t, lines, 1600)
	for _, l := range lines {
		require.Regexp(t, `^goroutine \d line \d{3} x{40}$`, l)
	}
}
