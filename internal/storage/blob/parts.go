package blob

import (
	"context"
	"errors"
	"io"
	"strings"

	"github.com/stratadev/strata"
	gcblob "gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// partsPrefix holds the parts of resumable uploads: raw objects under
// keys their caller chooses, unlike the content-addressed sha256/ objects.
const partsPrefix = "uploads/"

// putPart stores the bytes of r, streaming them, as the part object
// uploads/<key> and returns how many it stored; an existing part of that
// key is replaced. A key is one or more segments of a-z, 0-9, '_' and '-'
// joined by '/' (see ValidPartKey), so that no key leaves uploads/. When r
// fails the write is aborted and nothing is stored; a caller that wants to
// keep what came before a failure hides the failure as io.EOF. Errors:
// invalid (a bad key; unreadable_body, or r's own *strata.Error, when r
// fails), unavailable.
func (s *Store) putPart(ctx context.Context, key string, r io.Reader) (int64, error) {
	if !ValidPartKey(key) {
		return 0, badPartKey()
	}
	full := s.prefix + partsPrefix + key
	// As in Put: cancelling wctx before the writer closes aborts the write,
	// so a failed body is never committed.
	wctx, abort := context.WithCancel(ctx)
	defer abort()
	pr := &partReader{r: r, abort: abort}
	err := s.bucket.Upload(wctx, full, pr, &gcblob.WriterOptions{
		ContentType:    "application/octet-stream",
		BufferSize:     s3PartSize,
		MaxConcurrency: s3Concurrency,
	})
	switch {
	case pr.err != nil:
		return 0, unreadable(pr.err)
	case err != nil:
		return 0, translate("put part", full, err)
	}
	return pr.n, nil
}

// openPart opens the part object uploads/<key>; the caller must close it.
// Errors: invalid (a bad key), not_found, unavailable.
func (s *Store) openPart(ctx context.Context, key string) (io.ReadCloser, error) {
	if !ValidPartKey(key) {
		return nil, badPartKey()
	}
	full := s.prefix + partsPrefix + key
	r, err := s.bucket.NewReader(ctx, full, nil)
	if err != nil {
		return nil, translate("open part", full, err)
	}
	return r, nil
}

// deleteParts deletes every part object whose key starts with
// uploads/<prefix> and returns how many it deleted. prefix is a part key,
// optionally ending in '/' (give "<upload>/" to delete one upload's parts
// and not those of an upload whose name merely starts alike). Errors:
// invalid (a bad prefix), unavailable.
func (s *Store) deleteParts(ctx context.Context, prefix string) (int, error) {
	if !ValidPartKey(strings.TrimSuffix(prefix, "/")) {
		return 0, badPartKey()
	}
	it := s.bucket.List(&gcblob.ListOptions{Prefix: s.prefix + partsPrefix + prefix})
	n := 0
	for {
		o, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, translate("list", partsPrefix+prefix, err)
		}
		if o.IsDir {
			continue
		}
		if err := s.bucket.Delete(ctx, o.Key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			return n, translate("delete", o.Key, err)
		}
		n++
	}
}

// ValidPartKey reports whether key may name a part object: segments of
// one or more of a-z, 0-9, '_' and '-', joined by single slashes; hence
// no "..", no leading or trailing slash, nothing that leaves uploads/.
func ValidPartKey(key string) bool {
	if key == "" || len(key) > 512 {
		return false
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for i := range len(seg) {
			c := seg[i]
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '-' {
				return false
			}
		}
	}
	return true
}

func badPartKey() error {
	return strata.Invalid("key", "must be segments of a-z, 0-9, '_' and '-' joined by '/'")
}

// partReader counts what passes through it and aborts the write when its
// source fails, before the error reaches the writer.
type partReader struct {
	r     io.Reader
	n     int64
	err   error
	abort func()
}

func (p *partReader) Read(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	n, err := p.r.Read(b)
	p.n += int64(n)
	if err != nil && err != io.EOF {
		p.err = err
		p.abort()
		return 0, err
	}
	return n, err
}
