package content

import (
	"net/http"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/httpx"
)

// Routes registers every catalog route on mux. Reads are open to anonymous
// callers (who see published items only); changes need a bearer token
// that verifier accepts. wrapPost wraps the JSON POST routes (the
// Idempotency-Key middleware in cmd/strata; uploads stream and are not
// wrapped); nil means none.
func Routes(mux *httpx.Mux, s *Service, verifier httpx.TokenVerifier, wrapPost func(http.Handler) http.Handler) {
	if wrapPost == nil {
		wrapPost = func(h http.Handler) http.Handler { return h }
	}
	authn := httpx.Authenticate(verifier)
	anyone := func(h http.Handler) http.Handler { return httpx.Chain(h, authn) }
	user := func(h http.Handler) http.Handler { return httpx.Chain(h, authn, httpx.RequireAuth()) }
	creator := func(h http.Handler) http.Handler {
		return httpx.Chain(h, authn, httpx.RequireAuth(strata.RoleCreator, strata.RoleAdmin))
	}

	mux.Handle("GET /v1/items", anyone(handleList(s)))
	mux.Handle("POST /v1/items", creator(wrapPost(handleCreate(s))))
	mux.Handle("GET /v1/items/{id}", anyone(handleGet(s)))
	mux.Handle("PATCH /v1/items/{id}", user(handlePatch(s)))
	mux.Handle("DELETE /v1/items/{id}", user(handleDelete(s)))
	mux.Handle("POST /v1/items/{id}/publish", user(wrapPost(handleTransition(s, http.StatusOK, s.Publish))))
	mux.Handle("POST /v1/items/{id}/unpublish", user(wrapPost(handleTransition(s, http.StatusOK, s.Unpublish))))
	mux.Handle("POST /v1/items/{id}/reprocess", user(wrapPost(handleTransition(s, http.StatusAccepted, s.Reprocess))))
	mux.Handle("PUT /v1/items/{id}/file", user(handleUpload(s)))
	// Resumable uploads (tus 1.0.0); OPTIONS is open to anyone.
	mux.Handle("OPTIONS /v1/uploads/", tusProtocol(handleUploadOptions(s)))
	mux.Handle("POST /v1/uploads/", tusProtocol(user(handleUploadCreate(s))))
	mux.Handle("OPTIONS /v1/uploads/{id}", tusProtocol(handleUploadOptions(s)))
	mux.Handle("HEAD /v1/uploads/{id}", tusProtocol(user(handleUploadHead(s))))
	mux.Handle("PATCH /v1/uploads/{id}", tusProtocol(user(handleUploadPatch(s))))
	mux.Handle("DELETE /v1/uploads/{id}", tusProtocol(user(handleUploadDelete(s))))
	mux.Handle("GET /v1/items/{id}/download", anyone(handleDownload(s)))
	// GET patterns also answer HEAD.
	cdn := softAuthenticate(verifier)
	mux.Handle("GET /cdn/o/{sha}/{name}", cdn(handleCDN(s, s.resolveOriginal)))
	mux.Handle("GET /cdn/t/{sha}/thumbnail.jpg", cdn(handleCDN(s, s.resolveThumbnail)))
	mux.Handle("GET /cdn/p/{file}", handleCDN(s, s.resolvePreview))
}
