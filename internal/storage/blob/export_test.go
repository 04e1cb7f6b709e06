package blob

import (
	"context"
	"errors"
	"io"
	"sort"
	"time"

	gcblob "gocloud.dev/blob"
)

// Keys lists every key in the store's bucket, sorted.
func Keys(ctx context.Context, s *Store) ([]string, error) {
	var keys []string
	it := s.bucket.List(&gcblob.ListOptions{})
	for {
		o, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			sort.Strings(keys)
			return keys, nil
		}
		if err != nil {
			return nil, err
		}
		keys = append(keys, o.Key)
	}
}

// WriteRaw stores data under key, bypassing Put.
func WriteRaw(ctx context.Context, s *Store, key string, data []byte) error {
	return s.bucket.WriteAll(ctx, key, data, &gcblob.WriterOptions{ContentType: "application/octet-stream"})
}

// SweepAt is Sweep without the minimum age, so tests can sweep what they
// have just stored.
func SweepAt(ctx context.Context, s *Store, cutoff time.Time, referenced Referenced) (int, error) {
	return s.sweep(ctx, cutoff, referenced)
}
