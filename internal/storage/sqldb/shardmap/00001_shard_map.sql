-- The shard map of a deployment: which physical database holds each
-- logical shard. It lives in the deployment's first database (the
-- metadata database); every instance loads it at start and reloads it
-- when its version changes.

-- +goose Up
CREATE TABLE strata_shard_map_meta (
    id         INTEGER PRIMARY KEY CHECK (id = 1), -- one row
    version    BIGINT NOT NULL,                    -- bumped by every change of the map
    shards     INTEGER NOT NULL,                   -- the deployment's logical shard count, fixed
    created_at BIGINT NOT NULL,                    -- unix milliseconds
    updated_at BIGINT NOT NULL                     -- unix milliseconds
);

CREATE TABLE strata_shard_map (
    shard INTEGER PRIMARY KEY, -- 0 .. shards-1
    db    TEXT NOT NULL        -- the name of the physical database in the configuration
);

-- +goose Down
DROP TABLE strata_shard_map;
DROP TABLE strata_shard_map_meta;
