package content

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	_ "image/gif" // registers the GIF header decoder
	_ "image/jpeg"
	_ "image/png"
	"io"
	"log/slog"
	"strings"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/queue"
)

// Failure reasons of an asset.
const (
	ReasonChecksumMismatch = "checksum_mismatch" // the stored bytes are not those uploaded
	ReasonImageTooLarge    = "image_too_large"   // width × height over MaxPixels (decompression bomb)
	ReasonImageUnreadable  = "image_unreadable"  // an image type whose header does not decode
	ReasonBlobMissing      = "blob_missing"      // the stored file is gone
	ReasonProcessingFailed = "processing_failed" // storage kept failing through every retry
)

// AssetProcessor is the queue consumer that verifies uploaded files: it
// re-hashes the stored bytes, reads the dimensions of images from their
// header, makes the previews of JPEG, PNG and GIF images and marks the
// asset ready or failed.
//
// Previews are made whatever the item's price, so that a price change
// needs no reprocessing: a thumbnail within 320×320 and a blurred preview
// within 64×64, both JPEG (see makePreviews), stored content-addressed in
// Previews; their digests are recorded on the asset as it becomes ready.
type AssetProcessor struct {
	Store  Store
	Blobs  Blobs
	Clock  strata.Clock
	Logger *slog.Logger
	// Previews is where previews are stored: the blob store's "previews"
	// namespace, apart from the originals. Nil means none are made.
	Previews Blobs
	// MaxPixels bounds width × height of images; 0 means DefaultMaxPixels.
	MaxPixels int64
}

// ProcessorMaxDeliver is how many times an upload event is tried. On the
// last try a storage error no longer means "retry": the asset is marked
// failed (processing_failed) and the event goes to the dead-letter stream.
const ProcessorMaxDeliver = 8

// ConsumerConfig is the durable consumer the worker runs for uploads.
func (AssetProcessor) ConsumerConfig() queue.ConsumerConfig {
	return queue.ConsumerConfig{Stream: Stream, Durable: "content-processor", FilterSubjects: []string{SubjectAssetUploaded},
		MaxDeliver: ProcessorMaxDeliver}
}

// Handle processes one content.asset.uploaded event. It is idempotent: an
// event about an asset that was replaced since, or that is already ready or
// failed, is dropped. A payload that cannot be decoded, or names no item,
// is permanent; blob storage errors other than not_found, reading the file
// or storing its previews, are returned for a retry, until the last
// delivery, which marks the asset failed.
func (p AssetProcessor) Handle(ctx context.Context, m queue.Message) error {
	var ev AssetUploadedEvent
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		return queue.Permanent(fmt.Errorf("decode upload event %s: %w", m.ID, err))
	}
	if _, ok := ev.ItemID.Shard(); !ok || ev.SHA256 == "" {
		return queue.Permanent(fmt.Errorf("upload event %s: bad item id %q or empty sha256", m.ID, ev.ItemID))
	}
	it, err := p.Store.ItemByID(ctx, ev.ItemID)
	if strata.ErrorCode(err) == strata.CodeNotFound {
		return queue.Permanent(fmt.Errorf("upload event %s: item %s does not exist", m.ID, ev.ItemID))
	}
	if err != nil {
		return err
	}
	if !pending(it, ev.SHA256) {
		return nil
	}
	a := *it.Asset
	// A sweep may have raced the upload's reference (see blob.Store.Sweep).
	if _, err := p.Blobs.EnsurePresent(ctx, ev.SHA256); err != nil {
		return err
	}
	reason, w, h, err := p.inspect(ctx, ev.SHA256, a.MediaType)
	var thumb, preview string
	if err == nil && reason == "" && p.Previews != nil && previewable(a.MediaType) {
		reason, thumb, preview, err = p.previews(ctx, ev.SHA256, w, h)
	}
	var gaveUp error
	if err != nil {
		if m.NumDelivered < ProcessorMaxDeliver {
			return err // retried with back-off
		}
		// The last try: record the failure, then dead-letter the event.
		gaveUp, reason = err, ReasonProcessingFailed
		p.logger().ErrorContext(ctx, "asset processing gave up", "item_id", ev.ItemID, "sha256", ev.SHA256, "error", err)
	}
	a.Width, a.Height, a.FailureReason = w, h, reason
	a.ThumbnailSHA256, a.PreviewSHA256 = thumb, preview
	a.Status = AssetReady
	subject := SubjectAssetReady
	if reason != "" {
		a.Status, a.Width, a.Height, subject = AssetFailed, 0, 0, SubjectAssetFailed
		a.ThumbnailSHA256, a.PreviewSHA256 = "", ""
	} else {
		a.Live = a.live() // the version downloads serve from now on
	}
	shard, _ := ev.ItemID.Shard()
	err = p.Store.Tx(ctx, shard, func(tx Tx) error {
		it, err := tx.ItemForUpdate(ctx, ev.ItemID)
		if err != nil {
			return err
		}
		if !pending(it, ev.SHA256) {
			return nil // replaced or finished meanwhile
		}
		if err := tx.PutAsset(ctx, ev.ItemID, a); err != nil {
			return err
		}
		payload, err := json.Marshal(AssetResultEvent{ItemID: ev.ItemID, SHA256: ev.SHA256, Reason: reason})
		if err != nil {
			return strata.Internal(err)
		}
		return tx.Outbox(ctx, assetEvent(subject, payload))
	})
	if err != nil {
		return err
	}
	// The previews may have been stored before, unreferenced until this
	// commit: undo a concurrent sweep.
	for _, sha := range []string{thumb, preview} {
		if sha == "" {
			continue
		}
		if _, err := p.Previews.EnsurePresent(ctx, sha); err != nil {
			return err
		}
	}
	if gaveUp != nil {
		return queue.Permanent(fmt.Errorf("process %s after %d deliveries: %w", ev.ItemID, m.NumDelivered, gaveUp))
	}
	p.logger().InfoContext(ctx, "asset processed", "item_id", ev.ItemID, "sha256", ev.SHA256, "status", a.Status, "reason", reason)
	return nil
}

// pending reports whether the item's asset is still the upload with
// digest sha, waiting to be processed.
func pending(it *Item, sha string) bool {
	return it.Asset != nil && it.Asset.SHA256 == sha && it.Asset.Status == AssetProcessing
}

func (p AssetProcessor) logger() *slog.Logger {
	if p.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Logger
}

// readErr records the error of the underlying reader, so that a storage
// failure is told apart from bytes the image decoder refuses.
type readErr struct {
	r   io.Reader
	err error
}

func (e *readErr) Read(b []byte) (int, error) {
	n, err := e.r.Read(b)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// inspect reads the blob once: it hashes every byte and, for images,
// decodes the header only. It returns the failure reason ("" when the
// file is fine) and an image's dimensions; err is for a retry.
func (p AssetProcessor) inspect(ctx context.Context, sha, mediaType string) (reason string, w, h int, err error) {
	rc, _, err := p.Blobs.Open(ctx, sha)
	if strata.ErrorCode(err) == strata.CodeNotFound {
		return ReasonBlobMissing, 0, 0, nil
	}
	if err != nil {
		return "", 0, 0, fmt.Errorf("open blob %s: %w", sha, err)
	}
	defer rc.Close()
	hash := sha256.New()
	src := &readErr{r: io.TeeReader(rc, hash)}
	var cfg image.Config
	var decodeErr error
	isImage := strings.HasPrefix(mediaType, "image/")
	if isImage {
		cfg, _, decodeErr = image.DecodeConfig(src)
		if src.err != nil {
			return "", 0, 0, fmt.Errorf("read blob %s: %w", sha, src.err)
		}
	}
	if _, err := io.Copy(io.Discard, src); err != nil {
		return "", 0, 0, fmt.Errorf("read blob %s: %w", sha, err)
	}
	if got := hex.EncodeToString(hash.Sum(nil)); got != sha {
		return ReasonChecksumMismatch, 0, 0, nil
	}
	if !isImage {
		return "", 0, 0, nil
	}
	if decodeErr != nil {
		return ReasonImageUnreadable, 0, 0, nil
	}
	maxPixels := p.MaxPixels
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return ReasonImageUnreadable, 0, 0, nil
	}
	if int64(cfg.Width)*int64(cfg.Height) > maxPixels {
		return ReasonImageTooLarge, 0, 0, nil
	}
	return "", cfg.Width, cfg.Height, nil
}
