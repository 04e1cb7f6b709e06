package content

import (
	"context"
	"fmt"
	"io"
	"mime"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/stratadev/strata/internal/storage/blob"
)

// Defaults of Config.
const (
	DefaultUploadMaxBytes = 100 << 20 // 104857600
	DefaultMaxPixels      = 50_000_000
	DefaultUploadExpiry   = 24 * time.Hour
	// DefaultUploadChunkMaxBytes bounds one PATCH of a resumable upload.
	DefaultUploadChunkMaxBytes = 64 << 20
)

// DefaultUploadTypes are the media types accepted by default, as sniffed
// from the uploaded bytes.
var DefaultUploadTypes = []string{
	"image/jpeg", "image/png", "image/gif", "application/pdf", "audio/mpeg", "video/mp4", "application/zip", "text/plain",
}

// Config holds the module's settings.
type Config struct {
	// UploadMaxBytes is the largest file accepted by PUT /v1/items/{id}/file.
	UploadMaxBytes int64
	// UploadTypes are the accepted media types (without parameters), compared
	// with the type sniffed from the file's first bytes, not the one the
	// client claims.
	UploadTypes []string
	// UploadExpiry is how long a resumable upload may stay unfinished,
	// from its creation; then it answers 410 and is swept.
	UploadExpiry time.Duration
	// UploadChunkMaxBytes bounds the body of one PATCH of a resumable
	// upload (each is stored as one part until the upload completes).
	UploadChunkMaxBytes int64
}

// RegisterFlags registers every setting with its default on fs.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.Int64Var(&c.UploadMaxBytes, "upload-max-bytes", DefaultUploadMaxBytes, "largest item file accepted, in bytes")
	fs.StringSliceVar(&c.UploadTypes, "upload-types", slices.Clone(DefaultUploadTypes), "media types accepted for item files, as sniffed from their bytes")
	fs.DurationVar(&c.UploadExpiry, "upload-expiry", DefaultUploadExpiry, "how long a resumable (tus) upload may stay unfinished")
	fs.Int64Var(&c.UploadChunkMaxBytes, "upload-chunk-max-bytes", DefaultUploadChunkMaxBytes, "largest body of one PATCH of a resumable (tus) upload, in bytes")
}

// Validate checks the settings.
func (c *Config) Validate() error {
	if c.UploadMaxBytes <= 0 {
		return fmt.Errorf("upload-max-bytes must be positive, got %d", c.UploadMaxBytes)
	}
	if len(c.UploadTypes) == 0 {
		return fmt.Errorf("upload-types must name at least one media type")
	}
	if c.UploadExpiry < time.Minute {
		return fmt.Errorf("upload-expiry must be at least 1m, got %s", c.UploadExpiry)
	}
	if c.UploadChunkMaxBytes <= 0 {
		return fmt.Errorf("upload-chunk-max-bytes must be positive, got %d", c.UploadChunkMaxBytes)
	}
	for _, t := range c.UploadTypes {
		mt, params, err := mime.ParseMediaType(t)
		if err != nil || len(params) > 0 || mt != strings.ToLower(strings.TrimSpace(t)) || !strings.Contains(mt, "/") {
			return fmt.Errorf("upload-types: %q is not a media type without parameters", t)
		}
	}
	return nil
}

// withDefaults fills zero settings with their defaults.
func (c Config) withDefaults() Config {
	if c.UploadMaxBytes == 0 {
		c.UploadMaxBytes = DefaultUploadMaxBytes
	}
	if len(c.UploadTypes) == 0 {
		c.UploadTypes = DefaultUploadTypes
	}
	if c.UploadExpiry == 0 {
		c.UploadExpiry = DefaultUploadExpiry
	}
	if c.UploadChunkMaxBytes == 0 {
		c.UploadChunkMaxBytes = DefaultUploadChunkMaxBytes
	}
	return c
}

// Blobs is the content-addressed file storage content needs; *blob.Store
// implements it.
type Blobs interface {
	// Put stores r under its SHA-256. Errors: too_large/body_too_large past
	// opts.MaxSize, invalid, unavailable.
	Put(ctx context.Context, r io.Reader, opts blob.PutOptions) (blob.Object, error)
	// Open opens the object with digest sha. Errors: invalid, not_found,
	// unavailable.
	Open(ctx context.Context, sha string) (*blob.Reader, blob.Attributes, error)
	// OpenRange opens length bytes (-1: to the end) of the object from
	// offset. Errors: invalid, not_found, unavailable.
	OpenRange(ctx context.Context, sha string, offset, length int64) (*blob.Reader, blob.Attributes, error)
	// Stat describes the object. Errors: invalid, not_found, unavailable.
	Stat(ctx context.Context, sha string) (blob.Object, error)
	// EnsurePresent restores the object if a concurrent sweep has just
	// removed it, and reports whether it is present; called after
	// committing a reference to an object this caller did not write.
	EnsurePresent(ctx context.Context, sha string) (bool, error)

	// PutPart stores r as the part object uploads/<key> of a resumable
	// upload and returns its size; when r fails nothing is stored. Errors:
	// invalid (a bad key; unreadable_body, or r's own error), unavailable.
	PutPart(ctx context.Context, key string, r io.Reader) (int64, error)
	// OpenPart opens the part object uploads/<key>. Errors: invalid,
	// not_found, unavailable.
	OpenPart(ctx context.Context, key string) (io.ReadCloser, error)
	// DeleteParts deletes the part objects under uploads/<prefix> and
	// returns how many. Errors: invalid, unavailable.
	DeleteParts(ctx context.Context, prefix string) (int, error)
}

var _ Blobs = (*blob.Store)(nil)
