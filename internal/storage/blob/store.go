package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/resilience"
	gcblob "gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/s3blob"
	"gocloud.dev/gcerrors"
)

const (
	objectPrefix = "sha256/"
	tempPrefix   = "tmp/"

	// metaSniffed is the object metadata key holding the sniffed media type.
	metaSniffed = "sniffed"
)

// Reader reads a stored object. It is an io.ReadSeekCloser (seeking reopens
// the range lazily, so http.ServeContent can use it) and an io.WriterTo.
// The caller must close it.
type Reader = gcblob.Reader

// Store is a content-addressed blob store. It is safe for concurrent use.
type Store struct {
	bucket *gcblob.Bucket
	// publish serialises, per digest, the check-then-copy that publishes an
	// upload, so concurrent Puts of the same bytes in one process never
	// rewrite an object someone may be reading (fileblob rewrites the
	// metadata file of a key in place).
	publishMu *[64]sync.Mutex
	// dir is the folder of a fileblob bucket, which Ping checks: fileblob
	// lists a missing folder as empty, so the bucket alone cannot tell.
	dir string
	// prefix is prepended to every key: "" for the root store, "<name>/"
	// for a Namespace.
	prefix string
	// guard runs every call to the storage through its resilience
	// policies (nil: none); namespaces share it.
	guard *resilience.Guard
	// parent is the store a Namespace was made from; nil for a root store,
	// which alone closes the bucket.
	parent *Store
}

// Open opens the blob storage at rawURL (see Config.URL; the empty URL is
// refused, the caller decides the default folder). A folder is created if
// missing. Open does not contact S3: use Ping for readiness.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	if rawURL == "" {
		return nil, fmt.Errorf("open blob storage: empty URL")
	}
	if err := checkURL(rawURL); err != nil {
		return nil, fmt.Errorf("open blob storage: %w", err)
	}
	if isPlainPath(rawURL) {
		abs, err := filepath.Abs(rawURL)
		if err != nil {
			return nil, fmt.Errorf("open blob storage: %w", err)
		}
		rawURL = (&url.URL{Scheme: fileblob.Scheme, Path: filepath.ToSlash(abs)}).String()
	}
	// A mux of our own rather than gocloud's global one: only these two
	// drivers, with our options. URLOpeners are not reused across calls
	// because s3blob's mutates its Options while opening.
	mux := new(gcblob.URLMux)
	mux.RegisterBucket(fileblob.Scheme, &fileblob.URLOpener{Options: fileblob.Options{
		CreateDir: true,
		// Temporary files next to their target, not in os.TempDir, so
		// the final rename never crosses a mount point.
		NoTempDir: true,
	}})
	mux.RegisterBucket(s3blob.Scheme, &s3blob.URLOpener{})
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("open blob storage: %w", err)
	}
	b, err := mux.OpenBucketURL(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("open blob storage: %w", err)
	}
	s := New(b)
	if u.Scheme == fileblob.Scheme {
		// As fileblob reads it: host "." marks a relative path.
		s.dir = filepath.FromSlash(u.Path)
		if u.Host == "." {
			s.dir = strings.TrimPrefix(s.dir, string(filepath.Separator))
		}
	}
	return s, nil
}

// New returns a Store over a bucket opened elsewhere (tests, or a driver
// configured by hand). The Store owns b and closes it.
func New(b *gcblob.Bucket) *Store {
	return &Store{bucket: b, publishMu: new([64]sync.Mutex)}
}

// Namespace returns a store of its own kind over the same bucket whose
// objects live under "<name>/": the same digest in two namespaces is two
// objects, and a reader of one namespace cannot reach the other's objects.
// Content keeps public previews in a namespace so that a public,
// content-addressed URL can never name a gated original. name is one or
// more lowercase letters, digits or dashes. Closing a namespace does
// nothing; close the store it came from.
func (s *Store) Namespace(name string) *Store {
	for _, c := range name {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			panic(fmt.Sprintf("blob: bad namespace name %q", name))
		}
	}
	if name == "" || name+"/" == tempPrefix || name+"/" == objectPrefix || name+"/" == trashPrefix || name+"/" == partsPrefix {
		panic(fmt.Sprintf("blob: bad namespace name %q", name))
	}
	root := s
	if s.parent != nil {
		root = s.parent
	}
	return &Store{bucket: s.bucket, publishMu: s.publishMu, dir: s.dir, prefix: s.prefix + name + "/", parent: root, guard: s.guard}
}

// Close releases the bucket; it does nothing for a Namespace.
func (s *Store) Close() error {
	if s.parent != nil {
		return nil
	}
	return s.bucket.Close()
}

// key returns the storage key of digest sha in this store.
func (s *Store) key(sha string) (string, error) {
	k, err := Key(sha)
	if err != nil {
		return "", err
	}
	return s.prefix + k, nil
}

// ping reports whether the storage is reachable: nil, or unavailable.
func (s *Store) ping(ctx context.Context) error {
	if s.dir != "" {
		if fi, err := os.Stat(s.dir); err != nil || !fi.IsDir() {
			if err == nil {
				err = fmt.Errorf("%s is not a folder", s.dir)
			}
			return &strata.Error{Code: strata.CodeUnavailable, Reason: "blob_unavailable",
				Message: "blob storage is unavailable", Err: err}
		}
	}
	ok, err := s.bucket.IsAccessible(ctx)
	if err != nil {
		return translate("ping", "", err)
	}
	if !ok {
		return &strata.Error{Code: strata.CodeUnavailable, Reason: "blob_unavailable",
			Message: "blob storage is unavailable", Err: errors.New("bucket is not accessible")}
	}
	return nil
}

// Attributes describes the object behind a Reader.
type Attributes struct {
	SHA256      string
	Size        int64 // of the whole object, whatever range was opened
	ContentType string
	ModTime     time.Time
}

// ETag returns the object's strong entity tag, its quoted digest.
func (a Attributes) ETag() string { return `"` + a.SHA256 + `"` }

// Local reports whether the store is a local folder, whose objects File
// opens.
func (s *Store) Local() bool { return s.dir != "" }

// ErrNotLocal is returned by File for a store that is not a folder.
var ErrNotLocal = errors.New("blob store is not a local folder")

// File opens the file holding the object with digest sha, when the store
// is a local folder (ErrNotLocal otherwise), so that it can be sent with
// sendfile(2). The caller must close it. Errors: ErrNotLocal, invalid,
// not_found, unavailable.
func (s *Store) File(sha string) (*os.File, error) {
	if s.dir == "" {
		return nil, ErrNotLocal
	}
	key, err := s.key(sha)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(s.dir, filepath.FromSlash(key)))
	if errors.Is(err, os.ErrNotExist) {
		return nil, &strata.Error{Code: strata.CodeNotFound, Reason: "blob_not_found", Message: "no such object"}
	}
	if err != nil {
		return nil, &strata.Error{Code: strata.CodeUnavailable, Reason: "blob_unavailable", Message: "blob storage is unavailable", Err: err}
	}
	return f, nil
}

// stat describes the object with digest sha. Errors: invalid, not_found,
// unavailable.
func (s *Store) stat(ctx context.Context, sha string) (Object, error) {
	key, err := s.key(sha)
	if err != nil {
		return Object{}, err
	}
	a, err := s.bucket.Attributes(ctx, key)
	if err != nil {
		return Object{}, translate("stat", key, err)
	}
	return Object{SHA256: sha, Size: a.Size, ContentType: a.ContentType,
		Sniffed: a.Metadata[metaSniffed], Key: key, ModTime: a.ModTime}, nil
}

// openRange opens length bytes of the object with digest sha from offset;
// a negative length reads to the end, and a range past the end is cut
// short. An offset equal to the size opens an empty reader. Errors:
// invalid (a negative offset; range_not_satisfiable for an offset past the
// end), not_found, unavailable.
func (s *Store) openRange(ctx context.Context, sha string, offset, length int64) (*Reader, Attributes, error) {
	key, err := s.key(sha)
	if err != nil {
		return nil, Attributes{}, err
	}
	if offset < 0 {
		return nil, Attributes{}, strata.Invalid("offset", "must not be negative")
	}
	r, err := s.bucket.NewRangeReader(ctx, key, offset, length, nil)
	if err != nil && gcerrors.Code(err) != gcerrors.NotFound && (offset > 0 || length >= 0) {
		// S3 answers 416 to a range starting at or past the end (even
		// bytes=0-0 of an empty object), where a folder reads nothing;
		// look at the size to answer alike.
		r, err = s.openAtEnd(ctx, sha, key, offset, err)
	}
	if err != nil {
		return nil, Attributes{}, translate("open", key, err)
	}
	if offset > r.Size() {
		r.Close()
		return nil, Attributes{}, rangeNotSatisfiable(offset, r.Size())
	}
	return r, Attributes{SHA256: sha, Size: r.Size(), ContentType: r.ContentType(), ModTime: r.ModTime()}, nil
}

// openAtEnd handles a failed range read starting at offset: past the end
// it is range_not_satisfiable, at the end an empty reader; otherwise the
// original error stands.
func (s *Store) openAtEnd(ctx context.Context, sha, key string, offset int64, orig error) (*Reader, error) {
	o, err := s.stat(ctx, sha)
	switch {
	case err != nil || offset < o.Size:
		return nil, orig
	case offset > o.Size:
		return nil, rangeNotSatisfiable(offset, o.Size)
	case o.Size == 0:
		return s.bucket.NewRangeReader(ctx, key, 0, -1, nil)
	default:
		return s.bucket.NewRangeReader(ctx, key, 0, 0, nil)
	}
}

func rangeNotSatisfiable(offset, size int64) *strata.Error {
	return strata.Errorf(strata.CodeInvalid, "range_not_satisfiable",
		"the range starts at byte %d, past the end of the %d-byte object", offset, size)
}

// deleteObject removes the object with digest sha; deleting a missing object is
// not an error. Callers decide when no one refers to the object any more:
// a Put of the same bytes racing a Delete may report an object that the
// Delete then removes. Errors: invalid, unavailable.
func (s *Store) deleteObject(ctx context.Context, sha string) error {
	key, err := s.key(sha)
	if err != nil {
		return err
	}
	if err := s.bucket.Delete(ctx, key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return translate("delete", key, err)
	}
	return nil
}

// SweepTemp deletes the temporary objects last modified before cutoff,
// which crashed Puts left behind, and returns how many it deleted. A cutoff
// an hour or more in the past never touches a Put in progress.
func (s *Store) SweepTemp(ctx context.Context, cutoff time.Time) (int, error) {
	return s.deleteOlder(ctx, s.prefix+tempPrefix, cutoff)
}

// deleteOlder deletes the objects under prefix modified before cutoff.
func (s *Store) deleteOlder(ctx context.Context, prefix string, cutoff time.Time) (int, error) {
	it := s.bucket.List(&gcblob.ListOptions{Prefix: prefix})
	n := 0
	for {
		o, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, translate("list", prefix, err)
		}
		if o.IsDir || !o.ModTime.Before(cutoff) {
			continue
		}
		if err := s.bucket.Delete(ctx, o.Key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			return n, translate("delete", o.Key, err)
		}
		n++
	}
}

// MinSweepAge is the youngest an object may be for Sweep to delete it.
const MinSweepAge = time.Hour

// trashPrefix holds swept objects for a while, so that one referenced
// again during its sweep can be restored (see Sweep).
const trashPrefix = "trash/"

// Referenced reports which of the digests shas something still references
// (the digests absent from the answer are unreferenced).
type Referenced func(ctx context.Context, shas []string) (map[string]bool, error)

// SweepBatch is how many digests one question to Referenced carries.
const SweepBatch = 500

// Sweep deletes the objects of this store (its namespace only) last
// modified before cutoff that referenced reports unreferenced, and returns
// how many it deleted. cutoff must be at least MinSweepAge in the past.
// Digests are asked about in batches of SweepBatch, so a sweep of n old
// objects asks about 2n/SweepBatch questions at most.
//
// A sweep cannot lose an object that a caller is starting to reference
// again (a Put of the same bytes finds it stored, then the caller commits
// a reference): each object is first copied to the trash, then deleted,
// and only then is referenced asked again; an object referenced by then is
// restored. A caller that records a reference to an object it did not
// write itself calls EnsurePresent after the reference is committed. Both
// sides write before they read, so whatever the interleaving one of them
// sees the other and restores the object from the trash. PurgeTrash
// empties the trash of objects older than a cutoff.
func (s *Store) Sweep(ctx context.Context, cutoff time.Time, referenced Referenced) (int, error) {
	if time.Since(cutoff) < MinSweepAge {
		return 0, fmt.Errorf("blob sweep: the cutoff %s is less than %s ago", cutoff.Format(time.RFC3339), MinSweepAge)
	}
	return s.sweep(ctx, cutoff, referenced)
}

func (s *Store) sweep(ctx context.Context, cutoff time.Time, referenced Referenced) (int, error) {
	prefix := s.prefix + objectPrefix
	it := s.bucket.List(&gcblob.ListOptions{Prefix: prefix})
	n := 0
	batch := make([]string, 0, SweepBatch)
	for {
		o, err := it.Next(ctx)
		if err != nil && !errors.Is(err, io.EOF) {
			return n, translate("list", prefix, err)
		}
		done := err != nil
		if !done {
			sha := o.Key[strings.LastIndexByte(o.Key, '/')+1:]
			if !o.IsDir && o.ModTime.Before(cutoff) && ValidDigest(sha) && o.Key == s.prefix+mustKey(sha) {
				batch = append(batch, sha)
			}
		}
		if len(batch) == SweepBatch || (done && len(batch) > 0) {
			deleted, err := s.sweepBatch(ctx, batch, referenced)
			n += deleted
			if err != nil {
				return n, err
			}
			batch = batch[:0]
		}
		if done {
			return n, nil
		}
	}
}

// sweepBatch trashes the unreferenced objects among shas, asks again, and
// restores those referenced meanwhile; it returns how many stay deleted.
func (s *Store) sweepBatch(ctx context.Context, shas []string, referenced Referenced) (int, error) {
	refs, err := referenced(ctx, shas)
	if err != nil {
		return 0, err
	}
	var gone []string
	for _, sha := range shas {
		if refs[sha] {
			continue
		}
		key, _ := s.key(sha)
		trash := s.prefix + trashPrefix + sha
		if err := s.bucket.Copy(ctx, trash, key, nil); err != nil {
			if gcerrors.Code(err) == gcerrors.NotFound {
				continue // swept by someone else meanwhile
			}
			return 0, s.restoreAll(ctx, gone, translate("copy", trash, err))
		}
		if err := s.bucket.Delete(ctx, key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			return 0, s.restoreAll(ctx, gone, translate("delete", key, err))
		}
		gone = append(gone, sha)
	}
	if len(gone) == 0 {
		return 0, nil
	}
	// Ask again now that they are gone: a reference committed since the
	// first question brings its object back.
	refs, err = referenced(ctx, gone)
	if err != nil {
		return 0, s.restoreAll(ctx, gone, err)
	}
	n := 0
	for _, sha := range gone {
		if !refs[sha] {
			n++
			continue
		}
		if _, err := s.restore(ctx, sha); err != nil {
			return n, err
		}
	}
	return n, nil
}

// restoreAll brings back the objects of an interrupted batch, which were
// deleted without the second question, and returns cause (joined with a
// restore failure, if any).
func (s *Store) restoreAll(ctx context.Context, shas []string, cause error) error {
	for _, sha := range shas {
		if _, err := s.restore(ctx, sha); err != nil {
			return errors.Join(cause, err)
		}
	}
	return cause
}

// ensurePresent makes sure the object with digest sha exists, restoring
// it from the trash when a concurrent Sweep has just removed it; see
// Sweep. It reports whether the object is present. Errors: invalid,
// unavailable.
func (s *Store) ensurePresent(ctx context.Context, sha string) (bool, error) {
	key, err := s.key(sha)
	if err != nil {
		return false, err
	}
	_, err = s.bucket.Attributes(ctx, key)
	switch {
	case err == nil:
		return true, nil
	case gcerrors.Code(err) != gcerrors.NotFound:
		return false, translate("stat", key, err)
	}
	return s.restore(ctx, sha)
}

// restore copies the trashed object sha back, unless it is present; it
// reports whether the object is present afterwards.
func (s *Store) restore(ctx context.Context, sha string) (bool, error) {
	key, _ := s.key(sha)
	trash := s.prefix + trashPrefix + sha
	if err := s.bucket.Copy(ctx, key, trash, nil); err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			_, err := s.bucket.Attributes(ctx, key)
			if err == nil {
				return true, nil
			}
			if gcerrors.Code(err) == gcerrors.NotFound {
				return false, nil
			}
			return false, translate("stat", key, err)
		}
		return false, translate("copy", key, err)
	}
	return true, nil
}

// SweepParts deletes resumable-upload parts written before cutoff and
// returns how many: the leftovers of an upload whose row is gone (a writer
// that died after its upload expired). Use a cutoff past the longest an
// upload may live.
func (s *Store) SweepParts(ctx context.Context, cutoff time.Time) (int, error) {
	return s.deleteOlder(ctx, s.prefix+partsPrefix, cutoff)
}

// PurgeTrash deletes swept objects trashed before cutoff and returns how
// many. Keep the cutoff well past the longest sweep (a day is plenty).
func (s *Store) PurgeTrash(ctx context.Context, cutoff time.Time) (int, error) {
	return s.deleteOlder(ctx, s.prefix+trashPrefix, cutoff)
}

func mustKey(sha string) string {
	k, _ := Key(sha)
	return k
}

// Key returns the storage key of digest sha in a root store (a Namespace
// prefixes it with "<name>/"), or invalid when sha is not 64
// lowercase hex digits.
func Key(sha string) (string, error) {
	if !ValidDigest(sha) {
		return "", strata.Invalid("sha256", "must be 64 lowercase hex digits")
	}
	return objectPrefix + sha[:2] + "/" + sha, nil
}

// ValidDigest reports whether s is a SHA-256 digest as this package writes
// them: exactly 64 lowercase hex digits.
func ValidDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// translate turns a gocloud error into a strata error: not_found for a
// missing object, unavailable for anything else the backend returns.
func translate(action, key string, err error) error {
	var se *strata.Error
	switch {
	case errors.As(err, &se):
		return err
	case gcerrors.Code(err) == gcerrors.NotFound:
		return &strata.Error{Code: strata.CodeNotFound, Reason: "blob_not_found", Message: "no such object",
			Err: fmt.Errorf("%s %s: %w", action, key, err)}
	}
	return &strata.Error{Code: strata.CodeUnavailable, Reason: "blob_unavailable", Message: "blob storage is unavailable",
		Err: fmt.Errorf("%s %s: %w", action, key, err)}
}
