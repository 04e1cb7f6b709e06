// Package blob is Strata's blob-storage building block: content-addressed,
// de-duplicated objects in a local folder (the default) or an S3-compatible
// bucket, over gocloud.dev/blob. Only the fileblob and s3blob drivers are
// linked.
//
// # Key layout
//
// An object is stored once, under the SHA-256 of its bytes:
//
//	sha256/<first 2 hex digits>/<64 hex digits>    a stored object
//	tmp/<32 random hex digits>                     an upload in progress
//	trash/<64 hex digits>                          a swept object, kept a while (see Sweep)
//	uploads/<key>                                  parts of resumable uploads (PutPart)
//	<namespace>/sha256/…, <namespace>/tmp/…, …     the same under a Namespace
//
// Callers name objects by the hex digest only. Every digest given to the
// Store is checked to be exactly 64 lowercase hex digits before it becomes
// part of a key, so no input can reach outside sha256/ (no path traversal,
// no stray prefixes). Metadata the callers care about (owner, file name,
// status, dimensions) lives in their own tables, not here.
//
// # Put: streaming, limits, de-duplication
//
// Put streams its body to a fresh tmp/ key while computing the SHA-256 and
// the size; it never holds the body in memory. Its memory is bounded: on a
// folder a 1 MiB copy buffer, on S3 at most three 5 MiB multipart parts. The
// media type is sniffed from the first 512 bytes (net/http's algorithm)
// unless the caller states one; the sniffed type is kept either way.
//
// A body over PutOptions.MaxSize is refused with too_large/body_too_large
// as soon as the limit is crossed: the write is aborted and the partial
// temporary object deleted, so nothing is left behind.
//
// Neither backend renames atomically, so a complete upload is published by
// copying tmp/ to its sha256/ key (an atomic replace on both: fileblob
// writes a temporary file and renames it; S3 CopyObject swaps the object
// whole) and then deleting the temporary object. If the sha256/ key already
// holds an object of the same size, the upload is a duplicate: nothing is
// copied and the existing object is returned, with the media type it was
// first stored with. Concurrent Puts of the same bytes therefore all succeed
// and leave one good object; within one process they are serialised (64
// mutex stripes by digest), across processes the last copy wins with
// identical bytes.
//
// # Sweeping
//
// Sweep deletes objects nobody references, in a way that cannot lose one
// that a caller is referencing again at that moment: it copies the object
// to trash/, deletes it, and asks again; the caller, after committing its
// reference, calls EnsurePresent, which restores from trash/ if needed.
//
// On S3 the copy is one CopyObject call, which S3 limits to 5 GiB: keep
// MaxSize below that there. On a folder the copy rewrites the file once.
//
// A Put cut short by a crash can leave a tmp/ object; SweepTemp deletes
// those older than a given age.
//
// # Errors
//
// Every error is a *strata.Error: invalid/validation_failed for a malformed
// digest or option, not_found/blob_not_found for a missing object,
// too_large/body_too_large past MaxSize, invalid/unreadable_body when the
// caller's reader fails, invalid/range_not_satisfiable for a range that
// starts past the end, and unavailable/blob_unavailable when the storage
// backend fails (its cause kept in Err).
package blob
