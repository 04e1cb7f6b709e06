package content

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/stratadev/strata"
)

// Defaults of DeliveryConfig.
const (
	DefaultURLLifetime         = 5 * time.Minute
	DefaultCacheBytes          = 128 << 20
	DefaultCacheObjectMaxBytes = 1 << 20
)

// DeliveryConfig holds the settings of downloads and /cdn/.
type DeliveryConfig struct {
	// URLLifetime is how long a signed download URL stays valid.
	URLLifetime time.Duration
	// SigningKeys are "id:base64secret" URL-signing keys; the first signs,
	// all verify. Empty means one key derived from the master key.
	SigningKeys []string
	// CacheBytes bounds the in-memory cache of hot objects, in bytes of
	// content; 0 turns it off.
	CacheBytes int64
	// CacheObjectMaxBytes is the largest object the cache keeps; larger
	// ones always stream from storage.
	CacheObjectMaxBytes int64
	// SharedCache marks gated originals cacheable by shared caches (a CDN
	// that checks signatures at its edge and keys its cache on the path);
	// off, they are private. See docs/content-delivery.md.
	SharedCache bool
	// BaseURL is prefixed to /cdn/ URLs handed out (download redirects,
	// preview URLs), e.g. https://cdn.example.com; empty means relative
	// URLs on this host.
	BaseURL string
}

// RegisterFlags registers every setting with its default on fs.
func (c *DeliveryConfig) RegisterFlags(fs *pflag.FlagSet) {
	fs.DurationVar(&c.URLLifetime, "cdn-url-lifetime", DefaultURLLifetime, "how long a signed download URL stays valid")
	fs.StringSliceVar(&c.SigningKeys, "cdn-signing-keys", nil, "URL-signing keys as id:base64secret (secret; the first signs, all verify); default: one derived from the master key")
	fs.Int64Var(&c.CacheBytes, "cdn-cache-bytes", DefaultCacheBytes, "memory for hot /cdn/ objects, in bytes (0 turns the cache off)")
	fs.Int64Var(&c.CacheObjectMaxBytes, "cdn-cache-object-max-bytes", DefaultCacheObjectMaxBytes, "largest object kept in the /cdn/ cache, in bytes")
	fs.BoolVar(&c.SharedCache, "cdn-shared-cache", false, "let shared caches store gated originals (only behind a CDN that verifies signatures; see docs/content-delivery.md)")
	fs.StringVar(&c.BaseURL, "cdn-base-url", "", "absolute base of the /cdn/ URLs handed out, e.g. https://cdn.example.com (default: relative)")
}

// Validate checks the settings.
func (c *DeliveryConfig) Validate() error {
	if c.URLLifetime < time.Second || c.URLLifetime > 7*24*time.Hour {
		return fmt.Errorf("cdn-url-lifetime must be between 1s and 168h, got %s", c.URLLifetime)
	}
	if _, err := ParseSigningKeys(c.SigningKeys); err != nil {
		return fmt.Errorf("cdn-signing-keys: %w", err)
	}
	if c.CacheBytes < 0 {
		return fmt.Errorf("cdn-cache-bytes must not be negative, got %d", c.CacheBytes)
	}
	if c.CacheObjectMaxBytes < 0 || c.CacheObjectMaxBytes > 1<<30 {
		return fmt.Errorf("cdn-cache-object-max-bytes must be between 0 and 1 GiB, got %d", c.CacheObjectMaxBytes)
	}
	if c.BaseURL != "" {
		u, err := url.Parse(c.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("cdn-base-url must be an absolute http(s) URL without query, got %q", c.BaseURL)
		}
	}
	return nil
}

// withDefaults fills a zero lifetime.
func (c DeliveryConfig) withDefaults() DeliveryConfig {
	if c.URLLifetime == 0 {
		c.URLLifetime = DefaultURLLifetime
	}
	c.BaseURL = strings.TrimSuffix(c.BaseURL, "/")
	return c
}

// Variants of a download.
const (
	VariantOriginal  = "original"
	VariantThumbnail = "thumbnail"
)

// Download is where to fetch an item's file: a signed /cdn/ URL and its
// expiry.
type Download struct {
	URL       string
	ExpiresAt time.Time
}

var (
	errNotEntitled = &strata.Error{Code: strata.CodePaymentRequired, Reason: "not_entitled",
		Message: "buy the item to download it"}
	errNotReady = &strata.Error{Code: strata.CodeConflict, Reason: "asset_not_ready",
		Message: "the item has no processed file to download"}
	errNoDelivery = &strata.Error{Code: strata.CodeUnavailable, Reason: "downloads_unavailable",
		Message: "downloads are not configured"}
	errNoVariant = &strata.Error{Code: strata.CodeNotFound, Reason: "variant_not_found",
		Message: "the item has no such variant"}
)

// Download checks that the caller may download an item's file and returns
// a signed URL for it. Allowed are the item's creator and admins (any
// state), anyone for a free published item, and a buyer holding an
// entitlement (even after the item was unpublished or deleted). variant is
// VariantOriginal (or "") or VariantThumbnail (images only). Errors:
// invalid "variant"; not_found for an item the caller may not see;
// unauthenticated for an anonymous caller of a paid item; payment_required
// "not_entitled"; conflict "asset_not_ready"; not_found
// "variant_not_found"; unavailable.
func (s *Service) Download(ctx context.Context, id strata.ID, variant string) (*Download, error) {
	if variant != "" && variant != VariantOriginal && variant != VariantThumbnail {
		return nil, strata.Invalid("variant", "must be original or thumbnail")
	}
	if s.signer == nil {
		return nil, errNoDelivery
	}
	it, err := s.itemByID(ctx, id)
	if strata.ErrorCode(err) == strata.CodeNotFound {
		return nil, errNotFound
	}
	if err != nil {
		return nil, err
	}
	if err := s.mayDownload(ctx, it); err != nil {
		return nil, err
	}
	// The ready file, or while a replacement is processed (or after it
	// failed) the last ready one: buyers keep what they bought.
	a := it.Asset.served()
	if a == nil {
		return nil, errNotReady
	}
	path := OriginalPath(a.SHA256, downloadName(it.ID, a))
	if variant == VariantThumbnail {
		if a.ThumbnailSHA256 == "" {
			return nil, errNoVariant
		}
		path = thumbnailPath(a.ThumbnailSHA256)
	}
	var user strata.ID
	if p := strata.PrincipalFrom(ctx); p != nil {
		user = p.UserID
	}
	q, exp := s.signer.Sign(path, user, s.clock.Now())
	return &Download{URL: s.delivery.BaseURL + path + "?" + q, ExpiresAt: exp}, nil
}

// mayDownload applies Download's access rule.
func (s *Service) mayDownload(ctx context.Context, it *Item) error {
	if mayManage(ctx, it) {
		return nil
	}
	visible := it.Status == StatusPublished && !it.Deleted()
	if visible && it.Price.Amount == 0 {
		return nil
	}
	p := strata.PrincipalFrom(ctx)
	if p == nil {
		if !visible {
			return errNotFound
		}
		return errNoPrincipal
	}
	ok, err := s.entitlements.Has(ctx, p.UserID, it.ID)
	if err != nil {
		return err
	}
	switch {
	case ok:
		return nil
	case !visible:
		return errNotFound
	default:
		return errNotEntitled
	}
}

// downloadName is the file name a download suggests: the uploader's, or
// the item id with an extension for the media type.
func downloadName(id strata.ID, f *LiveFile) string {
	if f.Filename != "" {
		return f.Filename
	}
	return string(id) + extensions[f.MediaType]
}

var extensions = map[string]string{
	"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp",
	"application/pdf": ".pdf", "audio/mpeg": ".mp3", "video/mp4": ".mp4", "application/zip": ".zip",
	"text/plain": ".txt", "audio/wave": ".wav", "video/webm": ".webm", "audio/ogg": ".ogg",
}

// Paths under /cdn/, all by digest: originals (/cdn/o/) and thumbnails
// (/cdn/t/) under expiring signatures, with the suggested file name as the
// last segment; public previews (/cdn/p/) under a signature that never
// expires, so their URLs are stable and cacheable for a year.
const (
	cdnOriginals  = "/cdn/o/"
	cdnThumbnails = "/cdn/t/"
	cdnPreviews   = "/cdn/p/"
)

// OriginalPath is the signed path of an original: /cdn/o/<sha256>/<name>,
// the name escaped as one path segment.
func OriginalPath(sha, name string) string {
	return cdnOriginals + sha + "/" + url.PathEscape(name)
}

// thumbnailPath is the signed path of a thumbnail, which lives in the
// previews namespace: /cdn/t/<sha256>/thumbnail.jpg.
func thumbnailPath(sha string) string { return cdnThumbnails + sha + "/thumbnail.jpg" }

// PreviewPath is the path of a public preview: /cdn/p/<sha256>.jpg.
func PreviewPath(sha string) string { return cdnPreviews + sha + ".jpg" }

// previewURL is the URL of the preview anyone may see: the thumbnail of a
// free item, the blurred preview of a paid one; "" when there is none.
func (s *Service) previewURL(it *Item) string {
	a := it.Asset.served()
	if a == nil {
		return ""
	}
	sha := a.PreviewSHA256
	if it.Price.Amount == 0 {
		sha = a.ThumbnailSHA256
	}
	if sha == "" || s.signer == nil {
		return ""
	}
	path := PreviewPath(sha)
	return s.delivery.BaseURL + path + "?" + s.signer.SignPublic(path)
}
