package sqldb

import (
	"context"
	"errors"
	"fmt"

	"github.com/stratadev/strata"
)

// Router maps each of a fixed number of logical shards to the physical
// database that holds it. Logical shard counts are set when a deployment is
// created and never change; moving a logical shard between databases changes
// only the map.
type Router struct {
	shards []*DB // index: logical shard
	dbs    []*DB // distinct physical databases, in order
}

// NewRouter spreads numShards logical shards over dbs in contiguous, equal
// ranges: with 256 shards on 2 databases, shards 0-127 live on the first.
// In one-process mode every shard maps to the one database.
func NewRouter(numShards int, dbs ...*DB) (*Router, error) {
	if numShards < 1 || numShards > strata.MaxShards {
		return nil, fmt.Errorf("shards: must be between 1 and %d, got %d", strata.MaxShards, numShards)
	}
	if len(dbs) == 0 || len(dbs) > numShards {
		return nil, fmt.Errorf("shards: need between 1 and %d databases, got %d", numShards, len(dbs))
	}
	r := &Router{shards: make([]*DB, numShards), dbs: dbs}
	for s := range r.shards {
		r.shards[s] = dbs[s*len(dbs)/numShards]
	}
	return r, nil
}

// NumShards returns the number of logical shards.
func (r *Router) NumShards() int { return len(r.shards) }

// Shard returns the database holding logical shard s.
func (r *Router) Shard(s int) *DB { return r.shards[s] }

// ForID returns the database holding the entity id. An id that is malformed
// or names a shard beyond the deployment's count is not_found: it cannot
// name anything stored here.
func (r *Router) ForID(id strata.ID) (*DB, error) {
	s, ok := id.Shard()
	if !ok || s >= len(r.shards) {
		return nil, &strata.Error{Code: strata.CodeNotFound, Reason: "not_found", Message: "not found"}
	}
	return r.shards[s], nil
}

// ShardOfKey returns the logical shard of a key that is not an ID, such as
// a normalized email address.
func (r *Router) ShardOfKey(key string) int { return strata.ShardOfKey(key, len(r.shards)) }

// ForKey returns the database holding key's shard.
func (r *Router) ForKey(key string) *DB { return r.shards[r.ShardOfKey(key)] }

// NewShard picks the logical shard of a new root entity (a user): uniformly
// at random, so users spread evenly over databases.
func (r *Router) NewShard() int { return strata.RandomShard(len(r.shards)) }

// DBs returns every distinct physical database, for migrations, health
// checks and scatter-gather reads.
func (r *Router) DBs() []*DB { return r.dbs }

// Ping checks every physical database.
func (r *Router) Ping(ctx context.Context) error {
	for _, db := range r.dbs {
		if err := db.Ping(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Close closes every physical database.
func (r *Router) Close() error {
	var errs []error
	for _, db := range r.dbs {
		errs = append(errs, db.Close())
	}
	return errors.Join(errs...)
}
