package httpx_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stratadev/strata/internal/httpx"
	"github.com/stretchr/testify/assert"
)

func TestCORS(t *testing.T) {
	t.Parallel()
	var reached int
	h := httpx.CORS([]string{"https://app.example"})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached++
		w.Header().Set("Upload-Offset", "42")
	}))
	do := func(method, origin string, header ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "/v1/uploads/up_1", nil)
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	pre := do(http.MethodOptions, "https://app.example", "Access-Control-Request-Method", "PATCH",
		"Access-Control-Request-Headers", "tus-resumable, upload-offset, content-type")
	assert.Equal(t, http.StatusNoContent, pre.Code)
	assert.Equal(t, "https://app.example", pre.Header().Get("Access-Control-Allow-Origin"))
	assert.Contains(t, pre.Header().Get("Access-Control-Allow-Methods"), "PATCH")
	assert.Contains(t, pre.Header().Get("Access-Control-Allow-Headers"), "Upload-Offset")
	assert.Equal(t, 0, reached, "the preflight is answered by the middleware")

	got := do(http.MethodPatch, "https://app.example")
	assert.Equal(t, "https://app.example", got.Header().Get("Access-Control-Allow-Origin"))
	assert.Contains(t, got.Header().Get("Access-Control-Expose-Headers"), "Upload-Offset")
	assert.Contains(t, got.Header().Get("Access-Control-Expose-Headers"), "Strata-Consistency")
	assert.Contains(t, got.Header().Values("Vary"), "Origin")
	assert.Empty(t, got.Header().Get("Access-Control-Allow-Credentials"))

	other := do(http.MethodPatch, "https://evil.example")
	assert.Empty(t, other.Header().Get("Access-Control-Allow-Origin"), "other origins get no CORS headers")
	tusOptions := do(http.MethodOptions, "") // tus's own OPTIONS, no preflight
	assert.Equal(t, http.StatusOK, tusOptions.Code)
	assert.Equal(t, 3, reached)
}
