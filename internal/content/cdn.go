package content

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/httpx"
	"github.com/stratadev/strata/internal/storage/blob"
)

// MaxRanges is the most byte ranges a /cdn/ request may ask for at once;
// a request with more gets the whole object (a Range header may be
// ignored, RFC 9110 §14.2), so overlapping-range requests cannot multiply
// the work of one request.
const MaxRanges = 16

// Cache-Control of /cdn/ answers.
const (
	// ccImmutable is for objects under content-addressed URLs that anyone
	// holding the URL may fetch: their bytes never change.
	ccImmutable = "public, max-age=31536000, immutable"
	// ccPrivate is for gated originals by default: the bytes never change,
	// but only the browser that was handed the signed URL keeps them.
	ccPrivate = "private, max-age=31536000, immutable"
)

// cdnObject is an entry of the hot-object cache: the attributes of an
// object and, when it is small enough, its bytes (nil otherwise, so a
// large object's attributes are cached without a storage round trip).
type cdnObject struct {
	attrs blob.Attributes
	data  []byte
}

// cdnCache keeps hot objects in memory, bounded by bytes. Keys are the
// namespace letter and the digest; the objects are content-addressed, so
// an entry never goes stale.
type cdnCache struct {
	c         *otter.Cache[string, *cdnObject]
	objectMax int64
}

// entryOverhead is counted for every cached entry besides its bytes.
const entryOverhead = 256

func newCDNCache(maxBytes, objectMax int64) *cdnCache {
	if maxBytes <= 0 {
		return &cdnCache{}
	}
	return &cdnCache{objectMax: min(objectMax, maxBytes), c: otter.Must(&otter.Options[string, *cdnObject]{
		MaximumWeight: uint64(maxBytes),
		Weigher: func(_ string, o *cdnObject) uint32 {
			return uint32(len(o.data) + entryOverhead)
		},
	})}
}

// errTooBig tells the loader's caller that an object streams.
var errTooBig = errors.New("object too large for the cache")

// object returns the cached entry of (ns, sha) or loads it: small objects
// are read whole (one load per key however many requests wait for it),
// large ones are described only. A nil cache describes nothing; callers
// then open the object themselves.
func (c *cdnCache) object(ctx context.Context, store Blobs, ns, sha string) (*cdnObject, error) {
	if c.c == nil {
		return nil, errTooBig
	}
	return c.c.Get(ctx, ns+sha, otter.LoaderFunc[string, *cdnObject](func(ctx context.Context, _ string) (*cdnObject, error) {
		rc, attrs, err := store.Open(ctx, sha)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		if attrs.Size > c.objectMax {
			return &cdnObject{attrs: attrs}, nil
		}
		data := make([]byte, attrs.Size)
		if _, err := io.ReadFull(rc, data); err != nil {
			return nil, &strata.Error{Code: strata.CodeUnavailable, Reason: "blob_unavailable", Message: "storage is unavailable", Err: err}
		}
		return &cdnObject{attrs: attrs, data: data}, nil
	}))
}

// cdnRequest is what a /cdn/ route resolved: the store and digest to serve,
// the file name to suggest ("" for none) and the Cache-Control.
type cdnRequest struct {
	store        Blobs
	ns, sha      string
	name         string
	cacheControl string
}

// handleCDN serves GET and HEAD of /cdn/{kind}/...: resolve checks the
// signature and names the object. Answers carry a strong ETag (the digest),
// Last-Modified, Content-Length, Content-Type (as sniffed at upload),
// Accept-Ranges, nosniff, a sandboxing Content-Security-Policy and, for
// originals, an attachment Content-Disposition; Range (206, multipart for
// several ranges, 416), If-Range, If-None-Match (304) and
// If-Modified-Since work as RFC 9110 says (net/http.ServeContent).
func handleCDN(s *Service, resolve func(*http.Request) (cdnRequest, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cr, err := resolve(r)
		if err != nil {
			cdnError(w, r, err)
			return
		}
		if strings.Count(r.Header.Get("Range"), ",") >= MaxRanges {
			r.Header.Del("Range")
		}
		obj, err := s.cdnCache.object(r.Context(), cr.store, cr.ns, cr.sha)
		var rs io.ReadSeeker
		switch {
		case err == nil && obj.data != nil:
			rs = bytes.NewReader(obj.data)
		case err == nil || errors.Is(err, errTooBig):
			// Large objects stream from storage; the reader opens ranges
			// lazily as ServeContent seeks.
			rc, attrs, err := cr.store.Open(r.Context(), cr.sha)
			if err != nil {
				cdnError(w, r, err)
				return
			}
			defer rc.Close()
			obj, rs = &cdnObject{attrs: attrs}, rc
		default:
			cdnError(w, r, err)
			return
		}
		h := w.Header()
		h.Set("ETag", obj.attrs.ETag())
		h.Set("Cache-Control", cr.cacheControl)
		h.Set("Content-Type", obj.attrs.ContentType)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
		if cr.name != "" {
			h.Set("Content-Disposition", contentDisposition(cr.name))
		}
		http.ServeContent(w, r, "", obj.attrs.ModTime, rs)
	})
}

// cdnError answers a problem that no cache may keep.
func cdnError(w http.ResponseWriter, r *http.Request, err error) {
	w.Header().Set("Cache-Control", "no-store")
	if strata.ErrorCode(err) == strata.CodeInvalid {
		err = errCDNNotFound // a malformed digest names nothing
	}
	httpx.WriteError(w, r, err)
}

var errCDNNotFound = &strata.Error{Code: strata.CodeNotFound, Reason: "not_found", Message: "no such object"}

// resolveOriginal checks a signed /cdn/o/{sha}/{name} request.
func (s *Service) resolveOriginal(r *http.Request) (cdnRequest, error) {
	sha, name := r.PathValue("sha"), r.PathValue("name")
	if !blob.ValidDigest(sha) || name == "" || ValidateFilename(name) != nil {
		return cdnRequest{}, errCDNNotFound
	}
	if err := s.verifySigned(r, OriginalPath(sha, name)); err != nil {
		return cdnRequest{}, err
	}
	return cdnRequest{store: s.blobs, ns: "o", sha: sha, name: name, cacheControl: s.gatedCacheControl()}, nil
}

// resolveThumbnail checks a signed /cdn/t/{sha}/thumbnail.jpg request.
func (s *Service) resolveThumbnail(r *http.Request) (cdnRequest, error) {
	sha := r.PathValue("sha")
	if !blob.ValidDigest(sha) || s.previews == nil {
		return cdnRequest{}, errCDNNotFound
	}
	if err := s.verifySigned(r, thumbnailPath(sha)); err != nil {
		return cdnRequest{}, err
	}
	return cdnRequest{store: s.previews, ns: "p", sha: sha, cacheControl: s.gatedCacheControl()}, nil
}

// resolvePreview checks a public /cdn/p/{sha}.jpg request.
func (s *Service) resolvePreview(r *http.Request) (cdnRequest, error) {
	file := r.PathValue("file")
	sha, ok := strings.CutSuffix(file, ".jpg")
	if !ok || !blob.ValidDigest(sha) || s.previews == nil || s.signer == nil {
		return cdnRequest{}, errCDNNotFound
	}
	if err := s.signer.VerifyPublic(PreviewPath(sha), r.URL.Query()); err != nil {
		return cdnRequest{}, err
	}
	return cdnRequest{store: s.previews, ns: "p", sha: sha, cacheControl: ccImmutable}, nil
}

// verifySigned checks the expiring signature of path, and that a caller
// who shows a token is the user the URL was made for.
func (s *Service) verifySigned(r *http.Request, path string) error {
	if s.signer == nil || s.blobs == nil {
		return errNoDelivery
	}
	user, err := s.signer.Verify(path, r.URL.Query(), s.clock.Now())
	if err != nil {
		return err
	}
	if p := strata.PrincipalFrom(r.Context()); p != nil && user != "" && p.UserID != user {
		return errSigForeign
	}
	return nil
}

func (s *Service) gatedCacheControl() string {
	if s.delivery.SharedCache {
		return ccImmutable
	}
	return ccPrivate
}

// contentDisposition is an attachment header naming name: an ASCII
// fallback in filename (non-ASCII, quotes and backslashes replaced by '_')
// and the exact name in filename* (RFC 6266, RFC 8187).
func contentDisposition(name string) string {
	var ascii strings.Builder
	plain := true
	for _, r := range name {
		if r < 0x20 || r >= 0x7f || r == '"' || r == '\\' {
			ascii.WriteByte('_')
			plain = false
			continue
		}
		ascii.WriteRune(r)
	}
	v := `attachment; filename="` + ascii.String() + `"`
	if !plain {
		v += "; filename*=UTF-8''" + encodeRFC8187(name)
	}
	return v
}

// encodeRFC8187 percent-encodes every byte outside RFC 8187's attr-char.
func encodeRFC8187(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$&+-.^_`|~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// handleDownload serves GET /v1/items/{id}/download: 302 to a signed URL,
// with the URL and its expiry also in a JSON body for clients that do not
// follow redirects. The answer itself is never cached.
func handleDownload(s *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := itemID(r)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		d, err := s.Download(r.Context(), id, r.URL.Query().Get("variant"))
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		w.Header().Set("Location", d.URL)
		w.Header().Set("Cache-Control", "no-store")
		httpx.WriteJSON(w, http.StatusFound, struct {
			URL       string `json:"url"`
			ExpiresAt string `json:"expires_at"`
		}{d.URL, d.ExpiresAt.UTC().Format(time.RFC3339)})
	})
}
