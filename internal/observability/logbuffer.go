package observability

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// BufferedWriter batches log output: records are copied into a buffer and
// written out when it fills, every interval, and on Close. One request's
// access-log line then costs a memory copy instead of a write system call,
// which under load is the larger part of logging's price. The trade: a
// process killed without a chance to Close (SIGKILL, OOM) loses at most
// the last interval of log lines. Each Write is kept whole, so records from
// concurrent goroutines never interleave.
type BufferedWriter struct {
	mu   sync.Mutex
	buf  *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

// NewBufferedWriter buffers up to size bytes for w and flushes every
// interval until Close.
func NewBufferedWriter(w io.Writer, size int, interval time.Duration) *BufferedWriter {
	b := &BufferedWriter{buf: bufio.NewWriterSize(w, size), stop: make(chan struct{}), done: make(chan struct{})}
	go b.loop(interval)
	return b
}

func (b *BufferedWriter) loop(interval time.Duration) {
	defer close(b.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.Flush()
		}
	}
}

// Write buffers p, writing the buffer out first when p does not fit.
func (b *BufferedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(p) > b.buf.Available() && b.buf.Buffered() > 0 {
		if err := b.buf.Flush(); err != nil {
			return 0, err
		}
	}
	return b.buf.Write(p)
}

// Flush writes out what is buffered.
func (b *BufferedWriter) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Flush()
}

// Close stops the periodic flush and writes out what is buffered. Writes
// after Close are still accepted and flushed by the next Flush or Close.
func (b *BufferedWriter) Close() error {
	select {
	case <-b.stop:
	default:
		close(b.stop)
		<-b.done
	}
	return b.Flush()
}
