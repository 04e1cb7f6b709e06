package content

import (
	"context"
	"fmt"
	"time"

	"github.com/stratadev/strata/internal/storage/blob"
)

// Sweeper is the blob storage the janitor cleans; *blob.Store implements
// it.
type Sweeper interface {
	// Sweep deletes the objects modified before cutoff that referenced
	// reports unreferenced.
	Sweep(ctx context.Context, cutoff time.Time, referenced blob.Referenced) (int, error)
	// SweepTemp deletes temporary objects modified before cutoff.
	SweepTemp(ctx context.Context, cutoff time.Time) (int, error)
	// PurgeTrash deletes swept objects trashed before cutoff.
	PurgeTrash(ctx context.Context, cutoff time.Time) (int, error)
	// SweepParts deletes resumable-upload parts written before cutoff.
	SweepParts(ctx context.Context, cutoff time.Time) (int, error)
}

var _ Sweeper = (*blob.Store)(nil)

// Janitor settings.
const (
	// JanitorInterval is how often the worker cleans up.
	JanitorInterval = time.Hour
	// BlobGrace is how old an unreferenced blob must be to be deleted: a
	// day, so that an upload whose processing is retried, or an asset
	// being replaced, is never caught in between.
	BlobGrace = 24 * time.Hour
	// expireBatch is how many expired uploads one pass removes per shard
	// query.
	expireBatch = 500
)

// Cleanup removes what nothing needs any more: expired resumable uploads
// with their parts, temporary objects of crashed uploads, and blobs
// (files and previews) that no asset references and that are older than
// BlobGrace — a 415 upload, a replaced file, a deleted preview. Every step
// is idempotent, so several workers may run it at once. It returns how
// many of each it removed.
func (s *Service) Cleanup(ctx context.Context) (CleanupStats, error) {
	var st CleanupStats
	if s.blobs == nil {
		return st, nil
	}
	var err error
	if st.Uploads, err = s.ExpireUploads(ctx, expireBatch); err != nil {
		return st, fmt.Errorf("expire uploads: %w", err)
	}
	now := s.clock.Now()
	if sw, ok := s.blobs.(Sweeper); ok {
		// Every part of a live upload is younger than the upload's expiry;
		// older ones belong to uploads already removed.
		if st.Parts, err = sw.SweepParts(ctx, now.Add(-s.cfg.UploadExpiry-time.Hour)); err != nil {
			return st, fmt.Errorf("sweep upload parts: %w", err)
		}
	}
	for _, b := range []struct {
		store   Blobs
		preview bool
		n       *int
	}{{s.blobs, false, &st.Files}, {s.previews, true, &st.Previews}} {
		sw, ok := b.store.(Sweeper)
		if !ok {
			continue
		}
		if _, err := sw.PurgeTrash(ctx, now.Add(-BlobGrace)); err != nil {
			return st, fmt.Errorf("purge swept blobs: %w", err)
		}
		if _, err := sw.SweepTemp(ctx, now.Add(-blob.MinSweepAge)); err != nil {
			return st, fmt.Errorf("sweep temporary blobs: %w", err)
		}
		*b.n, err = sw.Sweep(ctx, now.Add(-BlobGrace), func(ctx context.Context, shas []string) (map[string]bool, error) {
			return s.store.BlobsReferenced(ctx, shas, b.preview)
		})
		if err != nil {
			return st, fmt.Errorf("sweep blobs: %w", err)
		}
	}
	return st, nil
}

// CleanupStats counts what Cleanup removed.
type CleanupStats struct {
	Uploads  int // expired resumable uploads
	Parts    int // parts of uploads already removed
	Files    int // unreferenced files
	Previews int // unreferenced previews
}

// RunJanitor runs Cleanup every JanitorInterval (and once at start) until
// ctx ends, logging what it removed; the worker role runs it.
func (s *Service) RunJanitor(ctx context.Context) {
	t := time.NewTicker(JanitorInterval)
	defer t.Stop()
	for {
		st, err := s.Cleanup(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.ErrorContext(ctx, "content cleanup failed", "error", err)
		case err == nil && st != (CleanupStats{}):
			s.log.InfoContext(ctx, "content cleanup", "uploads", st.Uploads, "parts", st.Parts, "files", st.Files, "previews", st.Previews)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
