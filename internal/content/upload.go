package content

import (
	"context"
	"encoding/json"
	"io"
	"slices"
	"strings"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/storage/blob"
)

var errNoBlobs = &strata.Error{Code: strata.CodeUnavailable, Reason: "uploads_unavailable", Message: "file uploads are not configured"}

// AssetUploadedEvent is the payload of content.asset.uploaded.
type AssetUploadedEvent struct {
	ItemID    strata.ID `json:"item_id"`
	CreatorID strata.ID `json:"creator_id"`
	SHA256    string    `json:"sha256"`
	Size      int64     `json:"size"`
	MediaType string    `json:"media_type"`
}

// AssetResultEvent is the payload of content.asset.ready and
// content.asset.failed (Reason is empty when ready).
type AssetResultEvent struct {
	ItemID strata.ID `json:"item_id"`
	SHA256 string    `json:"sha256"`
	Reason string    `json:"reason,omitempty"`
}

// UploadFile stores r as the file of an item, named filename ("" for
// none; see ValidateFilename), and starts its processing: the asset
// becomes processing and content.asset.uploaded is written to the outbox in
// the same transaction. Uploading again replaces the asset; a published
// item stays published while its new file is processed. Errors: those of
// change, invalid "filename", conflict "item_deleted", too_large
// "body_too_large" past Config.UploadMaxBytes, unsupported
// "unsupported_media_type" for a sniffed type not in Config.UploadTypes,
// unavailable.
func (s *Service) UploadFile(ctx context.Context, id strata.ID, filename string, r io.Reader) (*Item, error) {
	if err := ValidateFilename(filename); err != nil {
		return nil, err
	}
	if _, err := s.CheckUpload(ctx, id); err != nil {
		return nil, err
	}
	obj, err := s.blobs.Put(ctx, r, blob.PutOptions{MaxSize: s.cfg.UploadMaxBytes})
	if err != nil {
		return nil, err
	}
	return s.AttachFile(ctx, id, obj, filename)
}

// CheckUpload tells whether the caller may upload a file for an item (its
// creator or an admin, the item not deleted, uploads configured), so that
// strangers store nothing; AttachFile checks again in its transaction.
// Errors: unauthenticated, not_found, permission_denied, conflict
// "item_deleted", unavailable.
func (s *Service) CheckUpload(ctx context.Context, id strata.ID) (*Item, error) {
	if strata.PrincipalFrom(ctx) == nil {
		return nil, errNoPrincipal
	}
	if s.blobs == nil {
		return nil, errNoBlobs
	}
	it, err := s.store.ItemByID(ctx, id)
	if strata.ErrorCode(err) == strata.CodeNotFound {
		return nil, errNotFound
	}
	if err != nil {
		return nil, err
	}
	if err := uploadAllowed(ctx, it); err != nil {
		return nil, err
	}
	return it, nil
}

// CheckMediaType refuses a sniffed media type (parameters allowed) that
// Config.UploadTypes does not list, with unsupported
// "unsupported_media_type", and returns it without parameters.
func (s *Service) CheckMediaType(sniffed string) (string, error) {
	mediaType := strings.ToLower(strings.TrimSpace(strings.SplitN(sniffed, ";", 2)[0]))
	if !slices.Contains(s.cfg.UploadTypes, mediaType) {
		return "", strata.Errorf(strata.CodeUnsupported, "unsupported_media_type",
			"files of type %s are not accepted", mediaType)
	}
	return mediaType, nil
}

// AttachFile makes the stored object obj the file of an item, named
// filename, once its sniffed type is allowed, and queues its processing
// (see UploadFile). Whole and resumable uploads end here.
func (s *Service) AttachFile(ctx context.Context, id strata.ID, obj blob.Object, filename string) (*Item, error) {
	mediaType, err := s.CheckMediaType(obj.Sniffed)
	if err != nil {
		// The stored blob is referenced by no asset; the sweep of
		// unreferenced blobs removes it (the bytes may also be another
		// item's file, so it is not deleted here).
		return nil, err
	}
	it, err := s.queueAsset(ctx, id, func(*Asset) (Asset, error) {
		return Asset{Status: AssetProcessing, SHA256: obj.SHA256, Size: obj.Size, MediaType: mediaType, Filename: filename}, nil
	})
	if err != nil {
		return nil, err
	}
	// The bytes may have been stored before and be unreferenced until the
	// commit above: undo a concurrent sweep (see blob.Store.Sweep).
	if ok, err := s.blobs.EnsurePresent(ctx, obj.SHA256); err != nil || !ok {
		if err == nil {
			err = &strata.Error{Code: strata.CodeUnavailable, Reason: "blob_missing", Message: "the stored file vanished; upload it again"}
		}
		return nil, err
	}
	return it, nil
}

// Reprocess runs the processing of an item's file again (owner or admin):
// the asset goes back to processing and content.asset.uploaded is written
// again. Reprocessing an asset already being processed changes nothing.
// Errors: not_found, permission_denied, conflict "item_deleted" and
// "no_asset".
func (s *Service) Reprocess(ctx context.Context, id strata.ID) (*Item, error) {
	if strata.PrincipalFrom(ctx) == nil {
		return nil, errNoPrincipal
	}
	return s.queueAsset(ctx, id, func(cur *Asset) (Asset, error) {
		if cur == nil {
			return Asset{}, &strata.Error{Code: strata.CodeConflict, Reason: "no_asset", Message: "the item has no file to process"}
		}
		a := *cur
		a.Status, a.Width, a.Height, a.FailureReason = AssetProcessing, 0, 0, ""
		a.ThumbnailSHA256, a.PreviewSHA256 = "", ""
		return a, nil
	})
}

// queueAsset sets the item's asset to what next returns (given the current
// one) and writes content.asset.uploaded, in one transaction, so the
// processor picks it up; the caller must be allowed to change the item.
// An asset already processing with the same digest is left as it is.
func (s *Service) queueAsset(ctx context.Context, id strata.ID, next func(cur *Asset) (Asset, error)) (*Item, error) {
	return s.manage(ctx, id, func(tx Tx, it *Item) (bool, error) {
		if it.Deleted() {
			return false, errDeleted
		}
		a, err := next(it.Asset)
		if err != nil {
			return false, err
		}
		if it.Asset != nil && it.Asset.Status == AssetProcessing && it.Asset.SHA256 == a.SHA256 && it.Asset.Filename == a.Filename {
			return false, nil // already queued
		}
		// Whatever was served stays served until the new file is ready.
		a.Live = it.Asset.served()
		if err := tx.PutAsset(ctx, id, a); err != nil {
			return false, err
		}
		payload, err := json.Marshal(AssetUploadedEvent{
			ItemID: it.ID, CreatorID: it.CreatorID, SHA256: a.SHA256, Size: a.Size, MediaType: a.MediaType,
		})
		if err != nil {
			return false, strata.Internal(err)
		}
		if err := tx.Outbox(ctx, assetEvent(SubjectAssetUploaded, payload)); err != nil {
			return false, err
		}
		now := s.clock.Now().UTC()
		a.CreatedAt, a.UpdatedAt = now, now
		if it.Asset != nil {
			a.CreatedAt = it.Asset.CreatedAt
		}
		it.Asset = &a
		return true, nil
	})
}

func uploadAllowed(ctx context.Context, it *Item) error {
	if !mayManage(ctx, it) {
		return errNotOwner
	}
	if it.Deleted() {
		return errDeleted
	}
	return nil
}
