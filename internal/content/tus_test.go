package content_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/content"
	"github.com/stratadev/strata/internal/httpx"
	"github.com/stretchr/testify/require"
)

// hdr is the headers of a tus request: Tus-Resumable: 1.0.0 unless set
// (to "" to leave it out).
type hdr map[string]string

// tus sends a request to handler as u.
func (h *harness) tus(handler http.Handler, u user, method, path string, headers hdr, body io.Reader) response {
	h.t.Helper()
	req := httptest.NewRequest(method, path, body)
	req.Header.Set("Tus-Resumable", "1.0.0")
	for k, v := range headers {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	if u.token != "" {
		req.Header.Set("Authorization", "Bearer "+u.token)
	}
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

// metadata encodes Upload-Metadata from key, value pairs.
func metadata(kv ...string) string {
	var pairs []string
	for i := 0; i+1 < len(kv); i += 2 {
		pairs = append(pairs, kv[i]+" "+base64.StdEncoding.EncodeToString([]byte(kv[i+1])))
	}
	return strings.Join(pairs, ",")
}

// createUpload starts an upload of length bytes for item and returns its
// path.
func (h *harness) createUpload(handler http.Handler, u user, item string, length int, filename string) string {
	h.t.Helper()
	r := h.tus(handler, u, "POST", "/v1/uploads/", hdr{"Upload-Length": strconv.Itoa(length),
		"Upload-Metadata": metadata("item_id", item, "filename", filename)}, nil)
	require.Equal(h.t, http.StatusCreated, r.status, "body: %s", r.body)
	require.Equal(h.t, "0", r.header.Get("Upload-Offset"))
	loc := r.header.Get("Location")
	require.True(h.t, strings.HasPrefix(loc, "/v1/uploads/upl_"), loc)
	return loc
}

// patch sends body at offset.
func (h *harness) patch(handler http.Handler, u user, loc string, offset int, body []byte, extra ...string) response {
	h.t.Helper()
	headers := hdr{"Upload-Offset": strconv.Itoa(offset), "Content-Type": "application/offset+octet-stream"}
	for i := 0; i+1 < len(extra); i += 2 {
		headers[extra[i]] = extra[i+1]
	}
	return h.tus(handler, u, "PATCH", loc, headers, bytes.NewReader(body))
}

// offset HEADs an upload, requires 200 and returns its offset.
func (h *harness) offset(handler http.Handler, u user, loc string) int {
	h.t.Helper()
	r := h.tus(handler, u, "HEAD", loc, nil, nil)
	require.Equal(h.t, http.StatusOK, r.status, "body: %s", r.body)
	n, err := strconv.Atoi(r.header.Get("Upload-Offset"))
	require.NoError(h.t, err)
	return n
}

// tusFile is n bytes that sniff as PNG.
func tusFile(n int, seed uint64) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	copy(b, "\x89PNG\r\n\x1a\n")
	return b
}

// parts lists the part files of an upload in the blob folder.
func (h *harness) parts(loc string) []string {
	h.t.Helper()
	var out []string
	dir := filepath.Join(h.blobDir, "uploads", strings.TrimPrefix(loc, "/v1/uploads/"))
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err == nil && !d.IsDir() && !strings.HasSuffix(path, ".attrs") {
			out = append(out, path)
		}
		return err
	})
	require.NoError(h.t, err)
	return out
}

// requireAttached requires the item's asset to be file, processing, named
// filename, and the blob stored.
func (h *harness) requireAttached(item string, file []byte, filename string) {
	h.t.Helper()
	it, err := h.store.ItemByID(context.Background(), strata.ID(item))
	require.NoError(h.t, err)
	require.NotNil(h.t, it.Asset)
	sum := sha256.Sum256(file)
	require.Equal(h.t, content.AssetProcessing, it.Asset.Status)
	require.Equal(h.t, hex.EncodeToString(sum[:]), it.Asset.SHA256)
	require.EqualValues(h.t, len(file), it.Asset.Size)
	require.Equal(h.t, "image/png", it.Asset.MediaType)
	require.Equal(h.t, filename, it.Asset.Filename)
	rc, _, err := h.blobs.Open(context.Background(), it.Asset.SHA256)
	require.NoError(h.t, err)
	defer rc.Close()
	got, err := io.ReadAll(rc)
	require.NoError(h.t, err)
	require.Equal(h.t, file, got)
	require.Len(h.t, h.events(item, content.SubjectAssetUploaded), 1)
}

func TestTusOptions(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, path := range []string{"/v1/uploads/", "/v1/uploads/upl_06c3y8k2x0001m3b7q4w9r2e5t"} {
		t.Run(path, func(t *testing.T) {
			r := h.tus(h.handler, user{}, "OPTIONS", path, hdr{"Tus-Resumable": ""}, nil)
			require.Equal(t, http.StatusNoContent, r.status)
			require.Equal(t, "1.0.0", r.header.Get("Tus-Resumable"))
			require.Equal(t, "1.0.0", r.header.Get("Tus-Version"))
			require.Equal(t, "creation,creation-with-upload,termination,checksum,expiration", r.header.Get("Tus-Extension"))
			require.Equal(t, strconv.Itoa(testUploadMax), r.header.Get("Tus-Max-Size"))
			require.Equal(t, "sha1,sha256,md5", r.header.Get("Tus-Checksum-Algorithm"))
		})
	}
}

func TestTusVersionRequired(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.newUser(strata.RoleCreator, testShards[0])
	it := h.create(c, itemBody("Versioned", 100))
	loc := h.createUpload(h.handler, c, it.ID, 1000, "")
	for _, version := range []string{"", "0.2.2", "1.0"} {
		for _, method := range []string{"POST", "HEAD", "PATCH", "DELETE"} {
			t.Run(method+" "+version, func(t *testing.T) {
				path := loc
				if method == "POST" {
					path = "/v1/uploads/"
				}
				r := h.tus(h.handler, c, method, path, hdr{"Tus-Resumable": version, "Upload-Length": "10",
					"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}, strings.NewReader("x"))
				require.Equal(t, http.StatusPreconditionFailed, r.status)
				require.Equal(t, "1.0.0", r.header.Get("Tus-Version"))
				require.Equal(t, "1.0.0", r.header.Get("Tus-Resumable"))
				code, _ := r.problem(t)
				require.Equal(t, "tus_version_unsupported", code)
			})
		}
	}
	require.Zero(t, h.offset(h.handler, c, loc))
}

func TestTusCreateRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.newUser(strata.RoleCreator, testShards[1])
	other := h.newUser(strata.RoleCreator, testShards[2])
	buyer := h.newUser(strata.RoleBuyer, testShards[0])
	it := h.create(c, itemBody("Mine", 100))
	unknown := string(strata.NewID(content.PrefixItem, testShards[1], h.clock.Now()))
	meta := metadata("item_id", it.ID, "filename", "a.png")
	tests := []struct {
		name    string
		who     user
		headers hdr
		status  int
		code    string
		field   string
	}{
		{"no Upload-Length", c, hdr{"Upload-Metadata": meta}, 400, "validation_failed", "Upload-Length"},
		{"deferred length", c, hdr{"Upload-Defer-Length": "1", "Upload-Metadata": meta}, 400, "validation_failed", "Upload-Defer-Length"},
		{"negative length", c, hdr{"Upload-Length": "-1", "Upload-Metadata": meta}, 400, "validation_failed", "Upload-Length"},
		{"length not a number", c, hdr{"Upload-Length": "12ab", "Upload-Metadata": meta}, 400, "validation_failed", "Upload-Length"},
		{"over the limit", c, hdr{"Upload-Length": strconv.Itoa(testUploadMax + 1), "Upload-Metadata": meta}, 413, "body_too_large", ""},
		{"no metadata", c, hdr{"Upload-Length": "10"}, 400, "validation_failed", "item_id"},
		{"no item_id", c, hdr{"Upload-Length": "10", "Upload-Metadata": metadata("filename", "a.png")}, 400, "validation_failed", "item_id"},
		{"item_id not an item", c, hdr{"Upload-Length": "10", "Upload-Metadata": metadata("item_id", "usr_x")}, 400, "validation_failed", "item_id"},
		{"bad base64", c, hdr{"Upload-Length": "10", "Upload-Metadata": "item_id " + it.ID}, 400, "validation_failed", "Upload-Metadata"},
		{"key twice", c, hdr{"Upload-Length": "10", "Upload-Metadata": meta + "," + meta}, 400, "validation_failed", "Upload-Metadata"},
		{"path traversal", c, hdr{"Upload-Length": "10", "Upload-Metadata": metadata("item_id", it.ID, "filename", "../../etc/passwd")}, 400, "validation_failed", "filename"},
		{"a path", c, hdr{"Upload-Length": "10", "Upload-Metadata": metadata("item_id", it.ID, "filename", "a/b")}, 400, "validation_failed", "filename"},
		{"metadata too long", c, hdr{"Upload-Length": "10", "Upload-Metadata": meta + "," + metadata("x", strings.Repeat("y", 4096))}, 400, "validation_failed", "Upload-Metadata"},
		{"another creator's item", other, hdr{"Upload-Length": "10", "Upload-Metadata": meta}, 403, "not_owner", ""},
		{"a buyer", buyer, hdr{"Upload-Length": "10", "Upload-Metadata": meta}, 403, "not_owner", ""},
		{"unknown item", c, hdr{"Upload-Length": "10", "Upload-Metadata": metadata("item_id", unknown)}, 404, "item_not_found", ""},
		{"anonymous", user{}, hdr{"Upload-Length": "10", "Upload-Metadata": meta}, 401, "token_missing", ""},
		{"empty file sniffs as text", c, hdr{"Upload-Length": "0", "Upload-Metadata": meta}, 415, "unsupported_media_type", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := h.tus(h.handler, tc.who, "POST", "/v1/uploads/", tc.headers, nil)
			require.Equal(t, tc.status, r.status, "body: %s", r.body)
			require.Equal(t, "1.0.0", r.header.Get("Tus-Resumable"))
			code, fields := r.problem(t)
			require.Equal(t, tc.code, code)
			if tc.field != "" {
				require.Equal(t, []string{tc.field}, fields)
			}
		})
	}
	require.Nil(t, h.asset(c, it.ID))
	_, err := os.Stat(filepath.Join(h.blobDir, "uploads"))
	require.ErrorIs(t, err, fs.ErrNotExist, "no refused upload stored anything")
}

func TestTusUploadInThreePatches(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.newUser(strata.RoleCreator, testShards[2])
	it := h.create(c, itemBody("Sunset", 500))
	file := tusFile(2500, 1)
	loc := h.createUpload(h.handler, c, it.ID, len(file), "sunset.png")

	r := h.tus(h.handler, c, "HEAD", loc, nil, nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, "0", r.header.Get("Upload-Offset"))
	require.Equal(t, "2500", r.header.Get("Upload-Length"))
	require.Equal(t, metadata("item_id", it.ID, "filename", "sunset.png"), r.header.Get("Upload-Metadata"))
	require.Equal(t, "no-store", r.header.Get("Cache-Control"))
	require.Equal(t, "1.0.0", r.header.Get("Tus-Resumable"))
	expires, err := http.ParseTime(r.header.Get("Upload-Expires"))
	require.NoError(t, err)
	require.WithinDuration(t, h.clock.Now().Add(content.DefaultUploadExpiry), expires, time.Second)

	for i, cut := range [][2]int{{0, 1000}, {1000, 1800}, {1800, 2500}} {
		r := h.patch(h.handler, c, loc, cut[0], file[cut[0]:cut[1]])
		require.Equal(t, http.StatusNoContent, r.status, "patch %d: %s", i, r.body)
		require.Equal(t, strconv.Itoa(cut[1]), r.header.Get("Upload-Offset"))
		require.Equal(t, r.header.Get("Upload-Expires"), expires.UTC().Format(http.TimeFormat))
		if cut[1] < len(file) {
			require.Equal(t, cut[1], h.offset(h.handler, c, loc))
			require.Len(t, h.parts(loc), i+1)
		}
	}
	h.requireAttached(it.ID, file, "sunset.png")
	require.Empty(t, h.parts(loc), "the parts go once the file is attached")
	require.Equal(t, len(file), h.offset(h.handler, c, loc))

	// An empty PATCH at the end changes nothing; one byte more is too many.
	r = h.patch(h.handler, c, loc, len(file), nil)
	require.Equal(t, http.StatusNoContent, r.status, "body: %s", r.body)
	r = h.patch(h.handler, c, loc, len(file), []byte("x"))
	require.Equal(t, http.StatusRequestEntityTooLarge, r.status, "body: %s", r.body)
	require.Len(t, h.events(it.ID, content.SubjectAssetUploaded), 1)
}

func TestTusPatchRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.newUser(strata.RoleCreator, testShards[0])
	other := h.newUser(strata.RoleCreator, testShards[1])
	admin := h.newUser(strata.RoleAdmin, testShards[2])
	it := h.create(c, itemBody("Refusals", 100))
	file := tusFile(2000, 2)
	loc := h.createUpload(h.handler, c, it.ID, len(file), "")
	require.Equal(t, http.StatusNoContent, h.patch(h.handler, c, loc, 0, file[:600]).status)
	sha256sum := func(b []byte) string { s := sha256.Sum256(b); return base64.StdEncoding.EncodeToString(s[:]) }
	next := file[600:900]
	chunk := "application/offset+octet-stream"
	tests := []struct {
		name    string
		who     user
		headers hdr
		body    []byte
		status  int
		code    string
	}{
		{"offset behind", c, hdr{"Upload-Offset": "0", "Content-Type": chunk}, next, 409, "offset_mismatch"},
		{"offset ahead", c, hdr{"Upload-Offset": "900", "Content-Type": chunk}, next, 409, "offset_mismatch"},
		{"no offset", c, hdr{"Content-Type": chunk}, next, 400, "validation_failed"},
		{"offset not a number", c, hdr{"Upload-Offset": "+600", "Content-Type": chunk}, next, 400, "validation_failed"},
		{"wrong content type", c, hdr{"Upload-Offset": "600", "Content-Type": "application/octet-stream"}, next, 415, "unsupported_media_type"},
		{"no content type", c, hdr{"Upload-Offset": "600"}, next, 415, "unsupported_media_type"},
		{"unknown checksum algorithm", c, hdr{"Upload-Offset": "600", "Content-Type": chunk, "Upload-Checksum": "crc32 AAAAAA=="}, next, 400, "validation_failed"},
		{"checksum not base64", c, hdr{"Upload-Offset": "600", "Content-Type": chunk, "Upload-Checksum": "sha256 !!"}, next, 400, "validation_failed"},
		{"checksum mismatch", c, hdr{"Upload-Offset": "600", "Content-Type": chunk, "Upload-Checksum": "sha256 " + sha256sum(file[:300])}, next, 460, "checksum_mismatch"},
		{"past the length", c, hdr{"Upload-Offset": "600", "Content-Type": chunk}, append(file[600:], 'x'), 413, "body_too_large"},
		{"another user", other, hdr{"Upload-Offset": "600", "Content-Type": chunk}, next, 404, "upload_not_found"},
		{"anonymous", user{}, hdr{"Upload-Offset": "600", "Content-Type": chunk}, next, 401, "token_missing"},
		{"malformed id", c, hdr{"Upload-Offset": "600", "Content-Type": chunk}, next, 404, "upload_not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := loc
			if tc.name == "malformed id" {
				path = "/v1/uploads/" + it.ID
			}
			r := h.tus(h.handler, tc.who, "PATCH", path, tc.headers, bytes.NewReader(tc.body))
			require.Equal(t, tc.status, r.status, "body: %s", r.body)
			require.Equal(t, "1.0.0", r.header.Get("Tus-Resumable"))
			code, _ := r.problem(t)
			require.Equal(t, tc.code, code)
			if tc.status == 460 {
				var p httpx.Problem
				require.NoError(t, json.Unmarshal(r.body, &p))
				require.Equal(t, "Checksum Mismatch", p.Title)
				require.Equal(t, 460, p.Status)
			}
			require.Equal(t, 600, h.offset(h.handler, c, loc), "nothing stored")
			require.Len(t, h.parts(loc), 1, "no part left behind")
		})
	}

	// HEAD, PATCH and DELETE by another user find nothing; an admin sees it.
	for _, method := range []string{"HEAD", "DELETE"} {
		r := h.tus(h.handler, other, method, loc, nil, nil)
		require.Equal(t, http.StatusNotFound, r.status, method)
	}
	require.Equal(t, 600, h.offset(h.handler, admin, loc))
	r := h.patch(h.handler, admin, loc, 600, file[600:])
	require.Equal(t, http.StatusNoContent, r.status, "body: %s", r.body)
	h.requireAttached(it.ID, file, "")
}

func TestTusChecksums(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.newUser(strata.RoleCreator, testShards[1])
	digest := func(alg string, b []byte) string {
		var s []byte
		switch alg {
		case "sha1":
			d := sha1.Sum(b)
			s = d[:]
		case "sha256":
			d := sha256.Sum256(b)
			s = d[:]
		case "md5":
			d := md5.Sum(b)
			s = d[:]
		}
		return alg + " " + base64.StdEncoding.EncodeToString(s)
	}
	for _, alg := range []string{"sha1", "sha256", "md5"} {
		t.Run(alg, func(t *testing.T) {
			it := h.create(c, itemBody("Checked "+alg, 100))
			file := tusFile(1500, 3)
			loc := h.createUpload(h.handler, c, it.ID, len(file), "")

			r := h.patch(h.handler, c, loc, 0, file[:700], "Upload-Checksum", digest(alg, file[:699]))
			require.Equal(t, statusChecksumMismatch, r.status, "body: %s", r.body)
			require.Zero(t, h.offset(h.handler, c, loc))
			require.Empty(t, h.parts(loc))

			r = h.patch(h.handler, c, loc, 0, file[:700], "Upload-Checksum", digest(alg, file[:700]))
			require.Equal(t, http.StatusNoContent, r.status, "body: %s", r.body)
			r = h.patch(h.handler, c, loc, 700, file[700:], "Upload-Checksum", digest(alg, file[700:]))
			require.Equal(t, http.StatusNoContent, r.status, "body: %s", r.body)
			h.requireAttached(it.ID, file, "")
		})
	}
}

const statusChecksumMismatch = 460

func TestTusChunkLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n := h.node(tusConfig(1000), nil)
	c := h.newUser(strata.RoleCreator, testShards[0])
	it := h.create(c, itemBody("Chunked", 100))
	file := tusFile(1800, 4)
	loc := h.createUpload(n.handler, c, it.ID, len(file), "")

	r := h.patch(n.handler, c, loc, 0, file[:1001])
	require.Equal(t, http.StatusRequestEntityTooLarge, r.status, "body: %s", r.body)
	code, _ := r.problem(t)
	require.Equal(t, "body_too_large", code)
	require.Zero(t, h.offset(n.handler, c, loc))
	require.Empty(t, h.parts(loc))

	require.Equal(t, http.StatusNoContent, h.patch(n.handler, c, loc, 0, file[:1000]).status)
	require.Equal(t, http.StatusNoContent, h.patch(n.handler, c, loc, 1000, file[1000:]).status)
	h.requireAttached(it.ID, file, "")
}

func TestTusRefusesTypeEarly(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.newUser(strata.RoleCreator, testShards[2])
	script := []byte("#!/bin/sh\n" + strings.Repeat("echo hello\n", 100))
	tests := []struct {
		name    string
		length  int
		first   []byte
		refused bool
	}{
		{"first part of 512 bytes or more", len(script), script[:600], true},
		{"the whole small file", 20, script[:20], true},
		{"a short first part is not judged yet", len(script), script[:100], false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			it := h.create(c, itemBody("Script", 100))
			loc := h.createUpload(h.handler, c, it.ID, tc.length, "")
			r := h.patch(h.handler, c, loc, 0, tc.first)
			if !tc.refused {
				require.Equal(t, http.StatusNoContent, r.status, "body: %s", r.body)
				// The assembled file is judged at the end all the same.
				r = h.patch(h.handler, c, loc, 100, script[100:])
			}
			require.Equal(t, http.StatusUnsupportedMediaType, r.status, "body: %s", r.body)
			code, _ := r.problem(t)
			require.Equal(t, "unsupported_media_type", code)
			require.Empty(t, h.parts(loc))
			require.Nil(t, h.asset(c, it.ID))
			if tc.refused {
				require.Zero(t, h.offset(h.handler, c, loc))
			} else {
				// Refused for good at the end: the upload is gone.
				require.Equal(t, http.StatusNotFound, h.tus(h.handler, c, "HEAD", loc, nil, nil).status)
			}
		})
	}
}

func TestTusCreationWithUpload(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.newUser(strata.RoleCreator, testShards[1])
	file := tusFile(3000, 5)
	create := func(item string, body []byte, extra ...string) response {
		headers := hdr{"Upload-Length": strconv.Itoa(len(file)), "Upload-Metadata": metadata("item_id", item, "filename", "whole.png"),
			"Content-Type": "application/offset+octet-stream"}
		for i := 0; i+1 < len(extra); i += 2 {
			headers[extra[i]] = extra[i+1]
		}
		return h.tus(h.handler, c, "POST", "/v1/uploads/", headers, bytes.NewReader(body))
	}

	it := h.create(c, itemBody("Whole", 100))
	r := create(it.ID, file)
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	require.Equal(t, strconv.Itoa(len(file)), r.header.Get("Upload-Offset"))
	h.requireAttached(it.ID, file, "whole.png")

	it = h.create(c, itemBody("Half", 100))
	r = create(it.ID, file[:1200])
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	require.Equal(t, "1200", r.header.Get("Upload-Offset"))
	loc := r.header.Get("Location")
	require.Equal(t, 1200, h.offset(h.handler, c, loc))

	// A mismatch keeps the upload, empty, at its Location.
	it = h.create(c, itemBody("Mismatch", 100))
	r = create(it.ID, file[:1200], "Upload-Checksum", "sha256 "+base64.StdEncoding.EncodeToString(make([]byte, 32)))
	require.Equal(t, statusChecksumMismatch, r.status, "body: %s", r.body)
	require.Zero(t, h.offset(h.handler, c, r.header.Get("Location")))
}

// cutReader yields the bytes of r up to n, then fails as a client that
// went away.
type cutReader struct {
	r io.Reader
	n int
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.n == 0 {
		return 0, errors.New("connection reset by peer")
	}
	if len(p) > c.n {
		p = p[:c.n]
	}
	k, err := c.r.Read(p)
	c.n -= k
	return k, err
}

func TestTusInterruptedPatch(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.newUser(strata.RoleCreator, testShards[0])
	it := h.create(c, itemBody("Interrupted", 100))
	file := tusFile(5000, 6)
	loc := h.createUpload(h.handler, c, it.ID, len(file), "cut.png")
	chunk := hdr{"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}

	// Without a checksum the bytes received are kept.
	r := h.tus(h.handler, c, "PATCH", loc, chunk, &cutReader{r: bytes.NewReader(file), n: 1234})
	require.Equal(t, http.StatusNoContent, r.status, "body: %s", r.body)
	require.Equal(t, "1234", r.header.Get("Upload-Offset"))
	require.Equal(t, 1234, h.offset(h.handler, c, loc))

	// With one they cannot be verified, so they go.
	sum := sha256.Sum256(file[1234:])
	chunk = hdr{"Upload-Offset": "1234", "Content-Type": "application/offset+octet-stream",
		"Upload-Checksum": "sha256 " + base64.StdEncoding.EncodeToString(sum[:])}
	r = h.tus(h.handler, c, "PATCH", loc, chunk, &cutReader{r: bytes.NewReader(file[1234:]), n: 2000})
	require.Equal(t, http.StatusBadRequest, r.status, "body: %s", r.body)
	code, _ := r.problem(t)
	require.Equal(t, "unreadable_body", code)
	require.Equal(t, 1234, h.offset(h.handler, c, loc))
	require.Len(t, h.parts(loc), 1)

	// The lease was released: the client resumes at once.
	r = h.patch(h.handler, c, loc, 1234, file[1234:])
	require.Equal(t, http.StatusNoContent, r.status, "body: %s", r.body)
	h.requireAttached(it.ID, file, "cut.png")
}

func TestTusTermination(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.newUser(strata.RoleCreator, testShards[2])
	admin := h.newUser(strata.RoleAdmin, testShards[0])
	for _, who := range []user{c, admin} {
		it := h.create(c, itemBody("Abandoned", 100))
		file := tusFile(3000, 10)
		loc := h.createUpload(h.handler, c, it.ID, len(file), "")
		require.Equal(t, http.StatusNoContent, h.patch(h.handler, c, loc, 0, file[:1000]).status)
		require.Equal(t, http.StatusNoContent, h.patch(h.handler, c, loc, 1000, file[1000:2000]).status)
		require.Len(t, h.parts(loc), 2)

		r := h.tus(h.handler, who, "DELETE", loc, nil, nil)
		require.Equal(t, http.StatusNoContent, r.status, "body: %s", r.body)
		require.Equal(t, "1.0.0", r.header.Get("Tus-Resumable"))
		require.Empty(t, h.parts(loc))
		for _, method := range []string{"HEAD", "DELETE"} {
			r = h.tus(h.handler, c, method, loc, nil, nil)
			require.Equal(t, http.StatusNotFound, r.status, method)
		}
		require.Equal(t, http.StatusNotFound, h.patch(h.handler, c, loc, 2000, file[2000:]).status)
		require.Nil(t, h.asset(c, it.ID))
	}
}
