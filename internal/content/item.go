package content

import (
	"context"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/stratadev/strata"
)

// PrefixItem is the ID prefix of items.
const PrefixItem = "itm"

// Limits of an item's fields.
const (
	MaxTitle       = 200    // characters
	MaxDescription = 10_000 // characters
	MaxTags        = 10
	MaxTag         = 32 // characters
)

// Status is where an item stands in its life.
type Status string

// Item statuses. A new item is a draft; publishing shows it in the catalog;
// unpublishing hides it again.
const (
	StatusDraft       Status = "draft"
	StatusPublished   Status = "published"
	StatusUnpublished Status = "unpublished"
)

// AssetStatus is where an item's uploaded file stands.
type AssetStatus string

// Asset statuses.
const (
	AssetPending    AssetStatus = "pending"    // the upload has started
	AssetProcessing AssetStatus = "processing" // uploaded; the processing job runs
	AssetReady      AssetStatus = "ready"      // verified and servable
	AssetFailed     AssetStatus = "failed"     // processing gave up; FailureReason says why
)

// Valid reports whether s is a known asset status.
func (s AssetStatus) Valid() bool {
	switch s {
	case AssetPending, AssetProcessing, AssetReady, AssetFailed:
		return true
	}
	return false
}

// Item is one thing in the catalog.
type Item struct {
	ID          strata.ID // on the creator's shard
	CreatorID   strata.ID
	Title       string
	Description string
	Price       strata.Money // Amount 0 is free
	Tags        []string     // normalized: lowercase, unique, in the creator's order
	Status      Status
	Asset       *Asset // nil until an upload starts
	Version     int64  // 1 on creation, +1 on every change
	CreatedAt   time.Time
	UpdatedAt   time.Time
	DeletedAt   time.Time // zero unless deleted
}

// Deleted reports whether the item was soft-deleted.
func (it *Item) Deleted() bool { return !it.DeletedAt.IsZero() }

// Asset is the file of an item and what processing learned about it.
type Asset struct {
	Status        AssetStatus
	SHA256        string // hex
	Size          int64  // bytes
	MediaType     string
	Width, Height int // pixels, for images; 0 when unknown
	FailureReason string
	// Filename is the name the uploader gave the file ("" when none), as
	// ValidateFilename accepts it.
	Filename string
	// ThumbnailSHA256 and PreviewSHA256 name the previews processing made
	// for an image in the blob store's previews namespace: a thumbnail,
	// and a small blurred preview for paid items; "" until made.
	ThumbnailSHA256 string
	PreviewSHA256   string
	// Live is the last ready version of the file: downloads and previews
	// serve it while a replacement is processed or after one failed, so
	// buyers never lose access to what they bought. Nil before the first
	// file is ready (and on rows older than the column: then a ready
	// asset serves itself).
	Live      *LiveFile
	CreatedAt time.Time
	UpdatedAt time.Time
}

// LiveFile is the served version of an asset's file.
type LiveFile struct {
	SHA256          string
	Size            int64
	MediaType       string
	Filename        string
	ThumbnailSHA256 string
	PreviewSHA256   string
}

// served returns the version of the file that downloads serve: the asset
// itself when ready, else its last ready version; nil when there is none.
func (a *Asset) served() *LiveFile {
	switch {
	case a == nil:
		return nil
	case a.Status == AssetReady:
		return a.live()
	default:
		return a.Live
	}
}

// live describes the asset itself as a served version.
func (a *Asset) live() *LiveFile {
	return &LiveFile{SHA256: a.SHA256, Size: a.Size, MediaType: a.MediaType, Filename: a.Filename,
		ThumbnailSHA256: a.ThumbnailSHA256, PreviewSHA256: a.PreviewSHA256}
}

// Entitlements tells whether a user holds the right to an item (bought it).
// The payments module implements it; until it exists, cmd/strata passes
// NoEntitlements.
type Entitlements interface {
	// Has reports whether user may download item. Errors are unavailable
	// or internal.
	Has(ctx context.Context, user, item strata.ID) (bool, error)
}

// NoEntitlements is the Entitlements of a deployment without payments: no
// one holds any.
type NoEntitlements struct{}

// Has reports false.
func (NoEntitlements) Has(context.Context, strata.ID, strata.ID) (bool, error) { return false, nil }

// ListFilter selects published, non-deleted items, newest first.
type ListFilter struct {
	Creator strata.ID // "" for all
	Tag     string    // normalized; "" for all
	Query   string    // case-insensitive substring of the title; "" for all
	Before  strata.ID // cursor: only items with a smaller id
	Limit   int       // rows wanted from each database
}

// invisible reports control characters and format characters (category
// Cf: bidi overrides, zero-width joiners) that would let a title look like
// something it is not.
func invisible(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }

func validateTitle(title string) error {
	n := utf8.RuneCountInString(title)
	switch {
	case n == 0:
		return strata.Invalid("title", "is required")
	case n > MaxTitle:
		return strata.Invalid("title", "must be at most 200 characters")
	case !utf8.ValidString(title) || strings.ContainsFunc(title, invisible):
		return strata.Invalid("title", "must not contain control or invisible formatting characters")
	}
	return nil
}

func validateDescription(d string) error {
	if utf8.RuneCountInString(d) > MaxDescription {
		return strata.Invalid("description", "must be at most 10000 characters")
	}
	if !utf8.ValidString(d) || strings.ContainsFunc(d, func(r rune) bool {
		return unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t'
	}) {
		return strata.Invalid("description", "must not contain control characters other than line breaks and tabs")
	}
	return nil
}

// NormalizeTags lowercases tags, drops duplicates (keeping the first) and
// checks them: at most MaxTags, each 1 to MaxTag characters of a-z, 0-9
// and '-'.
func NormalizeTags(tags []string) ([]string, error) {
	out := make([]string, 0, len(tags))
	seen := map[string]bool{}
	for _, t := range tags {
		t = strings.ToLower(t)
		if !ValidTag(t) {
			return nil, strata.Invalid("tags", "each tag must be 1 to 32 characters of a-z, 0-9 and '-'")
		}
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	if len(out) > MaxTags {
		return nil, strata.Invalid("tags", "must hold at most 10 tags")
	}
	return out, nil
}

// ValidTag reports whether t is a normalized tag.
func ValidTag(t string) bool {
	if len(t) == 0 || len(t) > MaxTag {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
