package blob_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/storage/blob"
	"github.com/stretchr/testify/require"
)

func TestOpenFolder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name, url, dir string
	}{
		{"plain path", filepath.Join(dir, "a", "blobs"), filepath.Join(dir, "a", "blobs")},
		{"file URL", "file://" + filepath.ToSlash(filepath.Join(dir, "b")), filepath.Join(dir, "b")},
		{"file URL with create_dir", "file://" + filepath.ToSlash(filepath.Join(dir, "c")) + "?create_dir=true", filepath.Join(dir, "c")},
		{"path with spaces", filepath.Join(dir, "d e"), filepath.Join(dir, "d e")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := blob.Open(context.Background(), tc.url)
			require.NoError(t, err)
			defer s.Close()
			require.NoError(t, s.Ping(context.Background()))
			o, err := s.Put(context.Background(), stringsReader("hello"), blob.PutOptions{})
			require.NoError(t, err)
			_, err = os.Stat(filepath.Join(tc.dir, filepath.FromSlash(o.Key)))
			require.NoError(t, err, "the object lives under the folder")
		})
	}
}

func TestOpenRefuses(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "gs://bucket", "mem://", "azblob://c", "s3://", "s3://bucket/path", "s3://key:secret@bucket", "file://"} {
		_, err := blob.Open(context.Background(), u)
		require.Error(t, err, u)
	}
}

func TestPingUnavailable(t *testing.T) {
	t.Parallel()
	t.Run("folder removed", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "blobs")
		s, err := blob.Open(context.Background(), dir)
		require.NoError(t, err)
		defer s.Close()
		require.NoError(t, os.RemoveAll(dir))
		requireCode(t, s.Ping(context.Background()), strata.CodeUnavailable, "blob_unavailable")
	})
	t.Run("S3 endpoint down", func(t *testing.T) {
		t.Parallel()
		// Opening does not touch the network; credentials come from the
		// environment, so fake ones are set only if none are.
		q := url.Values{"region": {"us-east-1"}, "endpoint": {"http://127.0.0.1:1"},
			"use_path_style": {"true"}, "disable_https": {"true"}, "anonymous": {"true"}}
		s, err := blob.Open(context.Background(), "s3://strata?"+q.Encode())
		require.NoError(t, err)
		defer s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		requireCode(t, s.Ping(ctx), strata.CodeUnavailable, "blob_unavailable")
		_, err = s.Stat(ctx, sum([]byte("x")))
		requireCode(t, err, strata.CodeUnavailable, "blob_unavailable")
	})
}

func TestConfig(t *testing.T) {
	t.Parallel()
	var c blob.Config
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	c.RegisterFlags(fs)
	require.NoError(t, fs.Parse(nil))
	require.Equal(t, "", c.URL, "empty: the caller's data directory decides")
	require.NoError(t, c.Validate())

	tests := []struct {
		url string
		ok  bool
	}{
		{"/var/lib/strata/blobs", true},
		{"./data/blobs", true},
		{"file:///var/lib/strata/blobs", true},
		{"file:///srv/blobs?create_dir=true", true},
		{"s3://media?region=eu-west-1", true},
		{"s3://media?endpoint=http://127.0.0.1:7070&region=us-east-1&use_path_style=true&disable_https=true", true},
		{"s3://media?region=us-east-1&prefix=strata/", true},
		{"gs://media", false},
		{"mem://", false},
		{"s3://", false},
		{"s3://media/some/path", false},
		{"s3://AKIA:secret@media", false},
		{"file://", false},
		{"://nothing", false},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			c := blob.Config{URL: tc.url}
			err := c.Validate()
			if tc.ok {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), "blob-url: ")
			require.NotContains(t, err.Error(), "secret")
		})
	}
	require.NoError(t, fs.Parse([]string{"--blob-url", "s3://b?region=r"}))
	require.Equal(t, "s3://b?region=r", c.URL)
}
