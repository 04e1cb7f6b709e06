package content

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
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
	// Header values of a whole answer, made once per cached object and
	// shared read-only by every answer (capacity = length, so an append
	// copies).
	etag, length, lastModified, contentType []string
}

func newCDNObject(attrs blob.Attributes, data []byte) *cdnObject {
	one := func(v string) []string { return []string{v}[:1:1] }
	o := &cdnObject{attrs: attrs, data: data, etag: one(attrs.ETag()), contentType: one(attrs.ContentType),
		length: one(strconv.FormatInt(attrs.Size, 10))}
	if !attrs.ModTime.IsZero() {
		o.lastModified = one(attrs.ModTime.UTC().Format(http.TimeFormat))
	}
	return o
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
	// No single object may take more than an eighth of the cache, so that
	// concurrent first loads of distinct objects stay near the bound and
	// a weight always fits the weigher's uint32.
	objectMax = min(objectMax, maxBytes/8, 1<<30)
	return &cdnCache{objectMax: objectMax, c: otter.Must(&otter.Options[string, *cdnObject]{
		MaximumWeight: uint64(maxBytes),
		Weigher: func(_ string, o *cdnObject) uint32 {
			return uint32(len(o.data) + entryOverhead)
		},
	})}
}

// forget drops the entry of (ns, sha).
func (c *cdnCache) forget(ns, sha string) {
	if c.c != nil {
		c.c.Invalidate(ns + sha)
	}
}

// localFiles is a blob store on a local folder (*blob.Store over fileblob
// is), whose objects can be opened as files.
type localFiles interface {
	Local() bool
	File(sha string) (*os.File, error)
}

// localObjectMax is the largest object of a local folder kept in memory;
// larger ones are sent from their file.
const localObjectMax = 64 << 10

// loadTimeout bounds one cache fill, which outlives the request that
// started it (others may be waiting for it).
const loadTimeout = 30 * time.Second

// object returns the cached entry of (ns, sha) or loads it: the object is
// described (a stat, no read), then read whole when small enough — one
// load per key however many requests wait for it. Large objects are
// cached as attributes only. Without a cache it only describes.
func (c *cdnCache) object(ctx context.Context, store Blobs, ns, sha string) (*cdnObject, error) {
	load := func(ctx context.Context) (*cdnObject, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), loadTimeout)
		defer cancel()
		o, err := store.Stat(ctx, sha)
		if err != nil {
			return nil, err
		}
		attrs := blob.Attributes{SHA256: sha, Size: o.Size, ContentType: o.ContentType, ModTime: o.ModTime}
		max := c.objectMax
		if lf, ok := store.(localFiles); ok && lf.Local() {
			// A folder's files go out by sendfile(2), cheaper than a copy
			// from memory once they are more than a few pages.
			max = min(max, localObjectMax)
		}
		if c.c == nil || attrs.Size > max {
			return newCDNObject(attrs, nil), nil
		}
		rc, _, err := store.Open(ctx, sha)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		data := make([]byte, attrs.Size)
		if _, err := io.ReadFull(rc, data); err != nil {
			return nil, &strata.Error{Code: strata.CodeUnavailable, Reason: "blob_unavailable", Message: "storage is unavailable", Err: err}
		}
		return newCDNObject(attrs, data), nil
	}
	if c.c == nil {
		return load(ctx)
	}
	return c.c.Get(ctx, ns+sha, otter.LoaderFunc[string, *cdnObject](func(ctx context.Context, _ string) (*cdnObject, error) {
		return load(ctx)
	}))
}

// rangeReader reads an object lazily from storage: a Read opens the object
// from the current offset, a Seek elsewhere closes it, so
// net/http.ServeContent's seeks cost nothing and HEAD or 304 answers open
// nothing at all.
type rangeReader struct {
	ctx       context.Context
	store     Blobs
	sha       string
	size, off int64
	rc        io.ReadCloser
	// gone is called when the object turns out to be missing, so that its
	// cached description goes too.
	gone func()
}

func (r *rangeReader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	if r.rc == nil {
		rc, _, err := r.store.OpenRange(r.ctx, r.sha, r.off, -1)
		if err != nil {
			if strata.ErrorCode(err) == strata.CodeNotFound && r.gone != nil {
				r.gone()
			}
			return 0, err
		}
		r.rc = rc
	}
	n, err := r.rc.Read(p)
	r.off += int64(n)
	return n, err
}

func (r *rangeReader) Seek(offset int64, whence int) (int64, error) {
	abs := offset
	switch whence {
	case io.SeekCurrent:
		abs += r.off
	case io.SeekEnd:
		abs += r.size
	}
	if abs < 0 {
		return 0, errors.New("seek before the start")
	}
	if abs != r.off {
		r.Close()
	}
	r.off = abs
	return abs, nil
}

func (r *rangeReader) Close() error {
	if r.rc == nil {
		return nil
	}
	err := r.rc.Close()
	r.rc = nil
	return err
}

// cdnRequest is what a /cdn/ route resolved: the store and digest to serve,
// the file name to suggest ("" for none) and the Cache-Control.
type cdnRequest struct {
	store        Blobs
	ns, sha      string
	name         string
	cacheControl []string
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
		if err != nil {
			if r.Context().Err() != nil {
				return // the client left; nothing to answer or log
			}
			cdnError(w, r, err)
			return
		}
		h := w.Header()
		h["Cache-Control"] = cr.cacheControl
		h["X-Content-Type-Options"] = hdrNosniff
		h["Content-Security-Policy"] = hdrCSP
		if cr.name != "" {
			h.Set("Content-Disposition", contentDisposition(cr.name))
		}
		h["Etag"] = obj.etag
		h["Content-Type"] = obj.contentType
		if obj.data != nil && plainGet(r) {
			// The common case, without ServeContent's parsing: a whole
			// cached object in one write.
			h["Accept-Ranges"] = hdrBytes
			h["Content-Length"] = obj.length
			if obj.lastModified != nil {
				h["Last-Modified"] = obj.lastModified
			}
			w.WriteHeader(http.StatusOK)
			if r.Method != http.MethodHead {
				w.Write(obj.data)
			}
			return
		}
		var rs io.ReadSeeker
		var f *os.File
		if lf, ok := cr.store.(localFiles); ok && obj.data == nil && lf.Local() {
			f, err = lf.File(cr.sha)
			if err != nil && !errors.Is(err, blob.ErrNotLocal) {
				s.cdnCache.forget(cr.ns, cr.sha)
				cdnError(w, r, err)
				return
			}
		}
		switch {
		case f != nil:
			// net/http sends it with sendfile(2) through ReadFrom.
			defer f.Close()
			rs = f
		case obj.data != nil:
			rs = bytes.NewReader(obj.data)
		default:
			// Large objects stream from storage, never whole in memory.
			// Should the object have vanished since it was described, the
			// answer is cut short and the description dropped, so the next
			// request is a 404.
			rr := &rangeReader{ctx: r.Context(), store: cr.store, sha: cr.sha, size: obj.attrs.Size,
				gone: func() { s.cdnCache.forget(cr.ns, cr.sha) }}
			defer rr.Close()
			rs = rr
		}
		http.ServeContent(w, r, "", obj.attrs.ModTime, rs)
	})
}

// Shared, read-only header values of /cdn/ answers.
var (
	hdrNosniff   = []string{"nosniff"}[:1:1]
	hdrCSP       = []string{"default-src 'none'; sandbox"}[:1:1]
	hdrBytes     = []string{"bytes"}[:1:1]
	hdrImmutable = []string{ccImmutable}[:1:1]
	hdrPrivate   = []string{ccPrivate}[:1:1]
)

// plainGet reports whether r asks for the whole object unconditionally,
// which is what nearly every request does.
func plainGet(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	h := r.Header
	return len(h["Range"]) == 0 && len(h["If-None-Match"]) == 0 && len(h["If-Modified-Since"]) == 0 &&
		len(h["If-Match"]) == 0 && len(h["If-Unmodified-Since"]) == 0 && len(h["If-Range"]) == 0
}

// cdnError answers a problem that no cache may keep.
func cdnError(w http.ResponseWriter, r *http.Request, err error) {
	w.Header().Set("Cache-Control", "no-store")
	if c := strata.ErrorCode(err); c == strata.CodeInvalid || c == strata.CodeNotFound {
		err = errCDNNotFound // one answer for whatever names nothing
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
	if err := s.signer.VerifyPublicQuery(PreviewPath(sha), r.URL.RawQuery); err != nil {
		return cdnRequest{}, err
	}
	return cdnRequest{store: s.previews, ns: "p", sha: sha, cacheControl: hdrImmutable}, nil
}

// verifySigned checks the expiring signature of path, and that a caller
// who shows a token is the user the URL was made for.
func (s *Service) verifySigned(r *http.Request, path string) error {
	if s.signer == nil || s.blobs == nil {
		return errNoDelivery
	}
	user, err := s.signer.VerifyQuery(path, r.URL.RawQuery, s.clock.Now())
	if err != nil {
		return err
	}
	if p := strata.PrincipalFrom(r.Context()); p != nil && user != "" && p.UserID != user {
		return errSigForeign
	}
	return nil
}

func (s *Service) gatedCacheControl() []string {
	if s.delivery.SharedCache {
		return hdrImmutable
	}
	return hdrPrivate
}

// contentDisposition is an attachment header naming name: an ASCII
// fallback in filename (non-ASCII, quotes and backslashes replaced by '_')
// and the exact name in filename* (RFC 6266, RFC 8187).
func contentDisposition(name string) string {
	var ascii strings.Builder
	plain := true
	for _, r := range name {
		if r < 0x20 || r >= 0x7f || r == '"' || r == '\\' || r == '%' {
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

// softAuthenticate is httpx.Authenticate for /cdn/, where the signed URL
// is the credential: a bearer token that verifies makes the request the
// user's (so a URL issued to someone else is refused), and a missing,
// stale or malformed one leaves it anonymous rather than refused, so a
// valid URL is never turned away because of an expired access token.
func softAuthenticate(v httpx.TokenVerifier) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			scheme, raw, ok := strings.Cut(r.Header.Get("Authorization"), " ")
			if ok && strings.EqualFold(scheme, "Bearer") {
				if p, err := v.Verify(r.Context(), strings.TrimSpace(raw)); err == nil {
					r = r.WithContext(strata.NewContext(r.Context(), p))
				}
			}
			next.ServeHTTP(w, r)
		})
	}
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
