package content

import (
	"context"
	"time"

	"github.com/stratadev/strata"
)

// Resumable uploads implement tus 1.0.0 (core, creation,
// creation-with-upload, termination, checksum, expiration) ourselves
// rather than through tusd, because any instance may receive the next
// PATCH of an upload: the bytes received so far live in the shared blob
// store as parts (one per PATCH, uploads/<upload id>/<part number>), and
// the lock that keeps two requests from writing one upload at once is a
// lease on the upload's row in the database, not a mutex of one process.
//
// A PATCH takes the lease (a conditional UPDATE: free, or its holder's
// time ran out), renews it while the body streams, records its part with
// an UPDATE fenced by the lease's token, and releases it whatever happens.
// Each lease is given a part number of its own, so a writer that lost its
// lease never overwrites, nor deletes, the part of the request that took
// it over. When the offset reaches the length, the parts are streamed in
// order into the content-addressed store and the result becomes the item's
// file (AttachFile); a request that finds the offset at the length but the
// upload not completed (its finisher died) finishes it.

// PrefixUpload is the type prefix of upload ids; an upload lives on its
// item's shard.
const PrefixUpload = "upl"

// UploadStatus is the state of a resumable upload.
type UploadStatus string

// The states of an upload.
const (
	UploadOpen       UploadStatus = "open"       // taking bytes, or holding them all but not yet attached
	UploadCompleted  UploadStatus = "completed"  // attached to its item; its parts are gone
	UploadTerminated UploadStatus = "terminated" // deleted by its owner; the row goes next
)

// Upload is a resumable upload of an item's file.
type Upload struct {
	ID     strata.ID
	ItemID strata.ID
	UserID strata.ID // who created it: only they and admins reach it
	Length int64     // Upload-Length
	Offset int64     // Upload-Offset: the bytes of the recorded parts
	// Metadata is Upload-Metadata as the client sent it.
	Metadata string
	Filename string
	Status   UploadStatus
	// NextPart is the part number given to the latest lease: the one the
	// holder of the current lease writes.
	NextPart  int64
	CreatedAt time.Time
	UpdatedAt time.Time
	ExpiresAt time.Time
}

// UploadPart is a recorded part of an upload: its object is
// uploads/<upload id>/<Number, zero-padded>.
type UploadPart struct {
	Number int64
	Size   int64
}

// UploadStore is the persistence of resumable uploads. Every method that
// changes an upload but InsertUpload is fenced by the token of the lease
// taken with LockUpload, and reports false, not an error, when that lease
// is no longer held.
type UploadStore interface {
	// InsertUpload creates an upload; conflict when the id exists.
	InsertUpload(ctx context.Context, u *Upload) error
	// UploadByID reads an upload, with read-your-writes; not_found when
	// absent.
	UploadByID(ctx context.Context, id strata.ID) (*Upload, error)
	// LockUpload takes the lease of an upload for token until until, when
	// no lease is held or the one held ran out before now, and hands the
	// lease the next part number (Upload.NextPart). false when another
	// lease holds it; not_found when the upload is absent.
	LockUpload(ctx context.Context, id strata.ID, token string, now, until time.Time) (bool, error)
	// RenewUploadLock extends the lease held under token until until.
	RenewUploadLock(ctx context.Context, id strata.ID, token string, until time.Time) (bool, error)
	// UnlockUpload releases the lease held under token; a lease lost
	// already is left alone.
	UnlockUpload(ctx context.Context, id strata.ID, token string) error
	// AddUploadPart records part p of an open upload whose offset is
	// still from, moving the offset to from + p.Size, in one transaction.
	AddUploadPart(ctx context.Context, id strata.ID, token string, from int64, p UploadPart, now time.Time) (bool, error)
	// UploadParts returns the recorded parts of an upload in order.
	UploadParts(ctx context.Context, id strata.ID) ([]UploadPart, error)
	// CompleteUpload marks an open upload completed and forgets its parts.
	CompleteUpload(ctx context.Context, id strata.ID, token string, now time.Time) (bool, error)
	// TerminateUpload marks an upload terminated and expiring at now, so
	// that it answers not_found and the sweep removes it should its
	// removal stop half-way.
	TerminateUpload(ctx context.Context, id strata.ID, token string, now time.Time) (bool, error)
	// DeleteUpload deletes an upload and the record of its parts.
	DeleteUpload(ctx context.Context, id strata.ID, token string) (bool, error)
	// ExpiredUploads returns uploads that expired at or before now and
	// hold no live lease: at most limit from each database.
	ExpiredUploads(ctx context.Context, now time.Time, limit int) ([]strata.ID, error)
}

// The tus lease: held for uploadLease, renewed every uploadLeaseRenew
// while a body streams.
const (
	uploadLease      = 30 * time.Second
	uploadLeaseRenew = 10 * time.Second
)

// MaxUploadMetadataBytes bounds the Upload-Metadata header.
const MaxUploadMetadataBytes = 4 << 10

var errUploadNotFound = &strata.Error{Code: strata.CodeNotFound, Reason: "upload_not_found", Message: "no such upload"}

// The errors the tus protocol answers with statuses of its own (see
// writeTusError): 410 Gone, 423 Locked and 460 Checksum Mismatch.
var (
	errUploadExpired = &strata.Error{Code: strata.CodeNotFound, Reason: "upload_expired", Message: "the upload expired"}
	errUploadLocked  = &strata.Error{Code: strata.CodeConflict, Reason: "upload_locked",
		Message: "another request is writing this upload; retry from its current offset", RetryAfter: time.Second}
	errChecksumMismatch = &strata.Error{Code: strata.CodeInvalid, Reason: "checksum_mismatch",
		Message: "the body does not match Upload-Checksum; nothing was stored"}
)

func errOffsetMismatch(want int64) error {
	return strata.Errorf(strata.CodeConflict, "offset_mismatch", "Upload-Offset must be the upload's offset, %d", want)
}
