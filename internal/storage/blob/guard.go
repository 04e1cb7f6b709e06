package blob

import (
	"context"
	"io"

	"github.com/stratadev/strata/internal/resilience"
)

// SetGuard makes every call of the store (and of namespaces made after
// it) go through g: a timeout on calls that do not stream, retries of
// reads, a circuit breaker and a bulkhead. Call it before use.
func (s *Store) SetGuard(g *resilience.Guard) { s.guard = g }

// Ping reports whether the storage is reachable: nil, or unavailable.
func (s *Store) Ping(ctx context.Context) error {
	return s.guard.Do(ctx, resilience.Once, s.ping)
}

// Stat describes the object with digest sha. Errors: invalid, not_found,
// unavailable.
func (s *Store) Stat(ctx context.Context, sha string) (Object, error) {
	var o Object
	err := s.guard.Do(ctx, resilience.Idempotent, func(ctx context.Context) (err error) {
		o, err = s.stat(ctx, sha)
		return err
	})
	return o, err
}

// Open opens the whole object with digest sha. Errors: invalid, not_found,
// unavailable.
func (s *Store) Open(ctx context.Context, sha string) (*Reader, Attributes, error) {
	return s.OpenRange(ctx, sha, 0, -1)
}

// OpenRange opens length bytes of the object with digest sha from offset;
// a negative length reads to the end, and a range past the end is cut
// short. An offset equal to the size opens an empty reader. Errors:
// invalid (a negative offset; range_not_satisfiable for an offset past the
// end), not_found, unavailable. Opening is guarded (timed out, retried);
// the reader then reads under ctx.
func (s *Store) OpenRange(ctx context.Context, sha string, offset, length int64) (*Reader, Attributes, error) {
	var r *Reader
	var a Attributes
	err := s.guard.Do(ctx, resilience.Open, func(ctx context.Context) (err error) {
		r, a, err = s.openRange(ctx, sha, offset, length)
		return err
	})
	if err != nil && r != nil { // opened, but too late
		r.Close()
		r = nil
	}
	return r, a, err
}

// Put stores the bytes of r under their SHA-256, streaming them, and
// returns the stored object; storing bytes already present returns the
// existing object (with its media type). Errors: invalid (bad options;
// unreadable_body when r fails), too_large/body_too_large past MaxSize,
// unavailable. On any error nothing new is left in the store.
func (s *Store) Put(ctx context.Context, r io.Reader, opts PutOptions) (Object, error) {
	var o Object
	err := s.guard.Do(ctx, resilience.Stream, func(ctx context.Context) (err error) {
		o, err = s.put(ctx, r, opts)
		return err
	})
	return o, err
}

// PutPart stores the bytes of r, streaming them, as the part object
// uploads/<key> and returns how many it stored, replacing an existing
// part of that key; when r fails nothing is stored. Errors: invalid (a bad
// key; unreadable_body, or r's own *strata.Error, when r fails),
// unavailable.
func (s *Store) PutPart(ctx context.Context, key string, r io.Reader) (int64, error) {
	var n int64
	err := s.guard.Do(ctx, resilience.Stream, func(ctx context.Context) (err error) {
		n, err = s.putPart(ctx, key, r)
		return err
	})
	return n, err
}

// OpenPart opens the part object uploads/<key>; reading it streams.
// Errors: invalid, not_found, unavailable.
func (s *Store) OpenPart(ctx context.Context, key string) (io.ReadCloser, error) {
	var rc io.ReadCloser
	err := s.guard.Do(ctx, resilience.Open, func(ctx context.Context) (err error) {
		rc, err = s.openPart(ctx, key)
		return err
	})
	if err != nil && rc != nil { // opened, but too late
		rc.Close()
		rc = nil
	}
	return rc, err
}

// DeleteParts deletes the part objects under uploads/<prefix> and returns
// how many. Errors: invalid, unavailable.
func (s *Store) DeleteParts(ctx context.Context, prefix string) (int, error) {
	var n int
	err := s.guard.Do(ctx, resilience.Idempotent, func(ctx context.Context) (err error) {
		n, err = s.deleteParts(ctx, prefix)
		return err
	})
	return n, err
}

// EnsurePresent restores the object with digest sha if a concurrent sweep
// has just moved it to the trash, and reports whether it is present.
func (s *Store) EnsurePresent(ctx context.Context, sha string) (bool, error) {
	var ok bool
	err := s.guard.Do(ctx, resilience.Idempotent, func(ctx context.Context) (err error) {
		ok, err = s.ensurePresent(ctx, sha)
		return err
	})
	return ok, err
}

// Delete removes the object with digest sha (a missing one is not an
// error). Errors: invalid, unavailable.
func (s *Store) Delete(ctx context.Context, sha string) error {
	return s.guard.Do(ctx, resilience.Idempotent, func(ctx context.Context) error { return s.deleteObject(ctx, sha) })
}
