package content_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/content"
	"github.com/stratadev/strata/internal/storage/blob"
	"github.com/stretchr/testify/require"
)

// pdfFile is a file sniffed as application/pdf, n bytes long.
func pdfFile(n int, seed uint64) string {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	copy(b, "%PDF-1.7\n")
	return string(b)
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// readyItem makes an item of u priced amount whose file is data named
// name, processed, published when publish is set.
func (h *harness) readyItem(u user, amount int64, name, data string, publish bool) item {
	h.t.Helper()
	it := h.create(u, itemBody("file "+name, amount))
	r := h.do(u, "PUT", "/v1/items/"+it.ID+"/file?filename="+url.QueryEscape(name), data)
	require.Equal(h.t, http.StatusAccepted, r.status, "body: %s", r.body)
	rows := h.events(it.ID, content.SubjectAssetUploaded)
	require.NoError(h.t, h.process(rows[len(rows)-1]))
	require.Equal(h.t, "ready", h.asset(u, it.ID)["status"])
	if publish {
		r := h.do(u, "POST", "/v1/items/"+it.ID+"/publish", nil)
		require.Equal(h.t, http.StatusOK, r.status, "body: %s", r.body)
	}
	return it
}

// downloadURL asks for the item's download as u and returns the signed
// URL, requiring a 302.
func (h *harness) downloadURL(u user, id string) string {
	h.t.Helper()
	r := h.do(u, "GET", "/v1/items/"+id+"/download", nil)
	require.Equal(h.t, http.StatusFound, r.status, "body: %s", r.body)
	loc := r.header.Get("Location")
	require.Equal(h.t, loc, r.json(h.t)["url"])
	require.Equal(h.t, "no-store", r.header.Get("Cache-Control"))
	return loc
}

// fetch sends method to a /cdn/ URL with extra headers, as u.
func (h *harness) fetch(u user, method, target string, hdr map[string]string) response {
	h.t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if u.token != "" {
		req.Header.Set("Authorization", "Bearer "+u.token)
	}
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

func TestDownloadAccess(t *testing.T) {
	h := newHarness(t)
	creator := h.newUser(strata.RoleCreator, testShards[0])
	admin := h.newUser(strata.RoleAdmin, testShards[1])
	buyer := h.newUser(strata.RoleBuyer, testShards[2])
	stranger := h.newUser(strata.RoleBuyer, testShards[1])
	anon := user{}

	free := h.readyItem(creator, 0, "free.pdf", pdfFile(100, 1), true)
	paid := h.readyItem(creator, 500, "paid.pdf", pdfFile(100, 2), true)
	draft := h.readyItem(creator, 0, "draft.pdf", pdfFile(100, 3), false)
	deleted := h.readyItem(creator, 500, "gone.pdf", pdfFile(100, 4), true)
	unpublished := h.readyItem(creator, 0, "off.pdf", pdfFile(100, 5), true)
	noFile := h.create(creator, itemBody("no file", 0))
	h.ents.grant(buyer.id, strata.ID(paid.ID))
	h.ents.grant(buyer.id, strata.ID(deleted.ID))
	require.Equal(t, http.StatusNoContent, h.do(creator, "DELETE", "/v1/items/"+deleted.ID, nil).status)
	require.Equal(t, http.StatusOK, h.do(creator, "POST", "/v1/items/"+unpublished.ID+"/unpublish", nil).status)

	tests := []struct {
		name   string
		caller user
		id     string
		query  string
		status int
		code   string
	}{
		{"owner of a paid item", creator, paid.ID, "", http.StatusFound, ""},
		{"owner of a draft", creator, draft.ID, "", http.StatusFound, ""},
		{"admin of a paid item", admin, paid.ID, "", http.StatusFound, ""},
		{"anyone, free published item", anon, free.ID, "", http.StatusFound, ""},
		{"user, free published item", stranger, free.ID, "", http.StatusFound, ""},
		{"buyer of a paid item", buyer, paid.ID, "", http.StatusFound, ""},
		{"buyer of a deleted item", buyer, deleted.ID, "", http.StatusFound, ""},
		{"paid item without entitlement", stranger, paid.ID, "", http.StatusPaymentRequired, "not_entitled"},
		{"paid item, anonymous", anon, paid.ID, "", http.StatusUnauthorized, "token_missing"},
		{"someone else's draft", stranger, draft.ID, "", http.StatusNotFound, "item_not_found"},
		{"someone else's draft, anonymous", anon, draft.ID, "", http.StatusNotFound, "item_not_found"},
		{"deleted item, not a buyer", stranger, deleted.ID, "", http.StatusNotFound, "item_not_found"},
		{"unpublished free item", stranger, unpublished.ID, "", http.StatusNotFound, "item_not_found"},
		{"no file", creator, noFile.ID, "", http.StatusConflict, "asset_not_ready"},
		{"unknown item", creator, string(strata.NewID(content.PrefixItem, 3, time.Now())), "", http.StatusNotFound, "item_not_found"},
		{"malformed id", creator, "itm_..%2F..%2Fetc", "", http.StatusNotFound, "item_not_found"},
		{"bad variant", creator, paid.ID, "?variant=full", http.StatusBadRequest, "validation_failed"},
		{"thumbnail of a pdf", creator, paid.ID, "?variant=thumbnail", http.StatusNotFound, "variant_not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(tc.caller, "GET", "/v1/items/"+tc.id+"/download"+tc.query, nil)
			require.Equal(t, tc.status, r.status, "body: %s", r.body)
			if tc.code != "" {
				code, _ := r.problem(t)
				require.Equal(t, tc.code, code)
				return
			}
			loc := r.header.Get("Location")
			require.True(t, strings.HasPrefix(loc, "/cdn/o/"), loc)
			got := h.fetch(tc.caller, "GET", loc, nil)
			require.Equal(t, http.StatusOK, got.status, "body: %s", got.body)
		})
	}

	t.Run("entitlement errors are not a yes", func(t *testing.T) {
		h.ents.mu.Lock()
		h.ents.err = &strata.Error{Code: strata.CodeUnavailable, Reason: "payments_unavailable", Message: "down"}
		h.ents.mu.Unlock()
		defer func() { h.ents.mu.Lock(); h.ents.err = nil; h.ents.mu.Unlock() }()
		r := h.do(buyer, "GET", "/v1/items/"+paid.ID+"/download", nil)
		require.Equal(t, http.StatusServiceUnavailable, r.status, "body: %s", r.body)
	})
}

func TestCDNHeaders(t *testing.T) {
	h := newHarness(t)
	creator := h.newUser(strata.RoleCreator, testShards[0])
	data := pdfFile(3000, 7)
	it := h.readyItem(creator, 0, "Ünïcode \"report\".pdf", data, true)
	loc := h.downloadURL(user{}, it.ID)
	sha := digest(data)
	require.True(t, strings.HasPrefix(loc, "/cdn/o/"+sha+"/"), loc)

	for _, method := range []string{"GET", "HEAD"} {
		t.Run(method, func(t *testing.T) {
			r := h.fetch(user{}, method, loc, nil)
			require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
			if method == "GET" {
				require.Equal(t, data, string(r.body))
			} else {
				require.Empty(t, r.body)
			}
			hd := r.header
			require.Equal(t, `"`+sha+`"`, hd.Get("ETag"))
			require.Equal(t, "application/pdf", hd.Get("Content-Type"))
			require.Equal(t, "3000", hd.Get("Content-Length"))
			require.Equal(t, "bytes", hd.Get("Accept-Ranges"))
			require.Equal(t, "nosniff", hd.Get("X-Content-Type-Options"))
			require.Equal(t, "default-src 'none'; sandbox", hd.Get("Content-Security-Policy"))
			require.Equal(t, "private, max-age=31536000, immutable", hd.Get("Cache-Control"))
			require.NotEmpty(t, hd.Get("Last-Modified"))
			_, err := http.ParseTime(hd.Get("Last-Modified"))
			require.NoError(t, err)
			cd := hd.Get("Content-Disposition")
			disp, params, err := mime.ParseMediaType(cd)
			require.NoError(t, err, cd)
			require.Equal(t, "attachment", disp)
			require.Equal(t, "Ünïcode \"report\".pdf", params["filename"], cd) // from filename*
			require.Contains(t, cd, `filename="_n_code _report_.pdf"`)
		})
	}

	t.Run("If-None-Match", func(t *testing.T) {
		r := h.fetch(user{}, "GET", loc, map[string]string{"If-None-Match": `"` + sha + `"`})
		require.Equal(t, http.StatusNotModified, r.status)
		require.Empty(t, r.body)
		require.Equal(t, `"`+sha+`"`, r.header.Get("ETag"))
		require.Equal(t, "private, max-age=31536000, immutable", r.header.Get("Cache-Control"))
		r = h.fetch(user{}, "GET", loc, map[string]string{"If-None-Match": `"other"`})
		require.Equal(t, http.StatusOK, r.status)
	})

	t.Run("a file without a name gets the item id", func(t *testing.T) {
		it := h.create(creator, itemBody("nameless", 0))
		h.upload(creator, it.ID, pdfFile(10, 8))
		rows := h.events(it.ID, content.SubjectAssetUploaded)
		require.NoError(t, h.process(rows[0]))
		loc := h.downloadURL(creator, it.ID)
		r := h.fetch(user{}, "GET", loc, nil)
		require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
		require.Equal(t, `attachment; filename="`+it.ID+`.pdf"`, r.header.Get("Content-Disposition"))
	})

	t.Run("shared cache mode", func(t *testing.T) {
		h2 := newHarnessWith(t, func(d *content.Deps) { d.Delivery.SharedCache = true })
		creator := h2.newUser(strata.RoleCreator, testShards[0])
		it := h2.readyItem(creator, 0, "a.pdf", pdfFile(100, 9), true)
		r := h2.fetch(user{}, "GET", h2.downloadURL(user{}, it.ID), nil)
		require.Equal(t, http.StatusOK, r.status)
		require.Equal(t, "public, max-age=31536000, immutable", r.header.Get("Cache-Control"))
	})
}

func TestCDNRanges(t *testing.T) {
	t.Run("folder", func(t *testing.T) { testCDNRanges(t, newHarness(t)) })
	// A store that is not a local folder (as S3 is not): large objects
	// stream through lazily opened ranges instead of sendfile.
	t.Run("streamed", func(t *testing.T) {
		testCDNRanges(t, newHarnessWith(t, func(d *content.Deps) { d.Blobs = struct{ content.Blobs }{d.Blobs} }))
	})
}

func testCDNRanges(t *testing.T, h *harness) {
	creator := h.newUser(strata.RoleCreator, testShards[1])
	// One object the cache keeps (≤ 64 KiB in the harness) and one that
	// streams from storage: both must answer alike.
	for _, size := range []int{1000, 200 << 10} {
		data := pdfFile(size, uint64(size))
		it := h.readyItem(creator, 0, "r.pdf", data, true)
		loc := h.downloadURL(creator, it.ID)
		etag := `"` + digest(data) + `"`
		n := len(data)
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			tests := []struct {
				name   string
				hdr    map[string]string
				status int
				rng    string // Content-Range
				body   string
			}{
				{"first bytes", map[string]string{"Range": "bytes=0-9"}, 206, fmt.Sprintf("bytes 0-9/%d", n), data[:10]},
				{"middle", map[string]string{"Range": "bytes=100-199"}, 206, fmt.Sprintf("bytes 100-199/%d", n), data[100:200]},
				{"open end", map[string]string{"Range": fmt.Sprintf("bytes=%d-", n-7)}, 206, fmt.Sprintf("bytes %d-%d/%d", n-7, n-1, n), data[n-7:]},
				{"suffix", map[string]string{"Range": "bytes=-5"}, 206, fmt.Sprintf("bytes %d-%d/%d", n-5, n-1, n), data[n-5:]},
				{"suffix longer than the object", map[string]string{"Range": fmt.Sprintf("bytes=-%d", n+10)}, 206, fmt.Sprintf("bytes 0-%d/%d", n-1, n), data},
				{"end past the end is clamped", map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", n-3, n+100)}, 206, fmt.Sprintf("bytes %d-%d/%d", n-3, n-1, n), data[n-3:]},
				{"start past the end", map[string]string{"Range": fmt.Sprintf("bytes=%d-", n)}, 416, fmt.Sprintf("bytes */%d", n), ""},
				{"start far past the end", map[string]string{"Range": "bytes=99999999-"}, 416, fmt.Sprintf("bytes */%d", n), ""},
				{"malformed", map[string]string{"Range": "bytes=9-2"}, 416, "", ""}, // net/http refuses rather than ignores it
				{"If-Range with the current ETag", map[string]string{"Range": "bytes=0-3", "If-Range": etag}, 206, fmt.Sprintf("bytes 0-3/%d", n), data[:4]},
				{"If-Range with a stale ETag", map[string]string{"Range": "bytes=0-3", "If-Range": `"0000"`}, 200, "", data},
				{"If-Range with a weak ETag", map[string]string{"Range": "bytes=0-3", "If-Range": "W/" + etag}, 200, "", data},
				{"too many ranges are ignored", map[string]string{"Range": "bytes=" + strings.Repeat("0-0,", content.MaxRanges) + "1-1"}, 200, "", data},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					r := h.fetch(user{}, "GET", loc, tc.hdr)
					require.Equal(t, tc.status, r.status, "body: %.200s", r.body)
					require.Equal(t, tc.rng, r.header.Get("Content-Range"))
					if tc.status != 416 {
						require.Equal(t, len(tc.body), len(r.body))
						require.True(t, tc.body == string(r.body), "wrong bytes")
						require.Equal(t, fmt.Sprint(len(tc.body)), r.header.Get("Content-Length"))
					}
				})
			}
			t.Run("two ranges", func(t *testing.T) {
				r := h.fetch(user{}, "GET", loc, map[string]string{"Range": "bytes=0-1,10-12"})
				require.Equal(t, http.StatusPartialContent, r.status)
				mt, params, err := mime.ParseMediaType(r.header.Get("Content-Type"))
				require.NoError(t, err)
				require.Equal(t, "multipart/byteranges", mt)
				mr := multipart.NewReader(bytes.NewReader(r.body), params["boundary"])
				var parts []string
				for {
					p, err := mr.NextPart()
					if err == io.EOF {
						break
					}
					require.NoError(t, err)
					b, _ := io.ReadAll(p)
					parts = append(parts, p.Header.Get("Content-Range")+"="+string(b))
				}
				require.Equal(t, []string{fmt.Sprintf("bytes 0-1/%d=%s", n, data[:2]), fmt.Sprintf("bytes 10-12/%d=%s", n, data[10:13])}, parts)
			})
		})
	}
}

func TestCDNSignatures(t *testing.T) {
	h := newHarness(t)
	creator := h.newUser(strata.RoleCreator, testShards[0])
	buyer := h.newUser(strata.RoleBuyer, testShards[1])
	other := h.newUser(strata.RoleBuyer, testShards[2])
	data := pdfFile(500, 11)
	it := h.readyItem(creator, 300, "s.pdf", data, true)
	h.ents.grant(buyer.id, strata.ID(it.ID))
	loc := h.downloadURL(buyer, it.ID)
	u, err := url.Parse(loc)
	require.NoError(t, err)
	q := u.Query()
	require.Equal(t, string(buyer.id), q.Get("u"))
	require.Equal(t, "k1", q.Get("kid"))
	otherData := pdfFile(500, 12)
	otherItem := h.readyItem(creator, 0, "o.pdf", otherData, true)
	otherLoc, _ := url.Parse(h.downloadURL(buyer, otherItem.ID))

	with := func(key, value string) string {
		v := u.Query()
		if value == "" {
			v.Del(key)
		} else {
			v.Set(key, value)
		}
		return u.Path + "?" + v.Encode()
	}
	flip := func(s string) string {
		b := []byte(s)
		if b[3] == 'A' {
			b[3] = 'B'
		} else {
			b[3] = 'A'
		}
		return string(b)
	}
	exp, err := strconv.ParseInt(q.Get("exp"), 10, 64)
	require.NoError(t, err)
	later := strconv.FormatInt(exp+3600, 10)
	tests := []struct {
		name   string
		caller user
		target string
		status int
		code   string
	}{
		{"as issued", user{}, loc, 200, ""},
		{"as issued, with the user's token", buyer, loc, 200, ""},
		{"with another user's token", other, loc, 403, "signature_foreign"},
		{"with a token that does not verify", user{token: "garbage"}, loc, 200, ""},
		{"tampered signature", user{}, with("sig", flip(q.Get("sig"))), 403, "signature_invalid"},
		{"later expiry", user{}, with("exp", later), 403, "signature_invalid"},
		{"another user", user{}, with("u", string(other.id)), 403, "signature_invalid"},
		{"anonymous", user{}, with("u", ""), 403, "signature_invalid"},
		{"unknown key", user{}, with("kid", "k9"), 403, "signature_key_unknown"},
		{"no signature", user{}, with("sig", ""), 403, "signature_missing"},
		{"no query", user{}, u.Path, 403, "signature_missing"},
		{"repeated parameter", user{}, loc + "&sig=x", 403, "signature_malformed"},
		{"another object's path", user{}, otherLoc.Path + "?" + u.RawQuery, 403, "signature_invalid"},
		{"another file name", user{}, strings.Replace(loc, "/s.pdf?", "/t.pdf?", 1), 403, "signature_invalid"},
		{"another object's signature", user{}, u.Path + "?" + otherLoc.RawQuery, 403, "signature_invalid"},
		{"traversal in the name", user{}, strings.Replace(loc, "/s.pdf?", "/..%2F..%2Fetc%2Fpasswd?", 1), 404, "not_found"},
		{"traversal in the digest", user{}, strings.Replace(loc, "/cdn/o/", "/cdn/o/..%2F", 1), 404, "not_found"},
		{"not a digest", user{}, "/cdn/o/abc/s.pdf?" + u.RawQuery, 404, "not_found"},
		{"a thumbnail path with an original's signature", user{}, "/cdn/t/" + digest(data) + "/thumbnail.jpg?" + u.RawQuery, 403, "signature_invalid"},
		{"a preview path with an original's signature", user{}, "/cdn/p/" + digest(data) + ".jpg?" + u.RawQuery, 403, "signature_invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := h.fetch(tc.caller, "GET", tc.target, nil)
			require.Equal(t, tc.status, r.status, "body: %s", r.body)
			if tc.code != "" {
				code, _ := r.problem(t)
				require.Equal(t, tc.code, code)
				require.Equal(t, "no-store", r.header.Get("Cache-Control"))
			} else {
				require.Equal(t, data, string(r.body))
			}
		})
	}

	t.Run("expired", func(t *testing.T) {
		h.clock.Advance(content.DefaultURLLifetime - time.Second)
		require.Equal(t, http.StatusOK, h.fetch(user{}, "GET", loc, nil).status)
		h.clock.Advance(2 * time.Second)
		r := h.fetch(user{}, "GET", loc, nil)
		require.Equal(t, http.StatusForbidden, r.status)
		code, _ := r.problem(t)
		require.Equal(t, "signature_expired", code)
	})
}

func TestURLSignerRotation(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	old := content.SigningKey{ID: "old", Secret: bytes.Repeat([]byte{1}, 32)}
	next := content.SigningKey{ID: "new", Secret: bytes.Repeat([]byte{2}, 32)}
	before, err := content.NewURLSigner([]content.SigningKey{old}, time.Minute)
	require.NoError(t, err)
	q, _ := before.Sign("/cdn/o/x/y", "usr_1", now)

	// After rotation the new key signs and the old one still verifies.
	during, err := content.NewURLSigner([]content.SigningKey{next, old}, time.Minute)
	require.NoError(t, err)
	v, _ := url.ParseQuery(q)
	user, err := during.Verify("/cdn/o/x/y", v, now)
	require.NoError(t, err)
	require.Equal(t, strata.ID("usr_1"), user)
	q2, _ := during.Sign("/cdn/o/x/y", "usr_1", now)
	v2, _ := url.ParseQuery(q2)
	require.Equal(t, "new", v2.Get("kid"))

	// Once the old key is retired, its URLs fail.
	after, err := content.NewURLSigner([]content.SigningKey{next}, time.Minute)
	require.NoError(t, err)
	_, err = after.Verify("/cdn/o/x/y", v, now)
	require.Equal(t, "signature_key_unknown", strata.ErrorReason(err))
	_, err = after.Verify("/cdn/o/x/y", v2, now)
	require.NoError(t, err)

	// Public signatures never expire and are stable.
	require.Equal(t, during.SignPublic("/cdn/p/a.jpg"), during.SignPublic("/cdn/p/a.jpg"))
	pv, _ := url.ParseQuery(before.SignPublic("/cdn/p/a.jpg"))
	require.NoError(t, during.VerifyPublic("/cdn/p/a.jpg", pv))
	require.Error(t, during.VerifyPublic("/cdn/p/b.jpg", pv))
	// An expiring signature is not a public one, nor the reverse — even
	// with exp and u added to a public query.
	require.Error(t, during.VerifyPublic("/cdn/o/x/y", v2))
	_, err = during.Verify("/cdn/p/a.jpg", pv, now)
	require.Error(t, err)
	for _, exp := range []string{"never", "", "9999999999"} {
		forged := url.Values{"kid": pv["kid"], "sig": pv["sig"], "exp": {exp}, "u": {""}}
		_, err = during.Verify("/cdn/p/a.jpg", forged, now)
		require.Error(t, err, exp)
	}
	_, err = content.NewURLSigner([]content.SigningKey{old, old}, time.Minute)
	require.Error(t, err, "duplicate key ids")

	for _, specs := range [][]string{{"k1"}, {"k1:!!"}, {"k1:" + strings.Repeat("A", 20)}, {"bad id:" + strings.Repeat("A", 44)}, {"k:" + strings.Repeat("A", 44), "k:" + strings.Repeat("B", 44)}} {
		_, err := content.ParseSigningKeys(specs)
		require.Error(t, err, "%q", specs)
	}
	keys, err := content.ParseSigningKeys([]string{"k1:" + strings.Repeat("A", 44), "k2:" + strings.Repeat("B", 43)})
	require.NoError(t, err)
	require.Len(t, keys, 2)
	require.Len(t, keys[0].Secret, 33)
}

func TestPreviews(t *testing.T) {
	h := newHarness(t)
	creator := h.newUser(strata.RoleCreator, testShards[0])
	stranger := h.newUser(strata.RoleBuyer, testShards[2])
	previews := h.blobs.Namespace("previews")
	put := func(data string) string {
		o, err := previews.Put(context.Background(), strings.NewReader(data), blob.PutOptions{ContentType: "image/jpeg"})
		require.NoError(t, err)
		return o.SHA256
	}
	thumb, blurred := put("thumbnail bytes"), put("blurred bytes")
	withPreviews := func(price int64) item {
		it := h.readyItem(creator, price, "i.pdf", pdfFile(100, uint64(price)+20), true)
		a := content.Asset{Status: content.AssetReady, SHA256: digest(pdfFile(100, uint64(price)+20)), Size: 100, MediaType: "application/pdf",
			Filename: "i.pdf", ThumbnailSHA256: thumb, PreviewSHA256: blurred}
		require.NoError(t, h.store.PutAsset(context.Background(), strata.ID(it.ID), a))
		return it
	}
	free, paid := withPreviews(0), withPreviews(900)
	previewURL := func(id string) string {
		r := h.do(stranger, "GET", "/v1/items/"+id, nil)
		require.Equal(t, http.StatusOK, r.status)
		return r.json(t)["asset"].(map[string]any)["preview_url"].(string)
	}

	t.Run("a free item shows its thumbnail", func(t *testing.T) {
		loc := previewURL(free.ID)
		require.True(t, strings.HasPrefix(loc, "/cdn/p/"+thumb+".jpg?"), loc)
		r := h.fetch(user{}, "GET", loc, nil)
		require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
		require.Equal(t, "thumbnail bytes", string(r.body))
		require.Equal(t, "public, max-age=31536000, immutable", r.header.Get("Cache-Control"))
		require.Equal(t, "image/jpeg", r.header.Get("Content-Type"))
		require.Empty(t, r.header.Get("Content-Disposition"))
		require.Equal(t, loc, previewURL(free.ID), "preview URLs are stable")
	})
	t.Run("a paid item shows the blurred preview", func(t *testing.T) {
		loc := previewURL(paid.ID)
		require.True(t, strings.HasPrefix(loc, "/cdn/p/"+blurred+".jpg?"), loc)
		r := h.fetch(user{}, "GET", loc, nil)
		require.Equal(t, http.StatusOK, r.status)
		require.Equal(t, "blurred bytes", string(r.body))
	})
	t.Run("the thumbnail of a paid item is gated", func(t *testing.T) {
		// Knowing the digest is not enough: public URLs are signed.
		r := h.fetch(user{}, "GET", "/cdn/p/"+thumb+".jpg", nil)
		require.Equal(t, http.StatusForbidden, r.status)
		r = h.do(stranger, "GET", "/v1/items/"+paid.ID+"/download?variant=thumbnail", nil)
		require.Equal(t, http.StatusPaymentRequired, r.status)
		h.ents.grant(stranger.id, strata.ID(paid.ID))
		r = h.do(stranger, "GET", "/v1/items/"+paid.ID+"/download?variant=thumbnail", nil)
		require.Equal(t, http.StatusFound, r.status, "body: %s", r.body)
		loc := r.header.Get("Location")
		require.True(t, strings.HasPrefix(loc, "/cdn/t/"+thumb+"/thumbnail.jpg?"), loc)
		got := h.fetch(user{}, "GET", loc, nil)
		require.Equal(t, http.StatusOK, got.status)
		require.Equal(t, "thumbnail bytes", string(got.body))
	})
	t.Run("an original is not a preview", func(t *testing.T) {
		// A valid public signature over an original's digest still finds
		// nothing: previews live in their own namespace.
		signer, err := content.NewURLSigner([]content.SigningKey{testSigningKey}, time.Minute)
		require.NoError(t, err)
		path := content.PreviewPath(digest(pdfFile(100, 20)))
		r := h.fetch(user{}, "GET", path+"?"+signer.SignPublic(path), nil)
		require.Equal(t, http.StatusNotFound, r.status, "body: %s", r.body)
	})
	t.Run("bad preview paths", func(t *testing.T) {
		for _, p := range []string{"/cdn/p/" + thumb, "/cdn/p/" + thumb + ".png", "/cdn/p/..%2F" + thumb + ".jpg", "/cdn/p/x.jpg"} {
			r := h.fetch(user{}, "GET", p, nil)
			require.Equal(t, http.StatusNotFound, r.status, p)
		}
	})
}

func TestCDNCache(t *testing.T) {
	h := newHarness(t)
	creator := h.newUser(strata.RoleCreator, testShards[0])
	small, large := pdfFile(1000, 31), pdfFile(100<<10, 32)
	smallLoc := h.downloadURL(creator, h.readyItem(creator, 0, "s.pdf", small, true).ID)
	largeLoc := h.downloadURL(creator, h.readyItem(creator, 0, "l.pdf", large, true).ID)
	for _, loc := range []string{smallLoc, largeLoc} {
		require.Equal(t, http.StatusOK, h.fetch(user{}, "GET", loc, nil).status)
	}
	// Remove both files from storage: the small one is served from memory,
	// the large one streamed and so gone.
	for _, data := range []string{small, large} {
		key, err := blob.Key(digest(data))
		require.NoError(t, err)
		require.NoError(t, os.Remove(filepath.Join(h.blobDir, filepath.FromSlash(key))))
	}
	r := h.fetch(user{}, "GET", smallLoc, nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, small, string(r.body))
	r = h.fetch(user{}, "GET", smallLoc, map[string]string{"Range": "bytes=2-4"})
	require.Equal(t, http.StatusPartialContent, r.status)
	require.Equal(t, small[2:5], string(r.body))
	// The large one was described, not kept: it is sent from its file,
	// which is gone.
	r = h.fetch(user{}, "GET", largeLoc, nil)
	require.Equal(t, http.StatusNotFound, r.status, "body: %.100s", r.body)
	require.Equal(t, "no-store", r.header.Get("Cache-Control"))
}

func TestUploadFilenames(t *testing.T) {
	h := newHarness(t)
	creator := h.newUser(strata.RoleCreator, testShards[0])
	it := h.create(creator, itemBody("names", 0))
	tests := []struct {
		name   string
		query  string
		header string
		status int
	}{
		{"plain", "?filename=report.pdf", "", http.StatusAccepted},
		{"from Content-Disposition", "", `attachment; filename="from header.pdf"`, http.StatusAccepted},
		{"traversal", "?filename=" + url.QueryEscape("../../etc/passwd"), "", http.StatusBadRequest},
		{"traversal in the header", "", `attachment; filename="../x.pdf"`, http.StatusBadRequest},
		{"backslash", "?filename=" + url.QueryEscape(`..\x.pdf`), "", http.StatusBadRequest},
		{"dot dot", "?filename=..", "", http.StatusBadRequest},
		{"control character", "?filename=a%0Ab.pdf", "", http.StatusBadRequest},
		{"too long", "?filename=" + strings.Repeat("a", 256), "", http.StatusBadRequest},
		{"malformed header", "", `attachment; filename="unterminated`, http.StatusBadRequest},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := h.putFile(creator, it.ID, tc.query, tc.header, pdfFile(50, uint64(i)))
			require.Equal(t, tc.status, r.status, "body: %s", r.body)
			if tc.status == http.StatusBadRequest {
				_, fields := r.problem(t)
				require.NotEmpty(t, fields)
			}
		})
	}
}

// putFile PUTs data as the item's file with an optional query and
// Content-Disposition.
func (h *harness) putFile(u user, id, query, disposition, data string) response {
	h.t.Helper()
	req := httptest.NewRequest("PUT", "/v1/items/"+id+"/file"+query, strings.NewReader(data))
	req.Header.Set("Authorization", "Bearer "+u.token)
	if disposition != "" {
		req.Header.Set("Content-Disposition", disposition)
	}
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

func TestDownloadServesTheLastReadyFile(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	creator := h.newUser(strata.RoleCreator, testShards[0])
	buyer := h.newUser(strata.RoleBuyer, testShards[2])
	first := pngFile(t, 40, 30)
	it := h.readyItem(creator, 250, "v1.png", first, true)
	h.ents.grant(buyer.id, strata.ID(it.ID))
	download := func() string {
		t.Helper()
		r := h.fetch(user{}, "GET", h.downloadURL(buyer, it.ID), nil)
		require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
		return string(r.body)
	}
	preview := func() string {
		r := h.do(buyer, "GET", "/v1/items/"+it.ID, nil)
		require.Equal(t, http.StatusOK, r.status)
		p, _ := r.json(t)["asset"].(map[string]any)["preview_url"].(string)
		return p
	}
	require.Equal(t, first, download())
	firstPreview := preview()
	require.NotEmpty(t, firstPreview)

	// A replacement is processing: buyers still get the first file, and
	// the sweep keeps it.
	broken := bombPNG(100_000, 100_000)
	r := h.do(creator, "PUT", "/v1/items/"+it.ID+"/file?filename=v2.png", broken)
	require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
	require.Equal(t, first, download())
	require.Equal(t, firstPreview, preview())
	h.ageBlobs(time.Now().Add(-2 * content.BlobGrace))
	_, err := h.svc.Cleanup(ctx)
	require.NoError(t, err)
	require.Equal(t, first, download(), "the served file survives the sweep")

	// The replacement fails: still the first file.
	rows := h.events(it.ID, content.SubjectAssetUploaded)
	require.NoError(t, h.process(rows[len(rows)-1]))
	require.Equal(t, "failed", h.asset(creator, it.ID)["status"])
	require.Equal(t, first, download())

	// A good replacement takes over once ready.
	second := pngFile(t, 50, 20)
	r = h.do(creator, "PUT", "/v1/items/"+it.ID+"/file?filename=v3.png", second)
	require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
	rows = h.events(it.ID, content.SubjectAssetUploaded)
	require.NoError(t, h.process(rows[len(rows)-1]))
	require.Equal(t, second, download())
	require.NotEqual(t, firstPreview, preview())

	// An item that never had a ready file has nothing to serve.
	fresh := h.create(creator, itemBody("fresh", 0))
	h.upload(creator, fresh.ID, pdfFile(100, 77))
	r = h.do(creator, "GET", "/v1/items/"+fresh.ID+"/download", nil)
	require.Equal(t, http.StatusConflict, r.status)
}
