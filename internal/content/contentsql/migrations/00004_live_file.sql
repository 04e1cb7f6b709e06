-- +goose Up
-- The last ready version of an asset's file, which downloads and previews
-- keep serving while a replacement is processed, or after it failed.
ALTER TABLE content_assets ADD COLUMN live_sha256 TEXT NOT NULL DEFAULT '';
ALTER TABLE content_assets ADD COLUMN live_size BIGINT NOT NULL DEFAULT 0;
ALTER TABLE content_assets ADD COLUMN live_media_type TEXT NOT NULL DEFAULT '';
ALTER TABLE content_assets ADD COLUMN live_filename TEXT NOT NULL DEFAULT '';
ALTER TABLE content_assets ADD COLUMN live_thumbnail_sha256 TEXT NOT NULL DEFAULT '';
ALTER TABLE content_assets ADD COLUMN live_preview_sha256 TEXT NOT NULL DEFAULT '';
CREATE INDEX content_assets_live ON content_assets (live_sha256);
CREATE INDEX content_assets_live_thumbnail ON content_assets (live_thumbnail_sha256);
CREATE INDEX content_assets_live_preview ON content_assets (live_preview_sha256);

-- +goose Down
DROP INDEX content_assets_live_preview;
DROP INDEX content_assets_live_thumbnail;
DROP INDEX content_assets_live;
ALTER TABLE content_assets DROP COLUMN live_preview_sha256;
ALTER TABLE content_assets DROP COLUMN live_thumbnail_sha256;
ALTER TABLE content_assets DROP COLUMN live_filename;
ALTER TABLE content_assets DROP COLUMN live_media_type;
ALTER TABLE content_assets DROP COLUMN live_size;
ALTER TABLE content_assets DROP COLUMN live_sha256;
