package httpx_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/httpx"
	"github.com/stretchr/testify/require"
)

func TestJSONHandler(t *testing.T) {
	t.Parallel()
	type in struct {
		N int `json:"n"`
	}
	h := httpx.JSONHandler(http.StatusCreated, 64, func(_ context.Context, req in) (any, error) {
		switch req.N {
		case 0:
			return nil, nil
		case 1:
			return nil, strata.Invalid("n", "must not be 1")
		case 2:
			return nil, errors.New("database exploded at 10.0.0.7")
		}
		return map[string]int{"doubled": req.N * 2}, nil
	})
	for _, tc := range []struct {
		name, body string
		status     int
		contains   string
	}{
		{"result", `{"n":21}`, 201, `{"doubled":42}`},
		{"no body", `{"n":0}`, 201, ""},
		{"service error", `{"n":1}`, 400, `"field":"n"`},
		{"internal error hidden", `{"n":2}`, 500, `"code":"internal"`},
		{"decode error", `{"n":"x"}`, 400, `"code":"invalid_type"`},
		{"too large", `{"n":` + strings.Repeat("1", 100) + `}`, 413, `"code":"body_too_large"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Equal(t, tc.status, rec.Code)
			require.Contains(t, rec.Body.String(), tc.contains)
			require.NotContains(t, rec.Body.String(), "10.0.0.7")
			if tc.contains == "" {
				require.Empty(t, rec.Body.String())
			}
		})
	}
}
