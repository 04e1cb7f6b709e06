package observability_test

import (
	"net/http"
	"testing"

	"github.com/stratadev/strata/internal/observability"
	"github.com/stretchr/testify/require"
)

func TestDebugHandler(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path       string
		wantStatus int
		wantBody   string
	}{
		{path: "/debug/pprof/", wantStatus: http.StatusOK, wantBody: "goroutine"},
		{path: "/debug/pprof/goroutine?debug=1", wantStatus: http.StatusOK, wantBody: "goroutine profile"},
		{path: "/debug/pprof/cmdline", wantStatus: http.StatusOK},
		{path: "/debug/pprof/symbol", wantStatus: http.StatusOK, wantBody: "num_symbols"},
		{path: "/metrics", wantStatus: http.StatusNotFound},
	}
	h := observability.DebugHandler()
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			w := serve(t, h, tt.path)
			require.Equal(t, tt.wantStatus, w.Code)
			require.Contains(t, w.Body.String(), tt.wantBody)
		})
	}
}
