-- +goose Up
-- Every row lives on the shard of the item's creator (the shard in the
-- item id).
CREATE TABLE content_items (
    id             TEXT PRIMARY KEY,  -- itm_ ID: time-ordered, carries the creator's shard
    shard          BIGINT NOT NULL,
    creator_id     TEXT NOT NULL,
    title          TEXT NOT NULL,
    title_lower    TEXT NOT NULL,     -- lowercased in Go, for a portable case-insensitive search
    description    TEXT NOT NULL DEFAULT '',
    price_amount   BIGINT NOT NULL,   -- minor units
    price_currency TEXT NOT NULL,     -- ISO 4217
    tags           TEXT NOT NULL DEFAULT '', -- comma-joined copy of content_item_tags, in order, for reads
    status         TEXT NOT NULL,     -- draft | published | unpublished
    version        BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,   -- unix milliseconds
    updated_at     BIGINT NOT NULL,
    deleted_at     BIGINT             -- NULL unless soft-deleted
);

-- The catalog listing: visible items in id order.
CREATE INDEX content_items_listed ON content_items (id) WHERE status = 'published' AND deleted_at IS NULL;
-- A creator's items, for the creator filter and the creator's own views.
CREATE INDEX content_items_creator ON content_items (creator_id, id);

-- One row per tag of an item, for the tag filter.
CREATE TABLE content_item_tags (
    tag     TEXT NOT NULL,
    item_id TEXT NOT NULL REFERENCES content_items (id),
    PRIMARY KEY (tag, item_id)
);
CREATE INDEX content_item_tags_item ON content_item_tags (item_id);

-- The file of an item, once an upload starts; filled by the upload and
-- processing work.
CREATE TABLE content_assets (
    item_id        TEXT PRIMARY KEY REFERENCES content_items (id),
    status         TEXT NOT NULL,     -- pending | processing | ready | failed
    sha256         TEXT NOT NULL DEFAULT '',
    size           BIGINT NOT NULL DEFAULT 0,
    media_type     TEXT NOT NULL DEFAULT '',
    width          BIGINT NOT NULL DEFAULT 0,
    height         BIGINT NOT NULL DEFAULT 0,
    failure_reason TEXT NOT NULL DEFAULT '',
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

-- +goose Down
DROP TABLE content_assets;
DROP TABLE content_item_tags;
DROP TABLE content_items;
