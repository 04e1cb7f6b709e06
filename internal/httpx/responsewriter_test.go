package httpx_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stratadev/strata/internal/httpx"
	"github.com/stretchr/testify/require"
)

// BeforeHeader hooks run once, just before the status line, whichever way
// the handler starts its response; registered after it, they do nothing.
func TestBeforeHeaderRunsOnceBeforeTheStatusLine(t *testing.T) {
	for name, write := range map[string]func(w http.ResponseWriter){
		"WriteHeader": func(w http.ResponseWriter) { w.WriteHeader(http.StatusCreated) },
		"Write":       func(w http.ResponseWriter) { _, _ = w.Write([]byte("hi")) },
		"ReadFrom":    func(w http.ResponseWriter) { _, _ = w.(*httpx.ResponseWriter).ReadFrom(strings.NewReader("hi")) },
		"Flush":       func(w http.ResponseWriter) { http.NewResponseController(w).Flush() },
	} {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			rw := httpx.NewResponseWriter(rec)
			runs := 0
			rw.BeforeHeader(func() {
				runs++
				rw.Header().Set("X-Late", "set")
			})
			write(rw)
			write(rw)
			rw.BeforeHeader(func() { runs += 10 })
			require.Equal(t, 1, runs)
			require.Equal(t, "set", rec.Result().Header.Get("X-Late"))
		})
	}
}
