package content

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/storage/blob"
)

// UploadChecksum is an Upload-Checksum: the digest the body of a PATCH
// must have, with an algorithm of uploadHashes.
type UploadChecksum struct {
	Algorithm string
	Sum       []byte
}

// uploadHashes are the checksum algorithms of the tus checksum extension
// that Strata accepts; tus names them so, weak ones included.
var uploadHashes = map[string]func() hash.Hash{"sha1": sha1.New, "sha256": sha256.New, "md5": md5.New}

// sniffLen is how many leading bytes media-type sniffing looks at.
const sniffLen = 512

// NewUpload is the input of CreateUpload.
type NewUpload struct {
	ItemID   strata.ID
	Length   int64
	Filename string // "" for none; see ValidateFilename
	Metadata string // Upload-Metadata as received, shown again by HEAD
}

// CreateUpload starts a resumable upload of an item's file for the
// caller, who must be allowed to upload it (see CheckUpload). It expires
// Config.UploadExpiry from now. An upload of length 0 is finished at once.
// Errors: invalid "Upload-Length", "Upload-Metadata" or "filename",
// too_large "body_too_large" past Config.UploadMaxBytes, those of
// CheckUpload, and of finishing (an empty upload).
func (s *Service) CreateUpload(ctx context.Context, in NewUpload) (*Upload, error) {
	switch {
	case in.Length < 0:
		return nil, strata.Invalid("Upload-Length", "must not be negative")
	case in.Length > s.cfg.UploadMaxBytes:
		return nil, strata.Errorf(strata.CodeTooLarge, "body_too_large", "the file is larger than %d bytes", s.cfg.UploadMaxBytes)
	case len(in.Metadata) > MaxUploadMetadataBytes:
		return nil, strata.Invalid("Upload-Metadata", fmt.Sprintf("must be at most %d bytes", MaxUploadMetadataBytes))
	}
	if err := ValidateFilename(in.Filename); err != nil {
		return nil, err
	}
	if _, err := s.CheckUpload(ctx, in.ItemID); err != nil {
		return nil, err
	}
	shard, _ := in.ItemID.Shard() // CheckUpload found the item
	now := s.clock.Now().UTC().Truncate(time.Millisecond)
	u := &Upload{
		ID: strata.NewID(PrefixUpload, shard, now), ItemID: in.ItemID, UserID: strata.PrincipalFrom(ctx).UserID,
		Length: in.Length, Metadata: in.Metadata, Filename: in.Filename, Status: UploadOpen,
		CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(s.cfg.UploadExpiry),
	}
	if err := s.store.InsertUpload(ctx, u); err != nil {
		return nil, err
	}
	if u.Length == 0 {
		return s.settle(ctx, u)
	}
	return u, nil
}

// UploadInfo returns an upload (HEAD) to its creator or an admin. An
// upload holding all its bytes but not completed — whoever finished it
// died on the way — is finished first. Errors: unauthenticated, not_found
// "upload_not_found" (also for another user's upload, so that ids cannot
// be probed), not_found "upload_expired" (410), those of finishing.
func (s *Service) UploadInfo(ctx context.Context, id strata.ID) (*Upload, error) {
	u, err := s.visibleUpload(ctx, id, false)
	if err != nil {
		return nil, err
	}
	if u.Status == UploadOpen && u.Offset == u.Length {
		return s.settle(ctx, u)
	}
	return u, nil
}

// WriteUpload appends body (a PATCH) to an upload whose offset is offset,
// checked against sum when it is not nil, and finishes the upload when
// its last byte came. The body may not hold more than the upload lacks,
// nor more than Config.UploadChunkMaxBytes. If reading the body fails
// without a checksum, the bytes received are kept. Errors: those of
// UploadInfo; conflict "offset_mismatch", conflict "upload_locked" (423)
// while another request writes the upload; too_large "body_too_large",
// invalid "checksum_mismatch" (460) and invalid "unreadable_body" (with a
// checksum), with nothing stored; unsupported "unsupported_media_type"
// when the first bytes sniff as a type not accepted; those of finishing.
func (s *Service) WriteUpload(ctx context.Context, id strata.ID, offset int64, sum *UploadChecksum, body io.Reader) (*Upload, error) {
	if sum != nil && uploadHashes[sum.Algorithm] == nil {
		return nil, strata.Invalid("Upload-Checksum", "must use sha1, sha256 or md5")
	}
	u, err := s.visibleUpload(ctx, id, false)
	if err != nil {
		return nil, err
	}
	if offset != u.Offset {
		return nil, errOffsetMismatch(u.Offset)
	}
	// What was received is kept even when the client goes away: nothing
	// below depends on the request's context.
	ctx = context.WithoutCancel(ctx)
	l, err := s.lockUpload(ctx, id)
	if err != nil {
		return nil, err
	}
	defer l.release()
	if u, err = s.lockedUpload(ctx, id); err != nil {
		return nil, err
	}
	if offset != u.Offset {
		return nil, errOffsetMismatch(u.Offset)
	}
	if err := s.writePart(l, u, sum, body); err != nil {
		return nil, err
	}
	if u.Status == UploadOpen && u.Offset == u.Length {
		if err := s.finish(ctx, u, l); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// TerminateUpload deletes an upload and its parts (tus termination), for
// its creator or an admin, expired or not. Errors: those of UploadInfo but
// upload_expired, conflict "upload_locked" (423), unavailable.
func (s *Service) TerminateUpload(ctx context.Context, id strata.ID) error {
	if _, err := s.visibleUpload(ctx, id, true); err != nil {
		return err
	}
	ctx = context.WithoutCancel(ctx)
	l, err := s.lockUpload(ctx, id)
	if err != nil {
		return err
	}
	defer l.release()
	return s.removeUpload(ctx, id, l)
}

// ExpireUploads removes, from every database, the uploads past their
// expiry, finished or not, with their parts: in batches of at most limit
// per database, until none is left but those a request holds (the next
// run gets them). It returns how many it removed.
func (s *Service) ExpireUploads(ctx context.Context, limit int) (int, error) {
	if limit < 1 {
		return 0, strata.Invalid("limit", "must be positive")
	}
	if s.blobs == nil {
		return 0, nil // no uploads without blob storage
	}
	total := 0
	for {
		ids, err := s.store.ExpiredUploads(ctx, s.clock.Now(), limit)
		if err != nil {
			return total, err
		}
		n := 0
		for _, id := range ids {
			l, err := s.lockUpload(ctx, id)
			if errors.Is(err, errUploadLocked) || errors.Is(err, errUploadNotFound) {
				continue // taken since the listing
			}
			if err != nil {
				return total, err
			}
			err = s.removeUpload(ctx, id, l)
			l.release()
			if err != nil {
				return total, err
			}
			n++
		}
		total += n
		if n == 0 {
			return total, nil
		}
	}
}

// visibleUpload reads an upload as the caller may see it: only its
// creator and admins see it, and not once terminated. An expired upload is
// errUploadExpired unless expiredToo.
func (s *Service) visibleUpload(ctx context.Context, id strata.ID, expiredToo bool) (*Upload, error) {
	p := strata.PrincipalFrom(ctx)
	if p == nil {
		return nil, errNoPrincipal
	}
	if s.blobs == nil {
		return nil, errNoBlobs
	}
	u, err := s.store.UploadByID(ctx, id)
	if strata.ErrorCode(err) == strata.CodeNotFound {
		return nil, errUploadNotFound
	}
	if err != nil {
		return nil, err
	}
	if (u.UserID != p.UserID && !p.HasRole(strata.RoleAdmin)) || u.Status == UploadTerminated {
		return nil, errUploadNotFound
	}
	if !expiredToo && !s.clock.Now().Before(u.ExpiresAt) {
		return nil, errUploadExpired
	}
	return u, nil
}

// lockedUpload reads an upload again once its lease is held.
func (s *Service) lockedUpload(ctx context.Context, id strata.ID) (*Upload, error) {
	u, err := s.store.UploadByID(ctx, id)
	if strata.ErrorCode(err) == strata.CodeNotFound || (err == nil && u.Status == UploadTerminated) {
		return nil, errUploadNotFound
	}
	return u, err
}

// settle finishes an upload that holds all its bytes, unless another
// request holds its lease (that one finishes it, or the next request
// does).
func (s *Service) settle(ctx context.Context, u *Upload) (*Upload, error) {
	ctx = context.WithoutCancel(ctx)
	l, err := s.lockUpload(ctx, u.ID)
	if errors.Is(err, errUploadLocked) {
		return u, nil
	}
	if err != nil {
		return nil, err
	}
	defer l.release()
	if u, err = s.lockedUpload(ctx, u.ID); err != nil {
		return nil, err
	}
	if u.Status == UploadOpen && u.Offset == u.Length {
		if err := s.finish(ctx, u, l); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// partKey is the blob key of part n of an upload.
func partKey(id strata.ID, n int64) string { return fmt.Sprintf("%s/%08d", id, n) }

// writePart stores the body of a PATCH as the part of lease l and records
// it, moving u's offset.
func (s *Service) writePart(l *lease, u *Upload, sum *UploadChecksum, body io.Reader) error {
	cr := newChunkReader(body, min(u.Length-u.Offset, s.cfg.UploadChunkMaxBytes), sum)
	// The first bytes come first, to refuse a file of the wrong type
	// before anything is stored.
	head := make([]byte, min(sniffLen, cr.left))
	k, _ := io.ReadFull(cr, head) // a failure is in cr
	head = head[:k]
	if cr.err != nil {
		return cr.err
	}
	if u.Offset == 0 && k > 0 && (k == sniffLen || int64(k) == u.Length) {
		if _, err := s.CheckMediaType(http.DetectContentType(head)); err != nil {
			return err
		}
	}
	if k == 0 {
		// An empty body, or no byte allowed: one read tells that nothing
		// more comes, and checks the checksum of nothing.
		_, _ = cr.Read(make([]byte, 1)) // a failure is in cr
		return cr.err
	}
	key := partKey(u.ID, u.NextPart)
	n, err := s.blobs.PutPart(l.ctx, key, io.MultiReader(bytes.NewReader(head), cr))
	if err != nil {
		if l.lost() {
			return errUploadLocked
		}
		return err
	}
	now := s.clock.Now().UTC()
	ok, err := s.store.AddUploadPart(l.ctx, u.ID, l.token, u.Offset, UploadPart{Number: u.NextPart, Size: n}, now)
	if err != nil {
		// Recorded or not, the part is safe: unrecorded, it is never read,
		// and it goes with the upload.
		return err
	}
	if !ok {
		// The lease was taken over: another request may have written since.
		// The part's number is this lease's own, so deleting it touches no
		// one else's.
		if _, err := s.blobs.DeleteParts(l.ctx, key); err != nil {
			s.log.Warn("discard upload part", slog.String("upload_id", string(u.ID)), slog.String("error", err.Error()))
		}
		return errUploadLocked
	}
	u.Offset += n
	u.UpdatedAt = now
	if cr.cut != nil {
		s.log.Info("upload body cut short; bytes kept", slog.String("upload_id", string(u.ID)),
			slog.Int64("bytes", n), slog.String("error", cr.cut.Error()))
	}
	return nil
}

// finish makes the parts of an upload holding all its bytes the file of
// its item: streamed in order into the content-addressed store, attached
// (AttachFile checks the type and queues processing), then the upload is
// completed and its parts deleted. Every step may run again: Put stores
// the same object, and AttachFile leaves an asset already queued with that
// digest alone. A file refused for good (its type, its size, a deleted
// item) ends the upload.
func (s *Service) finish(ctx context.Context, u *Upload, l *lease) error {
	parts, err := s.store.UploadParts(ctx, u.ID)
	if err != nil {
		return err
	}
	readers := make([]io.Reader, len(parts))
	var total int64
	for i, p := range parts {
		lp := &lazyPart{ctx: l.ctx, b: s.blobs, key: partKey(u.ID, p.Number), size: p.Size}
		defer lp.Close()
		readers[i] = lp
		total += p.Size
	}
	if total != u.Length {
		return strata.Internal(fmt.Errorf("upload %s: its parts hold %d bytes, not %d", u.ID, total, u.Length))
	}
	obj, err := s.blobs.Put(l.ctx, io.MultiReader(readers...), blob.PutOptions{MaxSize: s.cfg.UploadMaxBytes})
	if err == nil && obj.Size != u.Length {
		err = strata.Internal(fmt.Errorf("upload %s: stored %d bytes, not %d", u.ID, obj.Size, u.Length))
	}
	if err == nil {
		_, err = s.AttachFile(ctx, u.ItemID, obj, u.Filename)
	}
	if err != nil {
		if l.lost() {
			return errUploadLocked
		}
		if code := strata.ErrorCode(err); code == strata.CodeUnsupported || code == strata.CodeTooLarge || errors.Is(err, errDeleted) {
			if rerr := s.removeUpload(ctx, u.ID, l); rerr != nil {
				s.log.Warn("remove refused upload", slog.String("upload_id", string(u.ID)), slog.String("error", rerr.Error()))
			}
		}
		return err
	}
	ok, err := s.store.CompleteUpload(ctx, u.ID, l.token, s.clock.Now().UTC())
	if err != nil {
		return err
	}
	if !ok {
		return errUploadLocked // attached all the same; the next holder completes it
	}
	u.Status = UploadCompleted
	if _, err := s.blobs.DeleteParts(ctx, string(u.ID)+"/"); err != nil {
		// The expiry sweep deletes them with the upload.
		s.log.Warn("delete upload parts", slog.String("upload_id", string(u.ID)), slog.String("error", err.Error()))
	}
	return nil
}

// removeUpload deletes an upload and its parts under lease l: marked
// terminated first, so that a removal stopped half-way answers not_found
// and the expiry sweep ends it.
func (s *Service) removeUpload(ctx context.Context, id strata.ID, l *lease) error {
	ok, err := s.store.TerminateUpload(ctx, id, l.token, s.clock.Now().UTC())
	if err != nil {
		return err
	}
	if !ok {
		return errUploadLocked
	}
	if _, err := s.blobs.DeleteParts(ctx, string(id)+"/"); err != nil {
		return err
	}
	if _, err := s.store.DeleteUpload(ctx, id, l.token); err != nil {
		return err
	}
	return nil
}
