package main

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCORSForBrowserUploads: a page of an allowed origin may start a tus
// upload (the preflight passes) and read Upload-Offset and Location.
func TestCORSForBrowserUploads(t *testing.T) {
	t.Parallel()
	in := start(t, t.TempDir(), "--cors-origins", "https://app.example")
	req, err := http.NewRequest(http.MethodOptions, in.base+"/v1/uploads/", nil)
	require.NoError(t, err)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization, tus-resumable, upload-length, upload-metadata")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Equal(t, "https://app.example", resp.Header.Get("Access-Control-Allow-Origin"))

	status, _, h := callWith(t, "GET", in.base+"/v1/items", nil, "", http.Header{"Origin": {"https://app.example"}})
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, h.Get("Access-Control-Expose-Headers"), "Upload-Offset")
	require.Contains(t, h.Get("Access-Control-Expose-Headers"), "Location")
	_, _, h = callWith(t, "GET", in.base+"/v1/items", nil, "", http.Header{"Origin": {"https://other.example"}})
	require.Empty(t, h.Get("Access-Control-Allow-Origin"))

	var s settings
	fs := newFlagSet()
	s.registerFlags(fs)
	require.NoError(t, fs.Parse([]string{"--cors-origins", "app.example"}))
	require.ErrorContains(t, s.validate(), "cors-origins")
}
