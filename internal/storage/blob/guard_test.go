package blob_test

import (
	"bytes"
	"context"
	"io"
	"net/url"
	"testing"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/resilience"
	"github.com/stratadev/strata/internal/storage/blob"
	"github.com/stretchr/testify/require"
)

// A guarded store works as before, readers included (they read after the
// guarded call returned), and a storage that is down trips the breaker:
// calls then fail at once instead of each waiting for the network.
func TestGuardedStore(t *testing.T) {
	t.Parallel()
	cfg := resilience.Defaults(time.Second, 1, 8)
	cfg.BreakerMinCalls = 3
	t.Run("works", func(t *testing.T) {
		t.Parallel()
		s, err := blob.Open(context.Background(), t.TempDir())
		require.NoError(t, err)
		defer s.Close()
		s.SetGuard(resilience.New("blob storage", cfg, nil, nil))
		data := bytes.Repeat([]byte("strata"), 100_000)
		o, err := s.Put(context.Background(), bytes.NewReader(data), blob.PutOptions{})
		require.NoError(t, err)
		r, _, err := s.Open(context.Background(), o.SHA256)
		require.NoError(t, err)
		got, err := io.ReadAll(r)
		r.Close()
		require.NoError(t, err)
		require.Equal(t, data, got)
		_, err = s.Stat(context.Background(), sum([]byte("missing")))
		requireCode(t, err, strata.CodeNotFound, "blob_not_found")
		previews := s.Namespace("previews")
		_, err = previews.Stat(context.Background(), o.SHA256)
		requireCode(t, err, strata.CodeNotFound, "blob_not_found")
	})
	t.Run("down", func(t *testing.T) {
		t.Parallel()
		q := url.Values{"region": {"us-east-1"}, "endpoint": {"http://127.0.0.1:1"},
			"use_path_style": {"true"}, "disable_https": {"true"}, "anonymous": {"true"}}
		s, err := blob.Open(context.Background(), "s3://strata?"+q.Encode())
		require.NoError(t, err)
		defer s.Close()
		g := resilience.New("blob storage", cfg, nil, nil)
		s.SetGuard(g)
		for range 3 { // refused, or timed out while the SDK retries
			require.Equal(t, strata.CodeUnavailable, strata.ErrorCode(s.Ping(context.Background())))
		}
		require.Equal(t, "open", g.State())
		start := time.Now()
		_, err = s.Stat(context.Background(), sum([]byte("x")))
		requireCode(t, err, strata.CodeUnavailable, "dependency_unavailable")
		require.Less(t, time.Since(start), 500*time.Millisecond, "at once, not after the timeout (1 s)")
	})
}
