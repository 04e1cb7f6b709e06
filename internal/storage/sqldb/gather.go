package sqldb

import (
	"context"
	"slices"

	"golang.org/x/sync/errgroup"
)

// MaxFanOut bounds how many databases one Gather queries at the same time,
// so a deployment of many databases does not take a connection from every
// pool at once for one request.
const MaxFanOut = 16

// Gather runs fn on every database of dbs, at most MaxFanOut at a time,
// and concatenates what they return, in the order of dbs; the first error
// cancels the others and is returned. It is the scatter half of a
// cross-shard read: callers merge and cut the result, and bound each
// database's share (a LIMIT), so the fan-out costs at most len(dbs) ×
// that bound rows.
func Gather[T any](ctx context.Context, dbs []*DB, fn func(ctx context.Context, db *DB) ([]T, error)) ([]T, error) {
	parts := make([][]T, len(dbs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(MaxFanOut)
	for i, db := range dbs {
		g.Go(func() error {
			part, err := fn(gctx, db)
			parts[i] = part
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return slices.Concat(parts...), nil
}
