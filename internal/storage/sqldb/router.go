package sqldb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/stratadev/strata"
)

// Router maps each of a fixed number of logical shards to the physical
// database that holds it, following a ShardMap. Logical shard counts are
// set when a deployment is created and never change; moving a logical
// shard between databases changes only the map, which Apply (or Follow)
// swaps in atomically while requests run.
type Router struct {
	table  atomic.Pointer[shardTable]
	dbs    []*DB // distinct physical databases, in configuration order
	names  []string
	byName map[string]*DB
}

// shardTable is one version of the map, resolved to databases.
type shardTable struct {
	m      ShardMap
	shards []*DB // index: logical shard
}

// NewRouter spreads numShards logical shards over dbs in contiguous, equal
// ranges (EvenShardMap), naming the databases db0, db1, ... In
// one-process mode every shard maps to the one database.
func NewRouter(numShards int, dbs ...*DB) (*Router, error) {
	if numShards < 1 || numShards > strata.MaxShards {
		return nil, fmt.Errorf("shards: must be between 1 and %d, got %d", strata.MaxShards, numShards)
	}
	if len(dbs) == 0 || len(dbs) > numShards {
		return nil, fmt.Errorf("shards: need between 1 and %d databases, got %d", numShards, len(dbs))
	}
	names := make([]string, len(dbs))
	for i := range dbs {
		names[i] = fmt.Sprintf("db%d", i)
	}
	return NewMappedRouter(EvenShardMap(numShards, names), names, dbs)
}

// NewMappedRouter routes by m over dbs, named by names (the same order).
// Databases m does not use are still part of the deployment: migrated,
// health-checked, and ready to receive shards.
func NewMappedRouter(m ShardMap, names []string, dbs []*DB) (*Router, error) {
	if len(names) != len(dbs) || len(dbs) == 0 {
		return nil, fmt.Errorf("shards: %d names for %d databases", len(names), len(dbs))
	}
	if len(m.Shards) < 1 || len(m.Shards) > strata.MaxShards {
		return nil, fmt.Errorf("shards: must be between 1 and %d, got %d", strata.MaxShards, len(m.Shards))
	}
	r := &Router{dbs: dbs, names: names, byName: make(map[string]*DB, len(dbs))}
	for i, name := range names {
		if _, dup := r.byName[name]; dup {
			return nil, fmt.Errorf("shards: two databases named %q", name)
		}
		r.byName[name] = dbs[i]
		dbs[i].label = name
	}
	t, err := r.resolve(m)
	if err != nil {
		return nil, err
	}
	r.table.Store(t)
	return r, nil
}

func (r *Router) resolve(m ShardMap) (*shardTable, error) {
	if err := m.validate(func(name string) bool { return r.byName[name] != nil }); err != nil {
		return nil, err
	}
	t := &shardTable{m: ShardMap{Version: m.Version, Shards: slices.Clone(m.Shards)}, shards: make([]*DB, len(m.Shards))}
	for s, name := range m.Shards {
		t.shards[s] = r.byName[name]
	}
	return t, nil
}

// Apply switches the router to m, a later version of its map with the
// same shard count. An older or equal version is ignored (false).
func (r *Router) Apply(m ShardMap) (bool, error) {
	cur := r.table.Load()
	if len(m.Shards) != len(cur.shards) {
		return false, fmt.Errorf("shard map version %d has %d shards; this deployment has %d", m.Version, len(m.Shards), len(cur.shards))
	}
	if m.Version <= cur.m.Version {
		return false, nil
	}
	t, err := r.resolve(m)
	if err != nil {
		return false, err
	}
	return r.table.CompareAndSwap(cur, t), nil
}

// Map returns the map the router follows now.
func (r *Router) Map() ShardMap {
	t := r.table.Load()
	return ShardMap{Version: t.m.Version, Shards: slices.Clone(t.m.Shards)}
}

// NameOf returns the configured name of db, one of the router's.
func (r *Router) NameOf(db *DB) string {
	for i, d := range r.dbs {
		if d == db {
			return r.names[i]
		}
	}
	return db.Name()
}

// ByName returns the database configured under name, or nil.
func (r *Router) ByName(name string) *DB { return r.byName[name] }

// Follow reloads the map from meta whenever its version changes, checking
// every interval until ctx ends; then it returns nil. A failed check is
// logged and tried again at the next tick.
func (r *Router) Follow(ctx context.Context, meta *DB, interval time.Duration, logger *slog.Logger) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := r.refresh(ctx, meta, logger); err != nil && ctx.Err() == nil {
			logger.Error("reload the shard map", "error", err)
		}
	}
}

func (r *Router) refresh(ctx context.Context, meta *DB, logger *slog.Logger) error {
	v, err := ShardMapVersion(ctx, meta)
	if err != nil || v == r.table.Load().m.Version {
		return err
	}
	m, err := LoadShardMap(ctx, meta)
	if err != nil {
		return err
	}
	applied, err := r.Apply(m)
	if applied {
		logger.Info("shard map changed", "version", m.Version)
	}
	return err
}

// NumShards returns the number of logical shards.
func (r *Router) NumShards() int { return len(r.table.Load().shards) }

// Shard returns the database holding logical shard s.
func (r *Router) Shard(s int) *DB { return r.table.Load().shards[s] }

// ForID returns the database holding the entity id. An id that is malformed
// or names a shard beyond the deployment's count is not_found: it cannot
// name anything stored here.
func (r *Router) ForID(id strata.ID) (*DB, error) {
	shards := r.table.Load().shards
	s, ok := id.Shard()
	if !ok || s >= len(shards) {
		return nil, &strata.Error{Code: strata.CodeNotFound, Reason: "not_found", Message: "not found"}
	}
	return shards[s], nil
}

// ShardOfKey returns the logical shard of a key that is not an ID, such as
// a normalized email address.
func (r *Router) ShardOfKey(key string) int { return strata.ShardOfKey(key, r.NumShards()) }

// ForKey returns the database holding key's shard.
func (r *Router) ForKey(key string) *DB { return r.Shard(r.ShardOfKey(key)) }

// NewShard picks the logical shard of a new root entity (a user): uniformly
// at random, so users spread evenly over databases.
func (r *Router) NewShard() int { return strata.RandomShard(r.NumShards()) }

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
