-- +goose Up
-- Resumable (tus) uploads, on the shard of their item (the upload id
-- carries it). The bytes live in the blob store as parts,
-- uploads/<upload id>/<part number>, until the upload completes.
CREATE TABLE content_uploads (
    id          TEXT PRIMARY KEY,  -- upl_ ID: time-ordered, carries the item's shard
    item_id     TEXT NOT NULL REFERENCES content_items (id),
    user_id     TEXT NOT NULL,     -- who created it; only they and admins reach it
    length      BIGINT NOT NULL,   -- Upload-Length
    received    BIGINT NOT NULL DEFAULT 0, -- Upload-Offset: the bytes of the recorded parts ("offset" is reserved in PostgreSQL)
    metadata    TEXT NOT NULL DEFAULT '',  -- Upload-Metadata as received
    filename    TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL,     -- open | completed | terminated
    next_part   BIGINT NOT NULL DEFAULT 0, -- the part number given to the latest lease; each lease writes its own
    lock_token  TEXT NOT NULL DEFAULT '',  -- the lease: '' when free
    lock_until  BIGINT NOT NULL DEFAULT 0, -- unix milliseconds; a lease past it may be taken over
    created_at  BIGINT NOT NULL,   -- unix milliseconds
    updated_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL    -- Upload-Expires; then 410, and the sweep removes it
);
CREATE INDEX content_uploads_expires ON content_uploads (expires_at);

-- The parts an upload has recorded, in order. A part object that no row
-- names (its writer lost the lease or died) is never read, and goes with
-- the upload's other parts.
CREATE TABLE content_upload_parts (
    upload_id   TEXT NOT NULL REFERENCES content_uploads (id),
    part_number BIGINT NOT NULL,
    size        BIGINT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);

-- +goose Down
DROP TABLE content_upload_parts;
DROP TABLE content_uploads;
