package sqldb

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"
)

//go:embed shardmap/*.sql
var shardMapFiles embed.FS

// ShardMap assigns every logical shard of a deployment to a physical
// database, by the database's name in the configuration. Its length is the
// deployment's logical shard count, which never changes; moving a shard
// changes the map and bumps its version.
type ShardMap struct {
	Version int64
	Shards  []string // index: logical shard
}

// EvenShardMap spreads numShards logical shards over the named databases
// in contiguous, equal ranges (version 1): with 256 shards on two
// databases, shards 0-127 live on the first.
func EvenShardMap(numShards int, names []string) ShardMap {
	m := ShardMap{Version: 1, Shards: make([]string, numShards)}
	for s := range m.Shards {
		m.Shards[s] = names[s*len(names)/numShards]
	}
	return m
}

// ShardRange is a run of consecutive logical shards on one database.
type ShardRange struct {
	First, Last int
	DB          string
}

// Ranges summarises m as runs of consecutive shards on one database.
func (m ShardMap) Ranges() []ShardRange {
	var out []ShardRange
	for s, name := range m.Shards {
		if n := len(out); n > 0 && out[n-1].DB == name && out[n-1].Last == s-1 {
			out[n-1].Last = s
			continue
		}
		out = append(out, ShardRange{First: s, Last: s, DB: name})
	}
	return out
}

// validate checks that m names only known databases.
func (m ShardMap) validate(known func(string) bool) error {
	if len(m.Shards) == 0 {
		return errors.New("shard map: no shards")
	}
	for s, name := range m.Shards {
		if !known(name) {
			return fmt.Errorf("shard map version %d: shard %d lives on database %q, which is not configured", m.Version, s, name)
		}
	}
	return nil
}

// ShardMapMigrations returns the migrations of the shard map's tables.
func ShardMapMigrations() fs.FS {
	sub, err := fs.Sub(shardMapFiles, "shardmap")
	if err != nil {
		panic(err)
	}
	return sub
}

// OpenShardMap returns the shard map stored in meta, the deployment's
// metadata database, storing initial there first when the deployment is
// new (created reports that). It migrates the map's tables.
func OpenShardMap(ctx context.Context, meta *DB, initial ShardMap, now time.Time) (m ShardMap, created bool, err error) {
	if err := Migrate(ctx, meta, "shardmap", ShardMapMigrations()); err != nil {
		return ShardMap{}, false, err
	}
	err = meta.Tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM strata_shard_map_meta").Scan(&n); err != nil {
			return fmt.Errorf("read shard map: %w", Translate(err))
		}
		if n > 0 {
			return nil
		}
		created = true
		ms := Millis(now)
		if _, err := tx.ExecContext(ctx, `INSERT INTO strata_shard_map_meta (id, version, shards, created_at, updated_at)
			VALUES (1, $1, $2, $3, $3)`, initial.Version, len(initial.Shards), ms); err != nil {
			return fmt.Errorf("create shard map: %w", Translate(err))
		}
		for s, name := range initial.Shards {
			if _, err := tx.ExecContext(ctx, "INSERT INTO strata_shard_map (shard, db) VALUES ($1, $2)", s, name); err != nil {
				return fmt.Errorf("create shard map: %w", Translate(err))
			}
		}
		return nil
	})
	if err != nil {
		return ShardMap{}, false, err
	}
	m, err = LoadShardMap(ctx, meta)
	return m, created, err
}

// HasShardMap reports whether db holds a shard map: a database that does
// must not become part of another deployment.
func HasShardMap(ctx context.Context, db *DB) (bool, error) {
	if ok, err := HasTable(ctx, db, "strata_shard_map_meta"); err != nil || !ok {
		return false, err
	}
	var n int
	if err := db.Primary().QueryRowContext(ctx, "SELECT count(*) FROM strata_shard_map_meta").Scan(&n); err != nil {
		return false, fmt.Errorf("read shard map: %w", Translate(err))
	}
	return n > 0, nil
}

// HasTable reports whether db has the table (in the current schema on
// PostgreSQL).
func HasTable(ctx context.Context, db *DB, table string) (bool, error) {
	q := "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $1"
	if db.Dialect() == Postgres {
		q = "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1"
	}
	var n int
	if err := db.Primary().QueryRowContext(ctx, q, table).Scan(&n); err != nil {
		return false, fmt.Errorf("look for table %s: %w", table, Translate(err))
	}
	return n > 0, nil
}

// LoadShardMap reads the shard map stored in meta.
func LoadShardMap(ctx context.Context, meta *DB) (ShardMap, error) {
	var m ShardMap
	var shards int
	err := meta.Primary().QueryRowContext(ctx, "SELECT version, shards FROM strata_shard_map_meta WHERE id = 1").Scan(&m.Version, &shards)
	if err != nil {
		return ShardMap{}, fmt.Errorf("read shard map: %w", Translate(err))
	}
	rows, err := meta.Primary().QueryContext(ctx, "SELECT shard, db FROM strata_shard_map ORDER BY shard")
	if err != nil {
		return ShardMap{}, fmt.Errorf("read shard map: %w", Translate(err))
	}
	defer rows.Close()
	m.Shards = make([]string, shards)
	seen := 0
	for rows.Next() {
		var s int
		var name string
		if err := rows.Scan(&s, &name); err != nil {
			return ShardMap{}, fmt.Errorf("read shard map: %w", err)
		}
		if s < 0 || s >= shards {
			return ShardMap{}, fmt.Errorf("read shard map: shard %d out of range 0-%d", s, shards-1)
		}
		m.Shards[s] = name
		seen++
	}
	if err := rows.Err(); err != nil {
		return ShardMap{}, fmt.Errorf("read shard map: %w", err)
	}
	if seen != shards {
		return ShardMap{}, fmt.Errorf("read shard map: %d of %d shards assigned", seen, shards)
	}
	return m, nil
}

// ShardMapVersion reads the version of the map in meta: the cheap query
// instances poll.
func ShardMapVersion(ctx context.Context, meta *DB) (int64, error) {
	var v int64
	if err := meta.Primary().QueryRowContext(ctx, "SELECT version FROM strata_shard_map_meta WHERE id = 1").Scan(&v); err != nil {
		return 0, fmt.Errorf("read shard map version: %w", Translate(err))
	}
	return v, nil
}

// ErrShardMapChanged is returned by AssignShard when the map's version is
// no longer the one the caller read.
var ErrShardMapChanged = errors.New("the shard map changed meanwhile")

// AssignShard points shard at the database named to, if the stored map is
// still at version, and returns the new map (version+1).
func AssignShard(ctx context.Context, meta *DB, shard int, to string, version int64, now time.Time) (ShardMap, error) {
	err := meta.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE strata_shard_map_meta SET version = version + 1, updated_at = $1 WHERE id = 1 AND version = $2",
			Millis(now), version)
		if err != nil {
			return fmt.Errorf("assign shard: %w", Translate(err))
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("assign shard: %w", err)
		} else if n != 1 {
			return ErrShardMapChanged
		}
		res, err = tx.ExecContext(ctx, "UPDATE strata_shard_map SET db = $1 WHERE shard = $2", to, shard)
		if err != nil {
			return fmt.Errorf("assign shard: %w", Translate(err))
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("assign shard: %w", err)
		} else if n != 1 {
			return fmt.Errorf("assign shard: no shard %d", shard)
		}
		return nil
	})
	if err != nil {
		return ShardMap{}, err
	}
	return LoadShardMap(ctx, meta)
}
