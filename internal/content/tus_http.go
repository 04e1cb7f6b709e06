package content

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/httpx"
)

// The tus protocol as Strata speaks it.
const (
	tusVersion    = "1.0.0"
	tusExtensions = "creation,creation-with-upload,termination,checksum,expiration"
	tusChecksums  = "sha1,sha256,md5"
	// contentTypeChunk is the media type of a PATCH body.
	contentTypeChunk = "application/offset+octet-stream"
	// statusChecksumMismatch is tus's status for a body that does not
	// match its Upload-Checksum.
	statusChecksumMismatch = 460
	uploadsPath            = "/v1/uploads/"
)

// tusProtocol marks every answer of a tus route with Tus-Resumable and
// refuses, with 412 and Tus-Version, a request (but OPTIONS) that does not
// speak tus 1.0.0.
func tusProtocol(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Tus-Resumable", tusVersion)
		if r.Method != http.MethodOptions && r.Header.Get("Tus-Resumable") != tusVersion {
			w.Header().Set("Tus-Version", tusVersion)
			writeStatusProblem(w, r, http.StatusPreconditionFailed, &strata.Error{Code: strata.CodeInvalid,
				Reason: "tus_version_unsupported", Message: "this server speaks tus 1.0.0: send Tus-Resumable: 1.0.0"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// writeTusError writes err as problem+json: through httpx.WriteError,
// but for the statuses tus adds, which no strata code maps to.
func writeTusError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, errUploadExpired):
		writeStatusProblem(w, r, http.StatusGone, errUploadExpired)
	case errors.Is(err, errUploadLocked):
		writeStatusProblem(w, r, http.StatusLocked, errUploadLocked)
	case errors.Is(err, errChecksumMismatch):
		writeStatusProblem(w, r, statusChecksumMismatch, errChecksumMismatch)
	default:
		httpx.WriteError(w, r, err)
	}
}

// writeStatusProblem writes e as httpx.WriteError would, with status in
// place of the one its code maps to.
func writeStatusProblem(w http.ResponseWriter, r *http.Request, status int, e *strata.Error) {
	title := http.StatusText(status)
	if status == statusChecksumMismatch {
		title = "Checksum Mismatch"
	}
	p := httpx.Problem{Type: httpx.ProblemTypeBase + e.Reason, Title: title, Status: status, Detail: e.Message,
		Code: e.Reason, RequestID: httpx.RequestIDFrom(r.Context())}
	body, err := json.Marshal(p)
	if err != nil { // cannot happen: Problem holds only strings and ints
		panic(err)
	}
	h := w.Header()
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64((e.RetryAfter+time.Second-1)/time.Second), 10))
	}
	h.Set("Content-Type", httpx.ContentTypeProblem)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// uploadID reads the {id} of the path; a malformed id names no upload.
func uploadID(r *http.Request) (strata.ID, error) {
	id, err := strata.ParseID(r.PathValue("id"), PrefixUpload)
	if err != nil {
		return "", errUploadNotFound
	}
	return id, nil
}

// setUploadHeaders describes u in the tus headers of an answer.
func setUploadHeaders(h http.Header, u *Upload) {
	h.Set("Upload-Offset", strconv.FormatInt(u.Offset, 10))
	h.Set("Upload-Expires", u.ExpiresAt.UTC().Format(http.TimeFormat))
}

// handleUploadOptions serves OPTIONS on the tus routes: what the server
// supports, to anyone.
func handleUploadOptions(s *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Tus-Version", tusVersion)
		h.Set("Tus-Extension", tusExtensions)
		h.Set("Tus-Max-Size", strconv.FormatInt(s.cfg.UploadMaxBytes, 10))
		h.Set("Tus-Checksum-Algorithm", tusChecksums)
		w.WriteHeader(http.StatusNoContent)
	})
}

// handleUploadCreate serves POST /v1/uploads/ (tus creation): the file's
// length in Upload-Length, the item and file name in Upload-Metadata
// (item_id, filename). A body of type application/offset+octet-stream is
// the first PATCH (creation-with-upload).
func handleUploadCreate(s *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != uploadsPath {
			// The pattern "POST /v1/uploads/" matches the whole subtree.
			httpx.WriteError(w, r, &strata.Error{Code: strata.CodeNotFound, Reason: "route_not_found", Message: "no route matches the request path"})
			return
		}
		in, err := parseCreation(r.Header)
		if err != nil {
			writeTusError(w, r, err)
			return
		}
		withBody := isChunk(r.Header.Get("Content-Type"))
		var sum *UploadChecksum
		if withBody {
			if sum, err = parseChecksum(r.Header.Get("Upload-Checksum")); err != nil {
				writeTusError(w, r, err)
				return
			}
		}
		u, err := s.CreateUpload(r.Context(), in)
		if err != nil {
			writeTusError(w, r, err)
			return
		}
		h := w.Header()
		h.Set("Location", uploadsPath+string(u.ID))
		setUploadHeaders(h, u)
		if withBody && u.Length > 0 {
			// Created whatever becomes of the body: the answer keeps
			// Location, so the client may resume from HEAD.
			if u, err = s.WriteUpload(r.Context(), u.ID, 0, sum, r.Body); err != nil {
				h.Del("Upload-Offset") // HEAD tells
				writeTusError(w, r, err)
				return
			}
			setUploadHeaders(h, u)
		}
		w.WriteHeader(http.StatusCreated)
	})
}

// handleUploadHead serves HEAD /v1/uploads/{id}: the upload's offset.
func handleUploadHead(s *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		id, err := uploadID(r)
		if err != nil {
			writeTusError(w, r, err)
			return
		}
		u, err := s.UploadInfo(r.Context(), id)
		if err != nil {
			writeTusError(w, r, err)
			return
		}
		setUploadHeaders(h, u)
		h.Set("Upload-Length", strconv.FormatInt(u.Length, 10))
		if u.Metadata != "" {
			h.Set("Upload-Metadata", u.Metadata)
		}
		w.WriteHeader(http.StatusOK)
	})
}

// handleUploadPatch serves PATCH /v1/uploads/{id}: bytes at Upload-Offset.
func handleUploadPatch(s *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := uploadID(r)
		if err != nil {
			writeTusError(w, r, err)
			return
		}
		if !isChunk(r.Header.Get("Content-Type")) {
			writeTusError(w, r, strata.Errorf(strata.CodeUnsupported, "unsupported_media_type",
				"the body of a PATCH must be %s", contentTypeChunk))
			return
		}
		offset, err := parseOffset(r.Header.Get("Upload-Offset"))
		if err != nil {
			writeTusError(w, r, err)
			return
		}
		sum, err := parseChecksum(r.Header.Get("Upload-Checksum"))
		if err != nil {
			writeTusError(w, r, err)
			return
		}
		u, err := s.WriteUpload(r.Context(), id, offset, sum, r.Body)
		if err != nil {
			writeTusError(w, r, err)
			return
		}
		setUploadHeaders(w.Header(), u)
		w.WriteHeader(http.StatusNoContent)
	})
}

// handleUploadDelete serves DELETE /v1/uploads/{id} (tus termination).
func handleUploadDelete(s *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := uploadID(r)
		if err != nil {
			writeTusError(w, r, err)
			return
		}
		if err := s.TerminateUpload(r.Context(), id); err != nil {
			writeTusError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func isChunk(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == contentTypeChunk
}

// parseCreation reads the headers of a creation request.
func parseCreation(h http.Header) (NewUpload, error) {
	var in NewUpload
	if h.Get("Upload-Defer-Length") != "" {
		return in, strata.Invalid("Upload-Defer-Length", "is not supported: send Upload-Length")
	}
	raw := h.Get("Upload-Length")
	if raw == "" {
		return in, strata.Invalid("Upload-Length", "is required")
	}
	n, ok := parseDecimal(raw)
	if !ok {
		return in, strata.Invalid("Upload-Length", "must be a non-negative decimal integer")
	}
	in.Length = n
	in.Metadata = h.Get("Upload-Metadata")
	if len(in.Metadata) > MaxUploadMetadataBytes {
		return in, strata.Invalid("Upload-Metadata", "must be at most 4096 bytes")
	}
	meta, err := parseMetadata(in.Metadata)
	if err != nil {
		return in, err
	}
	item, ok := meta["item_id"]
	if !ok || item == "" {
		return in, strata.Invalid("item_id", "is required in Upload-Metadata")
	}
	if in.ItemID, err = strata.ParseID(item, PrefixItem); err != nil {
		return in, strata.Invalid("item_id", "must be an item id")
	}
	in.Filename = meta["filename"]
	return in, ValidateFilename(in.Filename)
}

// parseMetadata reads Upload-Metadata: comma-separated pairs of a key and
// its value in standard base64, the value optional. Keys are ASCII without
// spaces and commas, each at most once. Errors: invalid "Upload-Metadata".
func parseMetadata(raw string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(raw) == "" {
		return out, nil
	}
	for pair := range strings.SplitSeq(raw, ",") {
		key, value, _ := strings.Cut(strings.TrimSpace(pair), " ")
		if key == "" || strings.ContainsFunc(key, func(r rune) bool { return r <= ' ' || r > '~' }) {
			return nil, strata.Invalid("Upload-Metadata", "must be comma-separated pairs of a key and a base64 value")
		}
		if _, dup := out[key]; dup {
			return nil, strata.Invalid("Upload-Metadata", "names "+key+" twice")
		}
		v, err := base64.StdEncoding.DecodeString(strings.TrimSpace(value))
		if err != nil {
			return nil, strata.Invalid("Upload-Metadata", "the value of "+key+" must be base64")
		}
		out[key] = string(v)
	}
	return out, nil
}

// parseOffset reads Upload-Offset. Errors: invalid "Upload-Offset".
func parseOffset(raw string) (int64, error) {
	if raw == "" {
		return 0, strata.Invalid("Upload-Offset", "is required")
	}
	n, ok := parseDecimal(raw)
	if !ok {
		return 0, strata.Invalid("Upload-Offset", "must be a non-negative decimal integer")
	}
	return n, nil
}

// parseDecimal reads digits only: no sign, no spaces.
func parseDecimal(s string) (int64, bool) {
	if s == "" || len(s) > 19 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// parseChecksum reads Upload-Checksum, "<algorithm> <base64 digest>"; nil
// when absent. Errors: invalid "Upload-Checksum" (an algorithm other than
// sha1, sha256 or md5, a digest that is not base64 or not of its size).
func parseChecksum(raw string) (*UploadChecksum, error) {
	if raw == "" {
		return nil, nil
	}
	alg, digest, _ := strings.Cut(strings.TrimSpace(raw), " ")
	newHash := uploadHashes[alg]
	if newHash == nil {
		return nil, strata.Invalid("Upload-Checksum", "must use sha1, sha256 or md5")
	}
	sum, err := base64.StdEncoding.DecodeString(strings.TrimSpace(digest))
	if err != nil || len(sum) != newHash().Size() {
		return nil, strata.Invalid("Upload-Checksum", "must hold the base64 digest of the body")
	}
	return &UploadChecksum{Algorithm: alg, Sum: sum}, nil
}
