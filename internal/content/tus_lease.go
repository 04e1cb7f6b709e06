package content

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/stratadev/strata"
)

// lease is the hold of one request on an upload's row: only its holder
// writes parts or changes the upload, across every instance. It is renewed
// in the background until released; should a renewal find it taken over,
// ctx is cancelled, which aborts the part being written.
type lease struct {
	s     *Service
	id    strata.ID
	token string
	// ctx is the context of the work done under the lease.
	ctx    context.Context
	cancel context.CancelFunc
	stop   chan struct{}
	done   chan struct{}
	gone   atomic.Bool
}

// lockUpload takes the lease of an upload. Errors: not_found
// "upload_not_found", conflict "upload_locked" (423) while another request
// holds it, unavailable.
func (s *Service) lockUpload(ctx context.Context, id strata.ID) (*lease, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, strata.Internal(err)
	}
	token := hex.EncodeToString(b[:])
	now := s.clock.Now()
	ok, err := s.store.LockUpload(ctx, id, token, now, now.Add(uploadLease))
	if strata.ErrorCode(err) == strata.CodeNotFound {
		return nil, errUploadNotFound
	}
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errUploadLocked
	}
	l := &lease{s: s, id: id, token: token, stop: make(chan struct{}), done: make(chan struct{})}
	l.ctx, l.cancel = context.WithCancel(ctx)
	go l.keep()
	return l, nil
}

// keep renews the lease every uploadLeaseRenew until it is released or
// lost. A renewal that fails is tried again at the next tick; if they keep
// failing the lease runs out, another request may take it, and the fenced
// writes of this one then fail.
func (l *lease) keep() {
	defer close(l.done)
	t := time.NewTicker(uploadLeaseRenew)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ok, err := l.s.store.RenewUploadLock(l.ctx, l.id, l.token, l.s.clock.Now().Add(uploadLease))
		if err != nil {
			l.s.log.Warn("renew upload lease", slog.String("upload_id", string(l.id)), slog.String("error", err.Error()))
			continue
		}
		if !ok {
			l.gone.Store(true)
			l.cancel()
			return
		}
	}
}

// lost reports whether a renewal found the lease taken over.
func (l *lease) lost() bool { return l.gone.Load() }

// release stops the renewals and frees the upload for the next request,
// whatever the state of the request's own context.
func (l *lease) release() {
	close(l.stop)
	<-l.done
	l.cancel()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(l.ctx), 10*time.Second)
	defer cancel()
	if err := l.s.store.UnlockUpload(ctx, l.id, l.token); err != nil {
		// It runs out by itself within uploadLease.
		l.s.log.Warn("release upload lease", slog.String("upload_id", string(l.id)), slog.String("error", err.Error()))
	}
}

// chunkReader is the body of one PATCH on its way to a part: it refuses
// more than max bytes, checks the Upload-Checksum digest at the end, and,
// without a checksum, turns a failed read (the client went away) into the
// end of the part, so that the bytes received so far are kept. Every
// refusal is an error from Read, which aborts the part: nothing is stored.
type chunkReader struct {
	r    io.Reader
	left int64     // bytes still accepted
	h    hash.Hash // nil without Upload-Checksum
	want []byte
	err  error // what refused the chunk
	cut  error // the failed read taken for the end
	eof  bool
}

func newChunkReader(r io.Reader, max int64, sum *UploadChecksum) *chunkReader {
	c := &chunkReader{r: r, left: max}
	if sum != nil {
		c.h, c.want = uploadHashes[sum.Algorithm](), sum.Sum
	}
	return c
}

func (c *chunkReader) Read(p []byte) (int, error) {
	switch {
	case c.err != nil:
		return 0, c.err
	case c.eof:
		return 0, io.EOF
	case len(p) == 0:
		return 0, nil
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1] // one byte past the limit tells a body that is too long
	}
	n, err := c.r.Read(p)
	if int64(n) > c.left {
		c.err = strata.Errorf(strata.CodeTooLarge, "body_too_large",
			"the body holds more than the upload's remaining bytes or the largest PATCH (%d bytes); nothing was stored", c.left)
		return 0, c.err
	}
	c.left -= int64(n)
	if c.h != nil {
		c.h.Write(p[:n])
	}
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, io.EOF):
		c.eof = true
		if c.h != nil && !bytes.Equal(c.h.Sum(nil), c.want) {
			c.err = errChecksumMismatch
			return 0, c.err
		}
		return n, io.EOF
	case c.h == nil:
		c.cut, c.eof = err, true
		return n, io.EOF
	default:
		// With a checksum, part of a body cannot be verified: drop it.
		c.err = &strata.Error{Code: strata.CodeInvalid, Reason: "unreadable_body",
			Message: "the body could not be read; nothing was stored", Err: err}
		return 0, c.err
	}
}

// lazyPart reads one recorded part, opening it at the first read (so that
// assembling an upload holds one part open at a time) and checking that it
// holds the recorded number of bytes.
type lazyPart struct {
	ctx  context.Context
	b    Blobs
	key  string
	size int64
	rc   io.ReadCloser
	n    int64
	done bool
}

func (p *lazyPart) Read(b []byte) (int, error) {
	if p.done {
		return 0, io.EOF
	}
	if p.rc == nil {
		rc, err := p.b.OpenPart(p.ctx, p.key)
		if strata.ErrorCode(err) == strata.CodeNotFound {
			return 0, strata.Internal(errors.New("part " + p.key + " is missing"))
		}
		if err != nil {
			return 0, err
		}
		p.rc = rc
	}
	n, err := p.rc.Read(b)
	p.n += int64(n)
	switch {
	case p.n > p.size || (errors.Is(err, io.EOF) && p.n != p.size):
		return 0, strata.Internal(errors.New("part " + p.key + " does not hold its recorded size"))
	case errors.Is(err, io.EOF):
		p.Close()
		p.done = true
	case err != nil:
		return 0, &strata.Error{Code: strata.CodeUnavailable, Reason: "blob_unavailable", Message: "blob storage is unavailable", Err: err}
	}
	return n, err
}

// Close closes the part if it is open.
func (p *lazyPart) Close() error {
	if p.rc == nil {
		return nil
	}
	err := p.rc.Close()
	p.rc = nil
	return err
}
