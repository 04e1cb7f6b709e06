package blob

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/pflag"
)

// Config holds the blob-storage settings. Defaults are set by RegisterFlags;
// Validate names the setting at fault.
type Config struct {
	// URL says where blobs live:
	//
	//	""                                  the caller's default, a folder
	//	                                    under its data directory
	//	                                    (file://<data-dir>/blobs)
	//	/var/lib/strata/blobs               a plain path: a local folder
	//	file:///var/lib/strata/blobs        the same as a URL
	//	s3://BUCKET?region=R                S3 or an S3-compatible server;
	//	    &endpoint=http://HOST:PORT      add endpoint, use_path_style=true
	//	    &use_path_style=true            and disable_https=true for
	//	    &disable_https=true             MinIO-like servers; prefix=P/
	//	    &prefix=strata/                 keeps Strata's keys under P/
	//
	// S3 credentials come from the standard AWS environment variables
	// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) or the
	// other sources of the AWS default chain, never from the URL, so the URL
	// can be logged.
	URL string
}

// RegisterFlags registers the settings with their defaults on fs.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.URL, "blob-url", "", "where blobs are stored: a folder path, file:///path, or s3://bucket?region=..&endpoint=..&use_path_style=true (credentials from AWS_* variables); empty means <data-dir>/blobs")
}

// Validate checks the settings without opening anything.
func (c *Config) Validate() error {
	if c.URL == "" {
		return nil
	}
	if err := checkURL(c.URL); err != nil {
		return fmt.Errorf("blob-url: %w", err)
	}
	return nil
}

// checkURL reports whether raw is a URL Open accepts. The error never
// repeats the URL's query, which might hold something secret.
func checkURL(raw string) error {
	if isPlainPath(raw) {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a path or URL")
	}
	switch u.Scheme {
	case "file":
		if u.Path == "" {
			return fmt.Errorf("file URL without a path")
		}
		if u.User != nil {
			return fmt.Errorf("file URL must not carry credentials")
		}
	case "s3":
		if u.Host == "" {
			return fmt.Errorf("s3 URL without a bucket (s3://BUCKET?region=...)")
		}
		if u.User != nil {
			return fmt.Errorf("s3 URL must not carry credentials: use the AWS_* environment variables")
		}
		if u.Path != "" && u.Path != "/" {
			return fmt.Errorf("s3 URL must not have a path: use ?prefix=%s/", strings.Trim(u.Path, "/"))
		}
	default:
		return fmt.Errorf("unsupported scheme %q (want a path, file:// or s3://)", u.Scheme)
	}
	return nil
}

// isPlainPath reports whether s is a file path rather than a URL.
func isPlainPath(s string) bool {
	return !strings.Contains(s, "://")
}
