package httpx_test

import (
	"net/url"
	"testing"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/httpx"
	"github.com/stretchr/testify/require"
)

func TestLimit(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  int
		bad   bool
	}{
		{"", 20, false}, {"limit=1", 1, false}, {"limit=100", 100, false},
		{"limit=0", 0, true}, {"limit=101", 0, true}, {"limit=-3", 0, true}, {"limit=ten", 0, true}, {"limit=2.5", 0, true},
	} {
		q, _ := url.ParseQuery(tc.query)
		n, err := httpx.Limit(q, 20, 100)
		if tc.bad {
			require.Equal(t, strata.CodeInvalid, strata.ErrorCode(err), tc.query)
			continue
		}
		require.NoError(t, err, tc.query)
		require.Equal(t, tc.want, n, tc.query)
	}
}
