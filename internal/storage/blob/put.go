package blob

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/stratadev/strata"
	gcblob "gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

const (
	// sniffLen is how many leading bytes media-type sniffing looks at.
	sniffLen = 512
	// s3PartSize and s3Concurrency bound an S3 upload's memory to
	// (s3Concurrency+1) parts.
	s3PartSize    = 5 << 20
	s3Concurrency = 2
	// cleanupTimeout bounds deleting a temporary object after the caller's
	// context has ended.
	cleanupTimeout = 30 * time.Second
)

// PutOptions tunes one Put.
type PutOptions struct {
	// MaxSize is the largest body accepted, in bytes; 0 means no limit.
	MaxSize int64
	// ContentType is stored as the object's media type; empty means the
	// type sniffed from the bytes.
	ContentType string
}

// Object describes a stored object.
type Object struct {
	SHA256      string // the digest, 64 lowercase hex digits
	Size        int64
	ContentType string // the stored media type
	// Sniffed is the media type net/http.DetectContentType found in the
	// first 512 bytes, whatever ContentType says.
	Sniffed string
	Key     string // the storage key, sha256/<2 hex>/<64 hex>
	ModTime time.Time
}

// errTooLarge stops an upload that crossed MaxSize.
var errTooLarge = errors.New("body over the size limit")

// put stores the bytes of r under their SHA-256, streaming them, and
// returns the stored object; storing bytes already present returns the
// existing object (with its media type). Errors: invalid (bad options;
// unreadable_body when r fails), too_large/body_too_large past MaxSize,
// unavailable. On any error nothing new is left in the store.
func (s *Store) put(ctx context.Context, r io.Reader, opts PutOptions) (Object, error) {
	if opts.MaxSize < 0 {
		return Object{}, strata.Invalid("max_size", "must not be negative")
	}
	if opts.ContentType != "" {
		if _, _, err := mime.ParseMediaType(opts.ContentType); err != nil {
			return Object{}, strata.Invalid("content_type", "is not a media type")
		}
	}

	head := make([]byte, sniffLen)
	n, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return Object{}, unreadable(err)
	}
	head = head[:n]
	sniffed := http.DetectContentType(head)
	ctype := opts.ContentType
	if ctype == "" {
		ctype = sniffed
	}

	tmp, err := tempKey(s.prefix)
	if err != nil {
		return Object{}, strata.Internal(err)
	}
	// Whatever happens below, the temporary object goes, even when ctx has
	// already ended.
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		_ = s.bucket.Delete(dctx, tmp)
	}()

	// Cancelling wctx before the writer closes aborts the write, so a
	// refused or failed body is never committed, not even under tmp/.
	wctx, abort := context.WithCancel(ctx)
	defer abort()
	m := &meter{r: io.MultiReader(bytes.NewReader(head), r), h: sha256.New(), max: opts.MaxSize, abort: abort}
	err = s.bucket.Upload(wctx, tmp, m, &gcblob.WriterOptions{
		ContentType:    ctype,
		Metadata:       map[string]string{metaSniffed: sniffed},
		BufferSize:     s3PartSize,
		MaxConcurrency: s3Concurrency,
	})
	switch {
	case errors.Is(m.err, errTooLarge):
		return Object{}, strata.Errorf(strata.CodeTooLarge, "body_too_large",
			"the body is larger than %d bytes", opts.MaxSize)
	case m.err != nil:
		return Object{}, unreadable(m.err)
	case err != nil:
		return Object{}, translate("upload", tmp, err)
	}

	sha := hex.EncodeToString(m.h.Sum(nil))
	key, _ := s.key(sha)
	o, err := s.publish(ctx, tmp, sha, key, m.n)
	if err != nil {
		return Object{}, err
	}
	o.SHA256, o.Key, o.Sniffed = sha, key, sniffed
	return o, nil
}

// publish makes the upload at tmp, size bytes long, available at key,
// unless an object of that size is there already, and describes the object
// at key.
func (s *Store) publish(ctx context.Context, tmp, sha, key string, size int64) (Object, error) {
	b, _ := hex.DecodeString(sha[:2])
	mu := &s.publishMu[int(b[0])%len(s.publishMu)]
	mu.Lock()
	defer mu.Unlock()
	a, err := s.bucket.Attributes(ctx, key)
	if err == nil && a.Size == size {
		return Object{Size: a.Size, ContentType: a.ContentType, ModTime: a.ModTime}, nil
	}
	if err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return Object{}, translate("stat", key, err)
	}
	// Missing, or (only after outside damage) of the wrong size: the
	// digest matches our bytes, so replacing it is always right.
	if err := s.bucket.Copy(ctx, key, tmp, nil); err != nil {
		return Object{}, translate("copy", key, err)
	}
	if a, err = s.bucket.Attributes(ctx, key); err != nil {
		return Object{}, translate("stat", key, err)
	}
	return Object{Size: a.Size, ContentType: a.ContentType, ModTime: a.ModTime}, nil
}

// meter counts and hashes what passes through it, and fails once more than
// max bytes (when max > 0) have come, or when the source fails. Either
// failure aborts the write before the error reaches the writer.
type meter struct {
	r     io.Reader
	h     hash.Hash
	n     int64
	max   int64
	err   error
	abort func()
}

func (m *meter) Read(p []byte) (int, error) {
	if m.err != nil {
		return 0, m.err
	}
	if m.max > 0 && int64(len(p)) > m.max-m.n+1 {
		// Never read more than one byte past the limit.
		p = p[:m.max-m.n+1]
	}
	n, err := m.r.Read(p)
	m.n += int64(n)
	if m.max > 0 && m.n > m.max {
		m.fail(errTooLarge)
		return 0, m.err
	}
	m.h.Write(p[:n])
	if err != nil && err != io.EOF {
		m.fail(err)
	}
	return n, err
}

func (m *meter) fail(err error) {
	m.err = err
	m.abort()
}

func unreadable(err error) error {
	var se *strata.Error
	if errors.As(err, &se) {
		return err
	}
	return &strata.Error{Code: strata.CodeInvalid, Reason: "unreadable_body", Message: "the body could not be read",
		Err: fmt.Errorf("read body: %w", err)}
}

func tempKey(prefix string) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return prefix + tempPrefix + hex.EncodeToString(b[:]), nil
}
