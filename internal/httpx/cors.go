package httpx

import (
	"net/http"
	"slices"
	"strings"
)

// corsAllowHeaders are the request headers browsers may send: the API's,
// and tus's (resumable uploads from a web page).
var corsAllowHeaders = strings.Join([]string{"Authorization", "Content-Type", "Idempotency-Key", HeaderConsistency,
	HeaderRequestID, "Tus-Resumable", "Upload-Length", "Upload-Offset", "Upload-Metadata", "Upload-Checksum",
	"Upload-Defer-Length", "If-None-Match", "If-Modified-Since", "Range"}, ", ")

// corsExposeHeaders are the response headers scripts may read: without
// them a browser tus client cannot resume (Upload-Offset, Location) and a
// client cannot read its own writes (Strata-Consistency).
var corsExposeHeaders = strings.Join([]string{"Location", "Retry-After", "ETag", "Content-Disposition",
	HeaderConsistency, HeaderRequestID, "Idempotent-Replayed", "Tus-Resumable", "Tus-Version", "Tus-Extension",
	"Tus-Max-Size", "Upload-Offset", "Upload-Length", "Upload-Expires", "Upload-Metadata"}, ", ")

// CORS lets web pages from origins call the API: it answers preflight
// requests itself (204), and marks the answers to allowed origins. "*"
// allows any origin. Credentials are bearer tokens, never cookies, so no
// Access-Control-Allow-Credentials. Requests from other origins pass
// through untouched, and the browser keeps their answers from the page.
func CORS(origins []string) func(http.Handler) http.Handler {
	anyOrigin := slices.Contains(origins, "*")
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			origin := r.Header.Get("Origin")
			if origin == "" {
				next.ServeHTTP(w, r)
				return
			}
			h := w.Header()
			h.Add("Vary", "Origin")
			if !anyOrigin && !slices.Contains(origins, origin) {
				next.ServeHTTP(w, r)
				return
			}
			h.Set("Access-Control-Allow-Origin", origin)
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Add("Vary", "Access-Control-Request-Method")
				h.Add("Vary", "Access-Control-Request-Headers")
				h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
				h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
			h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
			next.ServeHTTP(w, r)
		})
	}
}
